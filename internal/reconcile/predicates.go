package reconcile

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// ReadinessChanged lets through the events of a watched object that can
// matter to another object: creation, deletion, a new spec (generation),
// deletion starting, or its Ready condition changing status. A status write
// that only moves lastSyncTime does not wake anyone, so steady state costs
// no extra reconciles (and no extra calls to the identity API).
func ReadinessChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
				e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero() {
				return true
			}
			oldObj, okOld := e.ObjectOld.(Object)
			newObj, okNew := e.ObjectNew.(Object)
			if !okOld || !okNew {
				return false
			}
			before := meta.FindStatusCondition(oldObj.GetConditions(), identityv1alpha1.ConditionReady)
			after := meta.FindStatusCondition(newObj.GetConditions(), identityv1alpha1.ConditionReady)
			return (before == nil) != (after == nil) || (before != nil && after != nil && before.Status != after.Status)
		},
	}
}

// SpecChanged lets through the events of a reconciled object that ask for a
// pass: a new spec, labels (which select migrations) or annotations (pause),
// and the start of its deletion. Its own status writes do not.
func SpecChanged() predicate.Predicate {
	deletionStarted := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
	return predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{},
		predicate.AnnotationChangedPredicate{}, deletionStarted)
}
