// Package reconcile is the skeleton every reconciler of this operator shares:
// errors classified by what should happen next, and one summary that turns
// the outcome of a pass into the Ready, Reconciling and Stalled conditions
// (as kstatus, Argo CD and Flux read them), an event on transitions only, and
// the result controller-runtime acts on.
//
// A step returns:
//   - nil: it is done;
//   - a Stalling error: progress needs a person (a missing Secret, a flag the
//     platform refuses). Stalled=True; no retry until something it watches
//     changes, or the next resync;
//   - a Waiting error: something expected is not there yet (the Tenant of an
//     EmailProvider, a rate limit). Reconciling=True; retried after a delay;
//   - any other error: transient (the platform unreachable). Reconciling=True
//     and controller-runtime retries with backoff. Wrap it with Transient to
//     give the condition a reason.
package reconcile

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Object is a kind of this operator: it has conditions and an observed
// generation.
type Object interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	SetObservedGeneration(int64)
}

// StallingError stops progress until a person changes something.
type StallingError struct {
	Reason  string
	Message string
}

func (e *StallingError) Error() string { return e.Message }

// Stalling reports that progress needs a person; message says what to fix.
func Stalling(reason, format string, args ...any) error {
	return &StallingError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// WaitingError retries after a delay without counting as a failure.
type WaitingError struct {
	Reason       string
	Message      string
	RequeueAfter time.Duration
}

func (e *WaitingError) Error() string { return e.Message }

// Waiting reports that something expected is not there yet; the object is
// reconciled again after the delay.
func Waiting(reason string, after time.Duration, format string, args ...any) error {
	return &WaitingError{Reason: reason, Message: fmt.Sprintf(format, args...), RequeueAfter: after}
}

// TransientError is a failure worth retrying with backoff, with the reason
// to show in the Ready condition.
type TransientError struct {
	Reason string
	Err    error
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient gives a retryable error a condition reason.
func Transient(reason string, err error) error { return &TransientError{Reason: reason, Err: err} }

// Success is how a pass that ended without error describes the object.
type Success struct {
	// Reason and Message of the Ready=True condition.
	Reason, Message string
	// RequeueAfter is when to look again (the resync, or an earlier moment
	// such as a deadline). Zero means no requeue.
	RequeueAfter time.Duration
}

// Reasons the summary itself uses.
const (
	ReasonProgressing    = "Progressing"
	ReasonReconcileError = "ReconcileError"
	ReasonPaused         = "Paused"
)

// Summarizer writes the summary conditions and emits transition events.
type Summarizer struct {
	Recorder record.EventRecorder
	// StalledRetry is how long a stalled object waits before it is looked at
	// again even if nothing it watches changes: the platform side may have
	// been fixed (a grant added to the credentials). Zero: never.
	StalledRetry time.Duration
}

// Summarize sets Ready, Reconciling and Stalled on obj from the outcome of a
// pass (err nil means success), records observedGeneration after a
// successful or a stalled pass (a stalled pass observed the generation
// fully and its outcome is terminal until something changes: kstatus must
// read it as Stalled, not as still in progress), emits an event when Ready
// changes, and returns the result and error for controller-runtime.
func (s Summarizer) Summarize(obj Object, success Success, err error) (ctrl.Result, error) {
	before := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
	var beforeCopy *metav1.Condition
	if before != nil {
		c := *before
		beforeCopy = &c
	}

	conditions := obj.GetConditions()
	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: obj.GetGeneration()})
	}
	remove := func(t string) { meta.RemoveStatusCondition(&conditions, t) }

	var (
		result    ctrl.Result
		returnErr error
		stalling  *StallingError
		waiting   *WaitingError
		transient *TransientError
	)
	switch {
	case err == nil:
		set(identityv1alpha1.ConditionReady, metav1.ConditionTrue, success.Reason, success.Message)
		remove(identityv1alpha1.ConditionReconciling)
		remove(identityv1alpha1.ConditionStalled)
		obj.SetObservedGeneration(obj.GetGeneration())
		result.RequeueAfter = success.RequeueAfter
	case errors.As(err, &stalling):
		set(identityv1alpha1.ConditionReady, metav1.ConditionFalse, stalling.Reason, stalling.Message)
		set(identityv1alpha1.ConditionStalled, metav1.ConditionTrue, stalling.Reason, stalling.Message)
		remove(identityv1alpha1.ConditionReconciling)
		obj.SetObservedGeneration(obj.GetGeneration())
		result.RequeueAfter = s.StalledRetry
	case errors.As(err, &waiting):
		set(identityv1alpha1.ConditionReady, metav1.ConditionFalse, waiting.Reason, waiting.Message)
		set(identityv1alpha1.ConditionReconciling, metav1.ConditionTrue, waiting.Reason, waiting.Message)
		remove(identityv1alpha1.ConditionStalled)
		result.RequeueAfter = waiting.RequeueAfter
	default:
		reason := ReasonReconcileError
		if errors.As(err, &transient) {
			reason = transient.Reason
		}
		set(identityv1alpha1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
		set(identityv1alpha1.ConditionReconciling, metav1.ConditionTrue, ReasonProgressing, "retrying after: "+err.Error())
		remove(identityv1alpha1.ConditionStalled)
		returnErr = err
	}
	obj.SetConditions(conditions)
	recordReadiness(obj)

	after := meta.FindStatusCondition(conditions, identityv1alpha1.ConditionReady)
	if s.Recorder != nil && (beforeCopy == nil || beforeCopy.Status != after.Status || beforeCopy.Reason != after.Reason) {
		eventType := "Normal"
		if after.Status != metav1.ConditionTrue {
			eventType = "Warning"
		}
		s.Recorder.Event(obj, eventType, after.Reason, after.Message)
	}
	return result, returnErr
}

// IsPaused reports whether the object carries the paused annotation, and
// sets or clears its Paused condition accordingly.
func IsPaused(obj Object) bool {
	conditions := obj.GetConditions()
	defer func() { obj.SetConditions(conditions) }()
	if obj.GetAnnotations()[identityv1alpha1.PausedAnnotation] == "true" {
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: identityv1alpha1.ConditionPaused,
			Status: metav1.ConditionTrue, Reason: ReasonPaused, ObservedGeneration: obj.GetGeneration(),
			Message: fmt.Sprintf("the %s annotation is \"true\": no calls to the identity API until it is removed", identityv1alpha1.PausedAnnotation)})
		return true
	}
	meta.RemoveStatusCondition(&conditions, identityv1alpha1.ConditionPaused)
	return false
}
