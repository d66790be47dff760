package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/managed"
)

func TestEmailProviderDeletionReturnsACacheReadFailureInsteadOfDroppingTheDelete(t *testing.T) {
	g := NewWithT(t)
	now := time.Now()
	p := &identityv1alpha1.EmailProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "acme-mail", Finalizers: []string{identityv1alpha1.Finalizer},
			DeletionTimestamp: &metav1.Time{Time: now}},
		Spec:   identityv1alpha1.EmailProviderSpec{TenantRef: identityv1alpha1.TenantReference{Name: "acme"}, DeletionPolicy: identityv1alpha1.DeletionPolicyDelete},
		Status: identityv1alpha1.EmailProviderStatus{Ownership: identityv1alpha1.OwnershipCreated, AppliedCredentialsHash: "0123"},
	}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(p).WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("the cache is not synced")
		},
	}).Build()
	rec := record.NewFakeRecorder(10)
	r := &EmailProviderReconciler{Client: c, Recorder: rec, Remote: &managed.Step{Recorder: rec, Clock: clocktesting.NewFakePassiveClock(now)}}

	err := r.reconcileDelete(context.Background(), p)
	g.Expect(err).To(MatchError(ContainSubstring("the cache is not synced")))
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(p), p)).To(Succeed())
	g.Expect(p.Finalizers).To(ContainElement(identityv1alpha1.Finalizer), "the provider would be left on the tenant without a word")
}
