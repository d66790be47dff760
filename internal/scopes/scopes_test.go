package scopes_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/scopes"
)

func TestForTenant(t *testing.T) {
	yes := true
	settings := &identityv1alpha1.TenantSettings{FriendlyName: &[]string{"Acme"}[0]}
	cases := []struct {
		name           string
		spec           identityv1alpha1.TenantSpec
		migrationFlags bool
		want           string
	}{
		{"nothing declared: the settings are read", identityv1alpha1.TenantSpec{}, false, "read:tenant_settings"},
		{"declared settings are written", identityv1alpha1.TenantSpec{Settings: settings}, false, "read:tenant_settings update:tenant_settings"},
		{"declared flags are written", identityv1alpha1.TenantSpec{Flags: map[string]bool{"enable_sso": true}}, false, "read:tenant_settings update:tenant_settings"},
		{"a migration's flags are written", identityv1alpha1.TenantSpec{}, true, "read:tenant_settings update:tenant_settings"},
		{"a reset_email template is read, created and updated",
			identityv1alpha1.TenantSpec{ResetEmail: &identityv1alpha1.ResetEmailTemplate{Enabled: &yes}}, false,
			"read:tenant_settings read:email_templates create:email_templates update:email_templates"},
		{"Plan reads only", identityv1alpha1.TenantSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyPlan, Settings: settings,
			ResetEmail: &identityv1alpha1.ResetEmailTemplate{}}, true, "read:tenant_settings read:email_templates"},
		{"Observe reads only", identityv1alpha1.TenantSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyObserve, Flags: map[string]bool{"x": true}}, true,
			"read:tenant_settings"},
		{"Apply spelled out is the default", identityv1alpha1.TenantSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyApply, Settings: settings}, false,
			"read:tenant_settings update:tenant_settings"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := scopes.ForTenant(&identityv1alpha1.Tenant{Spec: tc.spec}, tc.migrationFlags)
			g.Expect(strings.Join(got.Scopes(), " ")).To(Equal(tc.want))
		})
	}
}

func TestForEmailProvider(t *testing.T) {
	cases := []struct {
		name string
		spec identityv1alpha1.EmailProviderSpec
		want string
	}{
		{"Apply with the default deletion policy (Delete)", identityv1alpha1.EmailProviderSpec{},
			"read:email_provider create:email_provider update:email_provider delete:email_provider"},
		{"Orphan needs no delete", identityv1alpha1.EmailProviderSpec{DeletionPolicy: identityv1alpha1.DeletionPolicyOrphan},
			"read:email_provider create:email_provider update:email_provider"},
		{"Plan reads only", identityv1alpha1.EmailProviderSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyPlan, DeletionPolicy: identityv1alpha1.DeletionPolicyDelete},
			"read:email_provider"},
		{"Observe reads only", identityv1alpha1.EmailProviderSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyObserve}, "read:email_provider"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := scopes.ForEmailProvider(&identityv1alpha1.EmailProvider{Spec: tc.spec})
			g.Expect(strings.Join(got.Scopes(), " ")).To(Equal(tc.want))
		})
	}
}

func TestForConnection(t *testing.T) {
	cases := []struct {
		name string
		spec identityv1alpha1.CustomDatabaseConnectionSpec
		want string
	}{
		{"Apply with the default deletion policy (Orphan)", identityv1alpha1.CustomDatabaseConnectionSpec{},
			"read:connections read:users create:connections update:connections"},
		{"Delete deletes the connection", identityv1alpha1.CustomDatabaseConnectionSpec{DeletionPolicy: identityv1alpha1.DeletionPolicyDelete},
			"read:connections read:users create:connections update:connections delete:connections"},
		{"Plan reads and counts", identityv1alpha1.CustomDatabaseConnectionSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyPlan, DeletionPolicy: identityv1alpha1.DeletionPolicyDelete},
			"read:connections read:users"},
		{"Observe reads and counts", identityv1alpha1.CustomDatabaseConnectionSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyObserve},
			"read:connections read:users"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := scopes.ForConnection(&identityv1alpha1.CustomDatabaseConnection{Spec: tc.spec})
			g.Expect(strings.Join(got.Scopes(), " ")).To(Equal(tc.want))
		})
	}
}

func TestNeedsNameWhatEachScopeIsFor(t *testing.T) {
	g := NewWithT(t)
	needs := scopes.ForTenant(&identityv1alpha1.Tenant{Spec: identityv1alpha1.TenantSpec{Flags: map[string]bool{"x": true},
		ResetEmail: &identityv1alpha1.ResetEmailTemplate{}}}, false)
	missing := needs.Only([]string{"update:email_templates", "update:tenant_settings"})
	g.Expect(missing.String()).To(Equal("update:tenant_settings (to write spec.settings and spec.flags), update:email_templates (to write spec.resetEmail)"))
}

func TestForAction(t *testing.T) {
	g := NewWithT(t)
	action := &identityv1alpha1.Action{Spec: identityv1alpha1.ActionSpec{Trigger: identityv1alpha1.TriggerPostLogin}}
	g.Expect(strings.Join(scopes.ForAction(action).Scopes(), " ")).To(Equal("read:actions create:actions update:actions update:triggers delete:actions"))
	g.Expect(scopes.ForAction(action).String()).To(ContainSubstring("update:triggers (to bind the action to post-login)"))
	action.Spec.DeletionPolicy = identityv1alpha1.DeletionPolicyOrphan
	g.Expect(strings.Join(scopes.ForAction(action).Scopes(), " ")).To(Equal("read:actions create:actions update:actions update:triggers"))
	for _, policy := range []identityv1alpha1.ManagementPolicy{identityv1alpha1.ManagementPolicyPlan, identityv1alpha1.ManagementPolicyObserve} {
		action.Spec.ManagementPolicy, action.Spec.DeletionPolicy = policy, identityv1alpha1.DeletionPolicyDelete
		g.Expect(strings.Join(scopes.ForAction(action).Scopes(), " ")).To(Equal("read:actions"), "%s reads only", policy)
	}
}
