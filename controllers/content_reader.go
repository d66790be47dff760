package controllers

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// contentReader reads the Secrets and ConfigMaps that objects reference
// without keeping every Secret of the cluster in memory and without asking
// the API server on every pass. The manager's informers hold these kinds
// metadata-only; the content of a referenced object is fetched from the API
// server once and served again for as long as the informer reports the same
// resourceVersion. A rotated Secret has a new resourceVersion, so it is
// fetched again on the pass its watch event triggers.
type contentReader struct {
	// metadata is the manager's cached client: it serves
	// PartialObjectMetadata from the metadata-only informers.
	metadata client.Reader
	// api reads from the API server.
	api client.Reader

	mu      sync.Mutex
	entries map[contentKey]client.Object
}

type contentKey struct {
	kind string
	key  client.ObjectKey
}

func newContentReader(metadata, api client.Reader) *contentReader {
	return &contentReader{metadata: metadata, api: api, entries: map[contentKey]client.Object{}}
}

// Get reads a Secret or a ConfigMap as described above; other kinds go to
// the API server.
func (r *contentReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	var kind string
	switch obj.(type) {
	case *corev1.Secret:
		kind = "Secret"
	case *corev1.ConfigMap:
		kind = "ConfigMap"
	default:
		return r.api.Get(ctx, key, obj, opts...)
	}
	ck := contentKey{kind: kind, key: key}
	current := &metav1.PartialObjectMetadata{}
	current.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	if err := r.metadata.Get(ctx, key, current); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		// The informer may not have seen a fresh object yet: the API
		// server has the last word.
		return r.fetch(ctx, ck, obj)
	}
	r.mu.Lock()
	cached, ok := r.entries[ck]
	r.mu.Unlock()
	if ok && cached.GetResourceVersion() == current.ResourceVersion {
		copyInto(cached, obj)
		return nil
	}
	return r.fetch(ctx, ck, obj)
}

// List goes to the API server.
func (r *contentReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.api.List(ctx, list, opts...)
}

func (r *contentReader) fetch(ctx context.Context, ck contentKey, obj client.Object) error {
	err := r.api.Get(ctx, ck.key, obj)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if apierrors.IsNotFound(err) {
			delete(r.entries, ck)
		}
		return err
	}
	r.entries[ck] = obj.DeepCopyObject().(client.Object)
	return nil
}

func copyInto(from, to client.Object) {
	switch f := from.(type) {
	case *corev1.Secret:
		f.DeepCopyInto(to.(*corev1.Secret))
	case *corev1.ConfigMap:
		f.DeepCopyInto(to.(*corev1.ConfigMap))
	}
}
