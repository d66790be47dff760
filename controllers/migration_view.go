package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/migration"
)

// ReasonNoEmailProvider is the readiness reason of a tenant without a Ready,
// enabled EmailProvider.
const ReasonNoEmailProvider = migration.ReasonNoEmailProvider

// migrationView answers, for the Tenant and PlatformMigration reconcilers
// alike, which migrations select a tenant and whether the tenant passes
// their readiness checks. Both reconcilers decide with the same pure
// function (migration.Decide), so they agree on every tenant's state.
type migrationView struct {
	client.Reader
}

// selects reports whether m applies to tenant, whose namespace has nsLabels.
func selects(m *identityv1alpha1.PlatformMigration, tenant *identityv1alpha1.Tenant, nsLabels map[string]string) (bool, error) {
	for _, s := range []struct {
		selector *metav1.LabelSelector
		labels   map[string]string
		field    string
	}{{m.Spec.TenantSelector, tenant.Labels, "tenantSelector"}, {m.Spec.NamespaceSelector, nsLabels, "namespaceSelector"}} {
		if s.selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(s.selector)
		if err != nil {
			return false, fmt.Errorf("PlatformMigration %s: spec.%s: %w", m.Name, s.field, err)
		}
		if !sel.Matches(labels.Set(s.labels)) {
			return false, nil
		}
	}
	return true, nil
}

// namespaceLabels returns the labels of a namespace (empty when it is gone).
func (v migrationView) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns := &corev1.Namespace{}
	if err := v.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return ns.Labels, nil
}

// emailProviderReady reports whether the tenant has an enabled, Ready
// EmailProvider among providers (those of other tenants are ignored).
func emailProviderReady(tenant *identityv1alpha1.Tenant, providers []identityv1alpha1.EmailProvider) bool {
	for i := range providers {
		p := &providers[i]
		if p.Spec.TenantRef.Name != tenant.Name || !p.DeletionTimestamp.IsZero() {
			continue
		}
		if p.Spec.Enabled != nil && !*p.Spec.Enabled {
			continue
		}
		if meta.IsStatusConditionTrue(p.Status.Conditions, identityv1alpha1.ConditionReady) {
			return true
		}
	}
	return false
}

// tenantState is what readiness checks read about tenant: its own
// EmailProviders and CustomDatabaseConnections among those given (others
// are ignored), and what the Tenant reconciler recorded at its last read
// of the settings (status.observed). Nothing here calls the tenant.
func tenantState(tenant *identityv1alpha1.Tenant, providers []identityv1alpha1.EmailProvider, connections []identityv1alpha1.CustomDatabaseConnection) migration.TenantState {
	s := migration.TenantState{EmailProviderReady: emailProviderReady(tenant, providers)}
	if o := tenant.Status.Observed; o != nil {
		s.Observed, s.SandboxVersion = true, o.SandboxVersion
		s.Flags = make(map[string]*bool, len(o.Flags))
		for _, f := range o.Flags {
			s.Flags[f.Name] = f.Value
		}
	}
	for i := range connections {
		c := &connections[i]
		if c.Spec.TenantRef.Name != tenant.Name || c.Namespace != tenant.Namespace || !c.DeletionTimestamp.IsZero() {
			continue
		}
		s.CustomDatabases = append(s.CustomDatabases, fmt.Sprintf("CustomDatabaseConnection/%s (connection %s)", c.Name, c.Spec.ConnectionName))
	}
	return s
}

// readiness evaluates m's readiness checks for tenant.
func readiness(m *identityv1alpha1.PlatformMigration, tenant *identityv1alpha1.Tenant, providers []identityv1alpha1.EmailProvider, connections []identityv1alpha1.CustomDatabaseConnection) migration.Readiness {
	if len(m.Spec.ReadinessChecks) == 0 {
		return migration.Readiness{Ready: true}
	}
	return migration.CheckReadiness(m.Spec.ReadinessChecks, tenantState(tenant, providers, connections))
}

// facts is what migration.Decide needs to know about tenant.
func facts(m *identityv1alpha1.PlatformMigration, tenant *identityv1alpha1.Tenant, providers []identityv1alpha1.EmailProvider, connections []identityv1alpha1.CustomDatabaseConnection) migration.Tenant {
	created := tenant.CreationTimestamp.Time
	if tenant.Spec.CreatedAt != nil {
		created = tenant.Spec.CreatedAt.Time
	}
	optedIn := false
	for _, name := range tenant.Spec.OptInMigrations {
		if name == m.Name {
			optedIn = true
		}
	}
	return migration.Tenant{CreatedAt: created, OptedIn: optedIn, Readiness: readiness(m, tenant, providers, connections)}
}

// needsConnections reports whether m has a check that reads the tenants'
// CustomDatabaseConnections, so that they are listed only then.
func needsConnections(m *identityv1alpha1.PlatformMigration) bool {
	for _, c := range m.Spec.ReadinessChecks {
		if c.Type == identityv1alpha1.ReadinessCustomDatabaseSandboxAtLeast {
			return true
		}
	}
	return false
}
