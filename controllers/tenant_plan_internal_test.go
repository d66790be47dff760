package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/migration"
)

// The settings part of a Tenant's plan is the settingsDiff PATCH, field by
// field, and a flag a migration sets names the migration.
func TestSettingsChangesAreTheSettingsPatch(t *testing.T) {
	tests := []struct {
		name     string
		spec     *identityv1alpha1.TenantSettings
		flags    map[string]bool
		by       map[string][]string
		observed identity.TenantSettings
		want     []identityv1alpha1.PlannedChange
	}{{
		name:     "in the declared state: nothing",
		spec:     &identityv1alpha1.TenantSettings{FriendlyName: ptr.To("Acme")},
		flags:    map[string]bool{"enable_sso": true},
		observed: identity.TenantSettings{FriendlyName: "Acme", Flags: map[string]bool{"enable_sso": true}},
	}, {
		name:  "a setting and two migrations' flag",
		spec:  &identityv1alpha1.TenantSettings{FriendlyName: ptr.To("Acme"), SessionLifetimeHours: ptr.To(int32(72))},
		flags: map[string]bool{"change_pwd_flow_v1": false, "enable_sso": true},
		by:    map[string][]string{"change_pwd_flow_v1": {"pwflow-b", "pwflow-a"}},
		observed: identity.TenantSettings{FriendlyName: "Old", SessionLifetime: ptr.To(72.0),
			Flags: map[string]bool{"change_pwd_flow_v1": true, "enable_sso": true}},
		want: []identityv1alpha1.PlannedChange{
			{Field: "settings.flags.change_pwd_flow_v1", From: "true", To: "false", Migration: "pwflow-a,pwflow-b"},
			{Field: "settings.friendly_name", From: `"Old"`, To: `"Acme"`},
		},
	}, {
		name:     "a flag the tenant does not hold: from its default, not from false",
		flags:    map[string]bool{"enable_apis_section": false},
		observed: identity.TenantSettings{},
		want:     []identityv1alpha1.PlannedChange{{Field: "settings.flags.enable_apis_section", To: "false"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tenant := &identityv1alpha1.Tenant{Spec: identityv1alpha1.TenantSpec{Settings: tt.spec}}
			plan := &migrationPlan{flags: tt.flags, changedBy: tt.by}
			g.Expect(settingsChanges(tenant, plan, &tt.observed)).To(Equal(tt.want))
		})
	}
}

// Under Plan or Observe, a migration decided enabled is enabled only when
// the tenant holds its flags; otherwise it is Pending, NotAppliedByPolicy.
func TestNotAppliedKeepsOnlyWhatTheTenantHolds(t *testing.T) {
	enabled := migration.Decision{Apply: true, State: identityv1alpha1.MigrationEnabled, Reason: "Enforced", Message: "the mandatory date passed"}
	tests := []struct {
		name      string
		decision  migration.Decision
		held      map[string]bool
		wantState identityv1alpha1.MigrationState
		reason    string
	}{
		{"flag not held", enabled, map[string]bool{"change_pwd_flow_v1": true}, identityv1alpha1.MigrationPending, identityv1alpha1.ReasonNotApplied},
		{"flag absent", enabled, nil, identityv1alpha1.MigrationPending, identityv1alpha1.ReasonNotApplied},
		{"flag held (set by hand)", enabled, map[string]bool{"change_pwd_flow_v1": false}, identityv1alpha1.MigrationEnabled, "Enforced"},
		{"not due: unchanged", migration.Decision{State: identityv1alpha1.MigrationPending, Reason: "NotOptedIn"}, nil, identityv1alpha1.MigrationPending, "NotOptedIn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tenant := &identityv1alpha1.Tenant{Spec: identityv1alpha1.TenantSpec{ManagementPolicy: identityv1alpha1.ManagementPolicyObserve}}
			inputs := &migrationInputs{migrations: []identityv1alpha1.PlatformMigration{{ObjectMeta: metav1.ObjectMeta{Name: "pwflow"},
				Spec: identityv1alpha1.PlatformMigrationSpec{Change: &identityv1alpha1.MigrationChange{Flags: map[string]bool{"change_pwd_flow_v1": false}}}}}}
			plan := &migrationPlan{decisions: map[string]migration.Decision{"pwflow": tt.decision}}
			notApplied(tenant, inputs, plan, &identity.TenantSettings{Flags: tt.held})
			got := plan.decisions["pwflow"]
			g.Expect(got.State).To(Equal(tt.wantState))
			g.Expect(got.Reason).To(Equal(tt.reason))
			if tt.reason == identityv1alpha1.ReasonNotApplied {
				g.Expect(got.Message).To(ContainSubstring("flags.change_pwd_flow_v1=false, and managementPolicy Observe does not send it"))
			}
		})
	}
}
