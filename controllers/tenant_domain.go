package controllers

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// One writer per tenant: a tenant's settings are written through one Tenant
// only. Two Tenants on one domain would each PATCH their own settings over
// the other's, and swap the pooled client (a new token on every pass). The
// first Tenant of a domain holds it and is never disturbed; any other is
// refused (Stalled, DuplicateTenant) before any call, and so are the
// EmailProviders and CustomDatabaseConnections that reference it.

// domainHolder returns the Tenant, other than tenant, that holds tenant's
// domain, or nil when tenant holds it itself. It reads the cache through the
// spec.domain index, across namespaces: the domain is global.
func domainHolder(ctx context.Context, c client.Reader, tenant *identityv1alpha1.Tenant) (*identityv1alpha1.Tenant, error) {
	var all identityv1alpha1.TenantList
	if err := c.List(ctx, &all, client.MatchingFields{indexTenantDomain: tenant.Spec.Domain}); err != nil {
		return nil, err
	}
	for i := range all.Items {
		other := &all.Items[i]
		if other.UID != tenant.UID && holdsBefore(other, tenant) {
			return other, nil
		}
	}
	return nil, nil
}

// holdsBefore orders two Tenants of one domain: one that has synced before
// one that never did (the first is never disturbed, even by a Tenant made
// in the same second), then the older by creationTimestamp, then by
// namespace and name.
func holdsBefore(a, b *identityv1alpha1.Tenant) bool {
	if synced := a.Status.LastSyncTime != nil; synced != (b.Status.LastSyncTime != nil) {
		return synced
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// duplicateTenant is the Stalling error of a Tenant whose domain holder
// is another.
func duplicateTenant(tenant, holder *identityv1alpha1.Tenant) error {
	return reconcile.Stalling(identityv1alpha1.ReasonDuplicateTenant,
		"Tenant %s/%s (created %s) already manages domain %s, and a tenant has one writer: this Tenant writes nothing; delete it, or point it at another domain",
		holder.Namespace, holder.Name, holder.CreationTimestamp.UTC().Format(time.RFC3339), tenant.Spec.Domain)
}

// checkOnlyTenant refuses tenant when another Tenant holds its domain.
func checkOnlyTenant(ctx context.Context, c client.Reader, tenant *identityv1alpha1.Tenant) error {
	holder, err := domainHolder(ctx, c, tenant)
	if err != nil {
		return err
	}
	if holder != nil {
		return duplicateTenant(tenant, holder)
	}
	return nil
}

// applyTenant is the Tenant's Apply step: refused before any call when
// another Tenant holds the domain.
func (r *TenantReconciler) applyTenant(ctx context.Context, tenant *identityv1alpha1.Tenant) (reconcile.Success, error) {
	if err := checkOnlyTenant(ctx, r.Client, tenant); err != nil {
		return reconcile.Success{}, err
	}
	return r.reconcileTenant(ctx, tenant)
}

// describeTenantSettings names what a Tenant's deletion removes, for events.
func describeTenantSettings(tenant *identityv1alpha1.Tenant) string {
	return fmt.Sprintf("the settings and flags Tenant %s manages on %s", tenant.Name, tenant.Spec.Domain)
}
