package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/source"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// A tenant that is down is left alone by every reconciler at once: the
// identity pool's breaker for it (one per tenant, shared by every client of
// it) fails their calls without a request but for one probe at a time, and
// their objects say so and wait for the next probe. When a probe finds the
// tenant back, the Tenant, EmailProviders, CustomDatabaseConnections and
// Actions of its domain are reconciled at once, not at their next retry.

// indexTenantDomain indexes Tenants by spec.domain: a recovery is told by
// domain.
const indexTenantDomain = "spec.domain"

// minProbeWait is the shortest requeue for a tenant that is down: a probe
// already due is the next caller's to send (and zero would mean no requeue).
const minProbeWait = 100 * time.Millisecond

// indexTenantsByDomain registers indexTenantDomain.
func indexTenantsByDomain(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &identityv1alpha1.Tenant{}, indexTenantDomain, func(obj client.Object) []string {
		return []string{obj.(*identityv1alpha1.Tenant).Spec.Domain}
	})
}

// tenantDown is what a call refused because the tenant is taken for down
// means for an object: nothing to fix, nothing to retry before the next
// probe (a transient, Reconciling condition, not Stalled). If the probe
// finds the tenant back, tenantRecovered enqueues the object sooner.
func tenantDown(tenant *identityv1alpha1.Tenant, what string, err error) error {
	var down *identity.TenantDownError
	if !errors.As(err, &down) {
		return reconcile.Transient(identityv1alpha1.ReasonTenantUnreachable, fmt.Errorf("%s: %w", what, err))
	}
	last := ""
	if cause := errors.Unwrap(down); cause != nil {
		last = " (the last failure: " + strings.TrimPrefix(cause.Error(), "identity: ") + ")"
	}
	return reconcile.Waiting(identityv1alpha1.ReasonTenantUnavailable, max(down.RetryAfter, minProbeWait),
		"%s: %s has not answered since %s%s; calls to it wait for the next probe, at %s",
		what, tenant.Spec.Domain, down.Since.UTC().Format(time.RFC3339), last, down.NextProbe.UTC().Format(time.RFC3339))
}

// tenantRecovered is a source for the controller of one kind: when a
// tenant answers again after it was taken for down, it enqueues that kind's
// objects of the tenant's domain, found through the cache. callers is the
// kind's list type: a TenantList for the Tenants themselves, else the
// objects whose spec.tenantRef names one of them.
func tenantRecovered(access *TenantAccess, cache client.Reader, callers client.ObjectList) source.Source {
	return source.Func(func(ctx context.Context, queue workqueue.TypedRateLimitingInterface[ctrl.Request]) error {
		if access == nil || access.Pool == nil {
			return nil
		}
		stop := access.Pool.OnRecovered(func(domain string) {
			// Not on the goroutine of the call that found the tenant back.
			go enqueueCallers(ctx, cache, domain, callers, queue)
		})
		go func() {
			<-ctx.Done()
			stop()
		}()
		return nil
	})
}

// enqueueCallers adds the objects of callers' kind that call domain.
func enqueueCallers(ctx context.Context, cache client.Reader, domain string, callers client.ObjectList,
	queue workqueue.TypedRateLimitingInterface[ctrl.Request]) {
	logger := log.FromContext(ctx).WithValues("domain", domain)
	var tenants identityv1alpha1.TenantList
	if err := cache.List(ctx, &tenants, client.MatchingFields{indexTenantDomain: domain}); err != nil {
		logger.Error(err, "cannot list the Tenants of a tenant back from an outage")
		return
	}
	n := 0
	for i := range tenants.Items {
		tenant := &tenants.Items[i]
		if _, ok := callers.(*identityv1alpha1.TenantList); ok {
			queue.Add(ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tenant)})
			n++
			continue
		}
		list := callers.DeepCopyObject().(client.ObjectList)
		if err := cache.List(ctx, list, client.InNamespace(tenant.Namespace), client.MatchingFields{indexTenantRef: tenant.Name}); err != nil {
			logger.Error(err, "cannot list the objects of a tenant back from an outage")
			continue
		}
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			queue.Add(ctrl.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
			n++
			return nil
		})
	}
	logger.V(1).Info("tenant answers again: objects enqueued", "kind", fmt.Sprintf("%T", callers), "objects", n)
}
