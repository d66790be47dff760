package migration

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

func TestAtDateSaysWhichTenantsTheMandatoryDateChanges(t *testing.T) {
	old := graceStart.Add(-24 * time.Hour) // created before the grace period
	during := deadline.Add(-time.Hour)
	ready := Readiness{Ready: true}
	const (
		apply   = identityv1alpha1.ManagementPolicyApply
		plan    = identityv1alpha1.ManagementPolicyPlan
		observe = identityv1alpha1.ManagementPolicyObserve
		change  = identityv1alpha1.DateImpactChange
		planned = identityv1alpha1.DateImpactPlannedOnly
		notMgd  = identityv1alpha1.DateImpactNotManaged
	)
	tests := []struct {
		name      string
		migration *identityv1alpha1.PlatformMigration
		tenant    Tenant
		policy    identityv1alpha1.ManagementPolicy
		now       time.Time
		want      identityv1alpha1.DateImpact
	}{
		{"a tenant that has not opted in changes at the date", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, apply, during, change},
		{"the empty policy is Apply", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, "", during, change},
		{"one not ready changes too: the date enforces regardless", flagMigration(&deadline),
			Tenant{CreatedAt: old, Readiness: Readiness{Reason: "NoEmailProvider"}}, apply, during, change},
		{"one whose readiness is unknown changes too", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: Readiness{Unknown: true}}, apply, during, change},
		{"before the grace period, every old tenant is counted", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, apply, graceStart.Add(-ns), change},
		{"an opted-in tenant has the change already", flagMigration(&deadline), Tenant{CreatedAt: old, OptedIn: true, Readiness: ready}, apply, during, ""},
		{"an enrolled tenant has the change already", flagMigration(&deadline), Tenant{CreatedAt: graceStart, Readiness: ready}, apply, during, ""},
		{"a tenant already carrying the flags is not changed", flagMigration(&deadline),
			Tenant{CreatedAt: old, Readiness: ready, Flags: map[string]bool{"change_pwd_flow_v1": false}}, apply, during, ""},
		{"a tenant declaring the flags is not changed", flagMigration(&deadline),
			Tenant{CreatedAt: old, Readiness: ready, DeclaredFlags: map[string]bool{"change_pwd_flow_v1": false}}, apply, during, ""},
		{"a tenant carrying the flag at the other value is changed", flagMigration(&deadline),
			Tenant{CreatedAt: old, Readiness: ready, Flags: map[string]bool{"change_pwd_flow_v1": true}}, apply, during, change},
		{"under Plan: planned only", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, plan, during, planned},
		{"under Plan, opted in: nothing at the date", flagMigration(&deadline), Tenant{CreatedAt: old, OptedIn: true, Readiness: ready}, plan, during, ""},
		{"under Observe: not managed", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, observe, during, notMgd},
		{"under Observe, opted in: not managed all the same", flagMigration(&deadline), Tenant{CreatedAt: old, OptedIn: true, Readiness: ready}, observe, during, notMgd},
		{"TBD: the tenants the date will change when it is set", flagMigration(nil), Tenant{CreatedAt: old, Readiness: ready}, apply, during, change},
		{"1ns before the date: still to change", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, apply, deadline.Add(-ns), change},
		{"exactly at the date: enforced", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, apply, deadline, change},
		{"after the date, a flag read since does not hide the enforcement", flagMigration(&deadline),
			Tenant{CreatedAt: old, Readiness: ready, Flags: map[string]bool{"change_pwd_flow_v1": false}}, apply, deadline.Add(ns), change},
		{"after the date, a tenant declaring the flags was not changed by it", flagMigration(&deadline),
			Tenant{CreatedAt: old, Readiness: ready, DeclaredFlags: map[string]bool{"change_pwd_flow_v1": false}}, apply, deadline.Add(ns), ""},
		{"after the date, an opted-in tenant was not the date's", flagMigration(&deadline), Tenant{CreatedAt: old, OptedIn: true, Readiness: ready}, apply, deadline.Add(ns), ""},
		{"after the date, under Plan: still planned only", flagMigration(&deadline), Tenant{CreatedAt: old, Readiness: ready}, plan, deadline.Add(ns), planned},
		{"a migration without a change changes nobody", checkOnlyMigration(), Tenant{CreatedAt: old}, apply, during, ""},
		{"a migration without a change: Observe is not the date's either", checkOnlyMigration(), Tenant{CreatedAt: old}, observe, during, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(AtDate(tc.migration, tc.tenant, tc.policy, tc.now)).To(Equal(tc.want))
		})
	}
}
