package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// store is a Reader over one Secret, counting the reads of its content.
type store struct {
	secret *corev1.Secret // nil: not found
	reads  int
}

func (s *store) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if s.secret == nil {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, key.Name)
	}
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		o.ObjectMeta = *s.secret.ObjectMeta.DeepCopy()
	case *corev1.Secret:
		s.reads++
		s.secret.DeepCopyInto(o)
	}
	return nil
}

func (s *store) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

func TestContentReaderReadsASecretOnceUntilItChanges(t *testing.T) {
	g := NewWithT(t)
	key := client.ObjectKey{Namespace: "team-a", Name: "acme-credentials"}
	api := &store{secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, ResourceVersion: "1"},
		Data: map[string][]byte{"client_secret": []byte("first")}}}
	// The informer (metadata) and the API server see the same object here.
	r := newContentReader(api, api)
	read := func() string {
		s := &corev1.Secret{}
		g.Expect(r.Get(context.Background(), key, s)).To(Succeed())
		return string(s.Data["client_secret"])
	}

	for range 5 {
		g.Expect(read()).To(Equal("first"))
	}
	g.Expect(api.reads).To(Equal(1), "an unchanged Secret is fetched once")

	api.secret.ResourceVersion, api.secret.Data["client_secret"] = "2", []byte("rotated")
	g.Expect(read()).To(Equal("rotated"))
	g.Expect(read()).To(Equal("rotated"))
	g.Expect(api.reads).To(Equal(2), "a new resourceVersion is fetched once")

	api.secret = nil
	err := r.Get(context.Background(), key, &corev1.Secret{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a deleted Secret is not served from memory")
}
