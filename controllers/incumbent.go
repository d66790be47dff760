package controllers

import "sigs.k8s.io/controller-runtime/pkg/client"

// incumbent decides which of several objects that declare the same remote
// object may write it, so that two of them never undo each other: the one
// that holds it (holds: it created or adopted it) keeps it and is never
// disturbed; between objects that do not (or that both do, after a race),
// the older wins, then the first by name. It returns the object among
// others that wins over self, or nil when self may write. Objects being
// deleted do not count.
func incumbent[T client.Object](self T, others []T, holds func(T) bool) T {
	var none T
	for _, other := range others {
		if other.GetUID() == self.GetUID() || !other.GetDeletionTimestamp().IsZero() {
			continue
		}
		selfHolds, otherHolds := holds(self), holds(other)
		created, otherCreated := self.GetCreationTimestamp(), other.GetCreationTimestamp()
		older := otherCreated.Before(&created) || (otherCreated.Equal(&created) && other.GetName() < self.GetName())
		if (otherHolds && !selfHolds) || (otherHolds == selfHolds && older) {
			return other
		}
	}
	return none
}
