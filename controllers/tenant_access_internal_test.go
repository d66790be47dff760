package controllers

import (
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

func TestForgetDropsThePooledClientOnceTheSecretIsGone(t *testing.T) {
	g := NewWithT(t)
	pool := identity.NewPool(identity.Options{})
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "acme"},
		Spec: identityv1alpha1.TenantSpec{Domain: "acme.identity.test", DialAddress: "127.0.0.1:8443",
			CredentialsSecretRef: identityv1alpha1.LocalObjectReference{Name: "acme-credentials"}}}
	_, err := pool.Get(identity.Config{Domain: tenant.Spec.Domain, DialAddress: tenant.Spec.DialAddress, ClientID: "id", ClientSecret: "secret"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pool.Len()).To(Equal(1))

	// The Secret is gone (a namespace being deleted deletes it first).
	access := &TenantAccess{Reader: fake.NewClientBuilder().WithScheme(NewScheme()).Build(), Pool: pool}
	access.Forget(tenant)
	g.Expect(pool.Len()).To(BeZero(), "the tenant's client, pacer and breaker outlived its Tenant")
}

func TestClassifyGivesEachAnswerItsOwnReason(t *testing.T) {
	tenant := &identityv1alpha1.Tenant{Spec: identityv1alpha1.TenantSpec{Domain: "acme.identity.test"}}
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"404", fmt.Errorf("UpdateConnection: %w", identity.ErrNotFound), identityv1alpha1.ReasonRemoteNotFound},
		{"409", fmt.Errorf("CreateConnection: %w", identity.ErrConflict), identityv1alpha1.ReasonRemoteConflict},
		{"unreachable", fmt.Errorf("GetConnection: %w", identity.ErrUnavailable), identityv1alpha1.ReasonTenantUnreachable},
		{"not an answer", errors.New("context canceled"), reconcile.ReasonReconcileError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			reason := reconcile.ReasonReconcileError
			var transient *reconcile.TransientError
			if errors.As(classify(tenant, "doing it", tt.err), &transient) {
				reason = transient.Reason
			}
			g.Expect(reason).To(Equal(tt.reason))
		})
	}
}
