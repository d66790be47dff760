package reconcile

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Written remembers, per object, what this process last wrote to its status.
// A pass that follows another closely can read the object from a cache that
// has not seen that status patch yet; it recalls the write from here instead
// of acting as if it had not happened (adopting what it just created, sending
// again what it just sent). An entry holds only for the object's UID, so an
// object deleted and made again under the same name starts afresh; Forget
// drops it once the object is gone. The zero value is ready to use.
type Written[T any] struct {
	m sync.Map // types.NamespacedName -> written[T]
}

type written[T any] struct {
	uid   types.UID
	value T
}

// Remember records value as what was last written to obj's status.
func (w *Written[T]) Remember(obj client.Object, value T) {
	w.m.Store(client.ObjectKeyFromObject(obj), written[T]{uid: obj.GetUID(), value: value})
}

// Recall returns what was last written to obj's status, if this process
// wrote it to this very object.
func (w *Written[T]) Recall(obj client.Object) (T, bool) {
	if v, ok := w.m.Load(client.ObjectKeyFromObject(obj)); ok {
		if e := v.(written[T]); e.uid == obj.GetUID() {
			return e.value, true
		}
	}
	var zero T
	return zero, false
}

// Forget drops what was remembered of the object at key.
func (w *Written[T]) Forget(key types.NamespacedName) {
	w.m.Delete(key)
}
