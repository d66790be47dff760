package reconcile

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// FieldOwner names this operator in managedFields.
const FieldOwner = client.FieldOwner("identity-operator")

// StatusPatcher remembers an object as it was read, so that the status the
// reconciler built can be sent as one merge patch at the end of the pass,
// and only when it changed.
type StatusPatcher struct {
	c        client.Client
	original client.Object
}

// NewStatusPatcher snapshots obj.
func NewStatusPatcher(c client.Client, obj client.Object) *StatusPatcher {
	return &StatusPatcher{c: c, original: obj.DeepCopyObject().(client.Object)}
}

// Patch sends obj's status when it differs from the snapshot. Steady state
// therefore writes nothing to the API server either.
func (p *StatusPatcher) Patch(ctx context.Context, obj client.Object) error {
	before, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p.original)
	if err != nil {
		return err
	}
	after, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(before["status"], after["status"]) {
		return nil
	}
	return client.IgnoreNotFound(p.c.Status().Patch(ctx, obj, client.MergeFrom(p.original), FieldOwner))
}

// AddFinalizer adds the operator's finalizer, patching only metadata; it
// reports whether it had to.
func AddFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) (bool, error) {
	if controllerutil.ContainsFinalizer(obj, finalizer) {
		return false, nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, finalizer)
	return true, c.Patch(ctx, obj, client.MergeFrom(before), FieldOwner)
}

// RemoveFinalizer removes the operator's finalizer, patching only metadata.
func RemoveFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, finalizer)
	return client.IgnoreNotFound(c.Patch(ctx, obj, client.MergeFrom(before), FieldOwner))
}
