// Package managed is the one step every reconciler that creates remote
// objects shares, after crossplane-runtime's managed reconciler: observe the
// remote object, then create it, adopt it or update it; on deletion, delete
// it only when the operator owns it, and let go within a bounded wait when
// the tenant cannot be reached.
//
// The ownership rule lives here and nowhere else. The operator owns a remote
// object it created, or one it adopted (found by name) and then wrote
// successfully; status.ownership records which (Created, Adopted,
// AdoptedWritten). deletionPolicy Delete deletes only what it owns: an
// adopted object the platform refused every write to still belongs to
// whoever made it, and is left in place with an event saying why.
package managed

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// DefaultDeletionTimeout is how long a deletion keeps trying to reach the
// tenant before it lets go of the object and leaves the remote object.
const DefaultDeletionTimeout = 10 * time.Minute

// Observation is what Observe found.
type Observation struct {
	// Exists: there is a remote object to hold.
	Exists bool
	// Known: it is the object status records as held (read by the id in
	// status), not one found by its name. One found by name is adopted.
	Known bool
	// UpToDate: it is in the declared state, and what would be sent (a
	// secret's hash, say) has not changed: nothing to write.
	UpToDate bool
}

// External is one remote object behind the calls the step makes. Every
// call is idempotent, and its errors are classified already (Stalling,
// Waiting, Transient).
type External interface {
	// Observe reads the remote object: by the id status records, or by its
	// name.
	Observe(ctx context.Context) (Observation, error)
	// Create makes it. An error matching identity.ErrConflict means one of
	// that name exists after all (made meanwhile, or by a create of ours
	// whose answer was lost): the step observes again and adopts it.
	Create(ctx context.Context) error
	// Update writes the declared state over what Observe read.
	Update(ctx context.Context) error
	// Describe names the remote object for events and messages, such as
	// "connection legacy-users (con_123)".
	Describe() string
}

// Planner is an External of a kind with a management policy
// (spec.managementPolicy): it can also describe the write it would make.
type Planner interface {
	External
	// Plan describes, field by field, the request that Create (exists
	// false) or Update would send after the Observe just made, without
	// sending it: it renders the very body they send (see Render).
	Plan(exists bool) []identityv1alpha1.PlannedChange
}

// Step creates, adopts, updates and deletes remote objects by the ownership
// rule.
type Step struct {
	Recorder record.EventRecorder
	Clock    clock.PassiveClock
	// DeletionTimeout bounds how long a deletion keeps failing (credentials
	// gone, tenant unreachable) before the finalizer is released and the
	// remote object left (DefaultDeletionTimeout when zero).
	DeletionTimeout time.Duration
}

// Apply brings the remote object in line with the spec: one Observe, then a
// Create when there is none, or an Update when it is not up to date. It
// records the ownership in *ownership and reports whether it wrote.
func (s *Step) Apply(ctx context.Context, obj client.Object, ownership *identityv1alpha1.RemoteOwnership, ext External) (wrote bool, err error) {
	obs, err := ext.Observe(ctx)
	if err != nil {
		return false, err
	}
	if !obs.Exists {
		// Whatever was held is gone.
		*ownership = ""
		err := ext.Create(ctx)
		if err == nil {
			*ownership = identityv1alpha1.OwnershipCreated
			return true, nil
		}
		if !errors.Is(err, identity.ErrConflict) {
			return false, err
		}
		if obs, err = ext.Observe(ctx); err != nil {
			return false, err
		}
		if !obs.Exists {
			return false, reconcile.Transient(identityv1alpha1.ReasonRemoteConflict,
				fmt.Errorf("creating %s: the platform says it exists, but it cannot be found", ext.Describe()))
		}
	}
	if !obs.Known || *ownership == "" {
		*ownership = identityv1alpha1.OwnershipAdopted
		s.Recorder.Eventf(obj, corev1.EventTypeNormal, identityv1alpha1.EventReasonAdopted, "adopted the existing %s", ext.Describe())
	}
	if obs.UpToDate {
		return false, nil
	}
	if err := ext.Update(ctx); err != nil {
		return false, err
	}
	if *ownership == identityv1alpha1.OwnershipAdopted {
		*ownership = identityv1alpha1.OwnershipAdoptedWritten
	}
	return true, nil
}

// Outcome is what Manage did.
type Outcome struct {
	// Wrote: Apply created or updated the remote object.
	Wrote bool
	// Plan is, under Plan and Observe, what Apply would have sent; nil
	// under Apply.
	Plan *identityv1alpha1.ManagementPlan
}

// Manage runs the management policy: under Apply, Apply; under Plan and
// Observe, one Observe and the plan of the write Apply would make, with
// nothing sent and nothing adopted (status.ownership stays as it was, so a
// later deletion never takes an object only looked at for the operator's).
func (s *Step) Manage(ctx context.Context, obj client.Object, policy identityv1alpha1.ManagementPolicy, ownership *identityv1alpha1.RemoteOwnership, ext Planner) (Outcome, error) {
	if policy.Writes() {
		wrote, err := s.Apply(ctx, obj, ownership, ext)
		return Outcome{Wrote: wrote}, err
	}
	obs, err := ext.Observe(ctx)
	if err != nil {
		return Outcome{}, err
	}
	plan := &identityv1alpha1.ManagementPlan{Policy: policy.Effective()}
	switch {
	case !obs.Exists:
		// Whatever was held is gone.
		*ownership = ""
		plan.Action, plan.Changes = identityv1alpha1.PlanCreate, ext.Plan(false)
	case obs.UpToDate:
		plan.Action = identityv1alpha1.PlanNone
	default:
		plan.Action, plan.Changes = identityv1alpha1.PlanUpdate, ext.Plan(true)
	}
	plan.Pending = Count(plan.Changes)
	return Outcome{Plan: plan}, nil
}

// Delete applies the deletion policy to the remote object that remote
// names: for Delete, it runs del when the operator owns the object (see
// the package doc), within the deletion timeout (see Bounded). An object
// it does not own is left, with an event saying why. nil: the finalizer
// may go.
func (s *Step) Delete(ctx context.Context, obj client.Object, policy identityv1alpha1.DeletionPolicy, ownership identityv1alpha1.RemoteOwnership,
	remote string, del func(context.Context) error) error {
	if s.KeepsRemote(obj, policy, Policy(obj), remote) {
		return nil
	}
	switch {
	case policy != identityv1alpha1.DeletionPolicyDelete, ownership == "":
		// Orphan; or nothing held (never created, never found, or refused
		// as a second writer).
		return nil
	case !ownership.Deletable():
		s.Recorder.Eventf(obj, corev1.EventTypeNormal, identityv1alpha1.EventReasonRemoteObjectLeft,
			"left %s in place although deletionPolicy is Delete: it existed before this object adopted it, and the operator never wrote it", remote)
		return nil
	}
	return s.Bounded(ctx, obj, remote, del)
}

// KeepsRemote reports whether a deletion must leave the remote object
// because the management policy (Plan, Observe) writes nothing, deletion
// included, whatever deletionPolicy says; with deletionPolicy Delete it
// posts an event saying so, since the user asked for a deletion.
func (s *Step) KeepsRemote(obj client.Object, deletion identityv1alpha1.DeletionPolicy, policy identityv1alpha1.ManagementPolicy, remote string) bool {
	if policy.Writes() {
		return false
	}
	if deletion == identityv1alpha1.DeletionPolicyDelete {
		s.Recorder.Eventf(obj, corev1.EventTypeNormal, identityv1alpha1.EventReasonRemoteObjectLeft,
			"left %s in place although deletionPolicy is Delete: managementPolicy is %s, which never writes or deletes the remote object", remote, policy.Effective())
	}
	return true
}

// Policy is the management policy in force of one of the kinds that write
// remotely (Apply for any other object).
func Policy(obj client.Object) identityv1alpha1.ManagementPolicy {
	switch o := obj.(type) {
	case *identityv1alpha1.Tenant:
		return o.EffectiveManagementPolicy()
	case *identityv1alpha1.EmailProvider:
		return o.EffectiveManagementPolicy()
	case *identityv1alpha1.CustomDatabaseConnection:
		return o.EffectiveManagementPolicy()
	case *identityv1alpha1.Action:
		return o.EffectiveManagementPolicy()
	}
	return identityv1alpha1.ManagementPolicyApply
}

// Bounded runs del, a deletion of the remote object that remote names, and
// lets the object go anyway once the deletion timeout has passed since the
// object was marked for deletion: a Warning event then says what was left
// and why. Before that, a failure is retried - as it says, but never later
// than the deadline.
func (s *Step) Bounded(ctx context.Context, obj client.Object, remote string, del func(context.Context) error) error {
	err := del(ctx)
	if err == nil {
		return nil
	}
	timeout := s.deletionTimeout()
	deadline := Deadline(obj, timeout)
	now := s.Clock.Now()
	if GiveUp(now, deadline) {
		s.Recorder.Eventf(obj, corev1.EventTypeWarning, identityv1alpha1.EventReasonRemoteObjectLeft,
			"left %s in place: it could not be deleted within %s of this object's deletion (%v); delete it by hand if it should go", remote, timeout, err)
		return nil
	}
	wait := deadline.Sub(now)
	var stalling *reconcile.StallingError
	var waiting *reconcile.WaitingError
	switch {
	case errors.As(err, &stalling):
		return reconcile.Waiting(stalling.Reason, wait, "deleting %s: %s; unless that is fixed by %s, the object is let go then and %s is left in place",
			remote, stalling.Message, deadline.UTC().Format(time.RFC3339), remote)
	case errors.As(err, &waiting):
		return reconcile.Waiting(waiting.Reason, min(wait, waiting.RequeueAfter), "deleting %s: %s (the object is let go at %s at the latest)",
			remote, waiting.Message, deadline.UTC().Format(time.RFC3339))
	default:
		return err
	}
}

func (s *Step) deletionTimeout() time.Duration {
	if s.DeletionTimeout > 0 {
		return s.DeletionTimeout
	}
	return DefaultDeletionTimeout
}

// Deadline is when a deletion of obj stops waiting for the tenant.
func Deadline(obj client.Object, timeout time.Duration) time.Time {
	return obj.GetDeletionTimestamp().Add(timeout)
}

// GiveUp reports whether a deletion failing at now is let go: at the
// deadline or after it.
func GiveUp(now, deadline time.Time) bool { return !now.Before(deadline) }
