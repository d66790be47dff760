package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

func TestTenantDownWaitsForTheNextProbe(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tenant := &identityv1alpha1.Tenant{Spec: identityv1alpha1.TenantSpec{Domain: "acme.example.com"}}
	cases := []struct {
		name       string
		retryAfter time.Duration
		wantAfter  time.Duration
	}{
		{"the probe 4 s away", 4 * time.Second, 4 * time.Second},
		{"the probe due already: soon, never no requeue", 0, minProbeWait},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			down := &identity.TenantDownError{Operation: "GetEmailProvider", Domain: "acme.example.com", Since: since,
				NextProbe: since.Add(time.Minute), RetryAfter: c.retryAfter, Failures: 3}
			err := classify(tenant, "reading the email provider", fmt.Errorf("wrapped: %w", down))
			var waiting *reconcile.WaitingError
			g.Expect(errors.As(err, &waiting)).To(BeTrue(), "%v is not a wait", err)
			g.Expect(waiting.Reason).To(Equal(identityv1alpha1.ReasonTenantUnavailable))
			g.Expect(waiting.RequeueAfter).To(Equal(c.wantAfter))
			g.Expect(waiting.Message).To(Equal("reading the email provider: acme.example.com has not answered since 2026-03-01T12:00:00Z; " +
				"calls to it wait for the next probe, at 2026-03-01T12:01:00Z"))
		})
	}
}

// A recovery enqueues, for each kind, exactly the objects that call the
// tenant's domain, in every namespace that has a Tenant for it.
func TestTenantRecoveryEnqueuesTheObjectsOfItsDomain(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(identityv1alpha1.AddToScheme(scheme)).To(Succeed())
	tenant := func(ns, name, domain string) *identityv1alpha1.Tenant {
		return &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: identityv1alpha1.TenantSpec{Domain: domain}}
	}
	provider := func(ns, name, tenant string) *identityv1alpha1.EmailProvider {
		return &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: identityv1alpha1.EmailProviderSpec{TenantRef: identityv1alpha1.TenantReference{Name: tenant}}}
	}
	connection := func(ns, name, tenant string) *identityv1alpha1.CustomDatabaseConnection {
		return &identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: identityv1alpha1.CustomDatabaseConnectionSpec{TenantRef: identityv1alpha1.TenantReference{Name: tenant}}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&identityv1alpha1.Tenant{}, indexTenantDomain, func(o client.Object) []string {
			return []string{o.(*identityv1alpha1.Tenant).Spec.Domain}
		}).
		WithIndex(&identityv1alpha1.EmailProvider{}, indexTenantRef, func(o client.Object) []string {
			return []string{o.(*identityv1alpha1.EmailProvider).Spec.TenantRef.Name}
		}).
		WithIndex(&identityv1alpha1.CustomDatabaseConnection{}, indexTenantRef, func(o client.Object) []string {
			return []string{o.(*identityv1alpha1.CustomDatabaseConnection).Spec.TenantRef.Name}
		}).
		WithObjects(
			tenant("a", "acme", "acme.example.com"), tenant("b", "acme", "acme.example.com"), tenant("a", "other", "other.example.com"),
			provider("a", "acme-mail", "acme"), provider("b", "acme-mail", "acme"), provider("a", "other-mail", "other"),
			connection("a", "acme-users", "acme"), connection("a", "acme-staff", "acme"), connection("b", "other-users", "other"),
		).Build()

	cases := []struct {
		callers client.ObjectList
		want    []string
	}{
		{&identityv1alpha1.TenantList{}, []string{"a/acme", "b/acme"}},
		{&identityv1alpha1.EmailProviderList{}, []string{"a/acme-mail", "b/acme-mail"}},
		// b/other-users names a Tenant "other" of namespace b, which does not exist.
		{&identityv1alpha1.CustomDatabaseConnectionList{}, []string{"a/acme-staff", "a/acme-users"}},
	}
	for _, tc := range cases {
		queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[ctrl.Request]())
		enqueueCallers(context.Background(), c, "acme.example.com", tc.callers, queue)
		var got []string
		for queue.Len() > 0 {
			req, _ := queue.Get()
			got = append(got, req.String())
			queue.Done(req)
		}
		sort.Strings(got)
		g.Expect(got).To(Equal(tc.want), "%T", tc.callers)
		queue.ShutDown()
	}
}
