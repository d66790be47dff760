package reconcile

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Steps are what a reconciler does in a pass; the rest is Pass.
type Steps[T Object] struct {
	// Apply brings the remote state in line with the spec, step by step.
	Apply func(ctx context.Context, obj T) (Success, error)
	// Delete applies the deletion policy and, when done, releases the
	// finalizer. Nil for a kind that owns nothing remote: it gets no
	// finalizer.
	Delete func(ctx context.Context, obj T) error
	// Gone, when set, is told that the object no longer exists (to drop
	// what was kept for it, such as metrics).
	Gone func(req ctrl.Request)
	// Shard, when set, makes sure that this operator instance is the only
	// one writing the object's remote state: nil for a kind that writes
	// nothing remote.
	Shard Ownership
}

// Ownership decides which operator instance may write an object's remote
// state when several run side by side, each over its own share of the
// objects (internal/shard).
type Ownership interface {
	// Claim returns nil once this instance holds obj (claiming it first if
	// nobody does, which writes obj's status), and a Waiting error while
	// another instance holds it.
	Claim(ctx context.Context, obj Object) error
	// Release lets go of the object with key, which this instance's cache no
	// longer holds: it was deleted, or it left this instance's selection.
	// obj is an empty object of the kind. The work queue guarantees that no
	// pass of key is running in this controller meanwhile.
	Release(ctx context.Context, key types.NamespacedName, obj Object) error
}

// claimConflictRetry is how soon a claim that lost a race (the object
// changed since the cache saw it) is tried again.
const claimConflictRetry = 200 * time.Millisecond

// Pass is the skeleton every reconciler of this operator shares: get the
// object; snapshot it for one status patch at the end; if paused, say so
// and stop; make sure this instance holds it (Steps.Shard); if being
// deleted, apply the deletion policy; otherwise hold the finalizer and run
// Apply; then summarize the outcome into conditions and patch status (only
// when it changed). An object gone from the cache is released.
func Pass[T Object](ctx context.Context, c client.Client, s Summarizer, req ctrl.Request, obj T, steps Steps[T]) (ctrl.Result, error) {
	if err := c.Get(ctx, req.NamespacedName, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			forgetReadiness(kindOf(obj), req.Namespace, req.Name)
			if steps.Gone != nil {
				steps.Gone(req)
			}
			if steps.Shard != nil {
				return ctrl.Result{}, steps.Shard.Release(ctx, req.NamespacedName, obj)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := NewStatusPatcher(c, obj)

	if IsPaused(obj) {
		return ctrl.Result{}, patchStatus(ctx, patcher, obj)
	}
	// Nothing remote is written, deletion included, before this instance
	// holds the object.
	if steps.Shard != nil {
		version := obj.GetResourceVersion()
		if err := steps.Shard.Claim(ctx, obj); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: claimConflictRetry}, nil
			}
			result, err := s.Summarize(obj, Success{}, err)
			return result, errors.Join(err, patchStatus(ctx, patcher, obj))
		}
		if obj.GetResourceVersion() != version {
			// The claim was written: the pass's own status goes on top of it.
			patcher = NewStatusPatcher(c, obj)
		}
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		if steps.Delete == nil {
			return ctrl.Result{}, nil
		}
		err := steps.Delete(ctx, obj)
		if err == nil {
			return ctrl.Result{}, nil
		}
		result, err := s.Summarize(obj, Success{}, err)
		return result, errors.Join(err, patchStatus(ctx, patcher, obj))
	}
	if steps.Delete != nil {
		if _, err := AddFinalizer(ctx, c, obj, identityv1alpha1.Finalizer); err != nil {
			return ctrl.Result{}, err
		}
	}

	success, err := steps.Apply(ctx, obj)
	result, err := s.Summarize(obj, success, err)
	return result, errors.Join(err, patchStatus(ctx, patcher, obj))
}

// statusPatchTimeout bounds the status patch that ends a pass.
const statusPatchTimeout = 15 * time.Second

// patchStatus sends the pass's status even when the pass itself ran out of
// time (the manager's reconcile timeout), so that the conditions say what it
// was doing rather than what the pass before it saw.
func patchStatus(ctx context.Context, p *StatusPatcher, obj Object) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusPatchTimeout)
	defer cancel()
	return p.Patch(pctx, obj)
}
