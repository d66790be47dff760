package reconcile

import (
	"context"
	"encoding/json"
	"reflect"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
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
// therefore writes nothing to the API server either. Only the status is
// compared and diffed: every pass of every object ends here, and encoding
// whole objects twice per pass was a large share of the operator's
// allocations at 1,000 tenants.
func (p *StatusPatcher) Patch(ctx context.Context, obj client.Object) error {
	before, after := statusOf(p.original), statusOf(obj)
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	patch, err := statusMergePatch(before, after)
	if err != nil {
		return err
	}
	return client.IgnoreNotFound(p.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), FieldOwner))
}

// statusOf returns the Status field of one of this operator's kinds.
func statusOf(obj client.Object) any {
	return reflect.ValueOf(obj).Elem().FieldByName("Status").Interface()
}

// statusMergePatch is the JSON merge patch (RFC 7386) that takes the status
// before to the status after.
func statusMergePatch(before, after any) ([]byte, error) {
	from, err := json.Marshal(map[string]any{"status": before})
	if err != nil {
		return nil, err
	}
	to, err := json.Marshal(map[string]any{"status": after})
	if err != nil {
		return nil, err
	}
	return jsonpatch.CreateMergePatch(from, to)
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
