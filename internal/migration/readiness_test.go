package migration

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

func TestVersionsCompareNumberByNumber(t *testing.T) {
	tests := []struct {
		have, want string
		atLeast    bool
	}{
		{"12", "18", false},
		{"16", "18", false},
		{"18", "18", true},
		{"22", "18", true},
		{"8", "12", false}, // not "8" > "12" as strings
		{"18", "18.0", true},
		{"18.17", "18.18", false},
		{"18.17.1", "18.17", true},
		{"v18", "18", true},
		{"node16", "18", false},
	}
	for _, tt := range tests {
		t.Run(tt.have+" vs "+tt.want, func(t *testing.T) {
			g := NewWithT(t)
			got, err := VersionAtLeast(tt.have, tt.want)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.atLeast))
		})
	}
	for _, bad := range []string{"", "latest", "18.x", "-1"} {
		_, err := VersionAtLeast(bad, "18")
		NewWithT(t).Expect(err).To(HaveOccurred(), "%q is not a version", bad)
	}
}

func TestReadinessChecksReadTheRecordedTenantState(t *testing.T) {
	sandbox := func(v string) identityv1alpha1.ReadinessCheck {
		return identityv1alpha1.ReadinessCheck{Type: identityv1alpha1.ReadinessSandboxVersionAtLeast, Version: v}
	}
	customDB := func(v string) identityv1alpha1.ReadinessCheck {
		return identityv1alpha1.ReadinessCheck{Type: identityv1alpha1.ReadinessCustomDatabaseSandboxAtLeast, Version: v}
	}
	flag := func(name string, v bool) identityv1alpha1.ReadinessCheck {
		return identityv1alpha1.ReadinessCheck{Type: identityv1alpha1.ReadinessFlagValue, Flag: name, Value: &v}
	}
	email := identityv1alpha1.ReadinessCheck{Type: identityv1alpha1.ReadinessEmailProviderConfigured}
	legacyDB := []string{"CustomDatabaseConnection/legacy-users (connection legacy-db)"}

	tests := []struct {
		name       string
		checks     []identityv1alpha1.ReadinessCheck
		state      TenantState
		wantReason string // "" for ready
		message    string
	}{
		{"sandbox 12 below 18", []identityv1alpha1.ReadinessCheck{sandbox("18")}, TenantState{Observed: true, SandboxVersion: "12"},
			ReasonSandboxVersionTooOld, "sandbox_version is 12, below 18"},
		{"sandbox 18 meets 18", []identityv1alpha1.ReadinessCheck{sandbox("18")}, TenantState{Observed: true, SandboxVersion: "18"}, "", ""},
		{"sandbox 22 meets 18", []identityv1alpha1.ReadinessCheck{sandbox("18")}, TenantState{Observed: true, SandboxVersion: "22"}, "", ""},
		{"sandbox not read yet", []identityv1alpha1.ReadinessCheck{sandbox("18")}, TenantState{},
			ReasonReadinessUnknown, "not read"},
		{"no sandbox reported", []identityv1alpha1.ReadinessCheck{sandbox("18")}, TenantState{Observed: true},
			ReasonSandboxVersionUnknown, "reports no sandbox_version"},
		{"sandbox not a version", []identityv1alpha1.ReadinessCheck{sandbox("18")}, TenantState{Observed: true, SandboxVersion: "latest"},
			ReasonSandboxVersionUnknown, `"latest"`},
		{"old sandbox without a custom database is not affected", []identityv1alpha1.ReadinessCheck{customDB("18")},
			TenantState{Observed: true, SandboxVersion: "12"}, "", ""},
		{"custom database on sandbox 16", []identityv1alpha1.ReadinessCheck{customDB("18")},
			TenantState{Observed: true, SandboxVersion: "16", CustomDatabases: legacyDB},
			ReasonCustomDatabaseOnOldSandbox, "CustomDatabaseConnection/legacy-users (connection legacy-db) runs its scripts on sandbox_version 16, below 18"},
		{"custom database on sandbox 18", []identityv1alpha1.ReadinessCheck{customDB("18")},
			TenantState{Observed: true, SandboxVersion: "18", CustomDatabases: legacyDB}, "", ""},
		{"flag with the value", []identityv1alpha1.ReadinessCheck{flag("enable_legacy_profile", false)},
			TenantState{Observed: true, Flags: map[string]*bool{"enable_legacy_profile": ptr(false)}}, "", ""},
		{"flag with the other value", []identityv1alpha1.ReadinessCheck{flag("enable_legacy_profile", false)},
			TenantState{Observed: true, Flags: map[string]*bool{"enable_legacy_profile": ptr(true)}}, ReasonFlagNotSet, "flags.enable_legacy_profile is true on the tenant (it must be false)"},
		{"flag the tenant does not report", []identityv1alpha1.ReadinessCheck{flag("enable_legacy_profile", false)},
			TenantState{Observed: true, Flags: map[string]*bool{"enable_legacy_profile": nil}}, ReasonFlagNotSet, "does not report flags.enable_legacy_profile"},
		{"flag not looked for yet", []identityv1alpha1.ReadinessCheck{flag("enable_legacy_profile", false)},
			TenantState{Observed: true, Flags: map[string]*bool{}}, ReasonReadinessUnknown, "has not read flags.enable_legacy_profile"},
		{"no provider", []identityv1alpha1.ReadinessCheck{email}, TenantState{Observed: true}, ReasonNoEmailProvider, "configure an EmailProvider"},
		{"the first failing check gives the reason", []identityv1alpha1.ReadinessCheck{customDB("18"), sandbox("18")},
			TenantState{Observed: true, SandboxVersion: "16", CustomDatabases: legacyDB}, ReasonCustomDatabaseOnOldSandbox, "legacy-users"},
		{"a later check fails when the first passes", []identityv1alpha1.ReadinessCheck{customDB("18"), sandbox("18")},
			TenantState{Observed: true, SandboxVersion: "16"}, ReasonSandboxVersionTooOld, "below 18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := CheckReadiness(tt.checks, tt.state)
			g.Expect(r.Ready).To(Equal(tt.wantReason == ""), "%+v", r)
			g.Expect(r.Unknown).To(Equal(tt.wantReason == ReasonReadinessUnknown), "%+v", r)
			g.Expect(r.Reason).To(Equal(tt.wantReason))
			g.Expect(r.Message).To(ContainSubstring(tt.message))
		})
	}
}

func TestACheckMessageReplacesTheAdviceNotTheFinding(t *testing.T) {
	g := NewWithT(t)
	r := CheckReadiness([]identityv1alpha1.ReadinessCheck{{Type: identityv1alpha1.ReadinessSandboxVersionAtLeast, Version: "18",
		Message: "Node.js 12 and 16 are removed from 2025-02-10."}}, TenantState{Observed: true, SandboxVersion: "16"})
	g.Expect(r.Message).To(Equal("the tenant's sandbox_version is 16, below 18. Node.js 12 and 16 are removed from 2025-02-10."))
	r = CheckReadiness([]identityv1alpha1.ReadinessCheck{{Type: identityv1alpha1.ReadinessSandboxVersionAtLeast, Version: "18"}},
		TenantState{Observed: true, SandboxVersion: "16"})
	g.Expect(r.Message).To(HavePrefix("the tenant's sandbox_version is 16, below 18; test its rules"))
}

// An end-of-life migration changes no flag: from its date on, a tenant
// that still fails a readiness check is Affected, and nothing is applied.
func TestEndOfLifeReportsAffectedTenantsFromExactlyTheDeadline(t *testing.T) {
	m := checkOnlyMigration()
	m.Name = "nodejs-12-16-runtime-end-of-life"
	m.Spec.ReadinessChecks = []identityv1alpha1.ReadinessCheck{{Type: identityv1alpha1.ReadinessSandboxVersionAtLeast, Version: "18"}}
	old := Tenant{CreatedAt: graceStart.AddDate(-1, 0, 0),
		Readiness: CheckReadiness(m.Spec.ReadinessChecks, TenantState{Observed: true, SandboxVersion: "12"})}
	current := Tenant{CreatedAt: graceStart.AddDate(-1, 0, 0),
		Readiness: CheckReadiness(m.Spec.ReadinessChecks, TenantState{Observed: true, SandboxVersion: "18"})}
	tests := []struct {
		name       string
		tenant     Tenant
		now        time.Time
		wantState  identityv1alpha1.MigrationState
		wantReason string
	}{
		{"old sandbox 1ns before the deadline", old, deadline.Add(-ns), identityv1alpha1.MigrationNotReady, ReasonSandboxVersionTooOld},
		{"old sandbox exactly at the deadline", old, deadline, identityv1alpha1.MigrationAffected, ReasonSandboxVersionTooOld},
		{"old sandbox 1ns after the deadline", old, deadline.Add(ns), identityv1alpha1.MigrationAffected, ReasonSandboxVersionTooOld},
		{"current sandbox 1ns before the deadline", current, deadline.Add(-ns), identityv1alpha1.MigrationEnabled, ReasonReadinessCheckPassed},
		{"current sandbox after the deadline", current, deadline.Add(ns), identityv1alpha1.MigrationEnabled, ReasonReadinessCheckPassed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(m, tt.tenant, tt.now)
			g.Expect(d.Apply).To(BeFalse(), "an end of life enforces nothing")
			g.Expect(d.State).To(Equal(tt.wantState))
			g.Expect(d.Reason).To(Equal(tt.wantReason))
		})
	}
	// With the date TBD, an affected tenant stays NotReady for as long as it takes.
	tbd := m.DeepCopy()
	tbd.Spec.MandatoryOptIn = nil
	NewWithT(t).Expect(Decide(tbd, old, deadline.AddDate(5, 0, 0)).State).To(Equal(identityv1alpha1.MigrationNotReady))
}

func TestCheckedFlagsAreTheFlagValueChecksFlags(t *testing.T) {
	no := false
	m := &identityv1alpha1.PlatformMigration{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Spec: identityv1alpha1.PlatformMigrationSpec{
		ReadinessChecks: []identityv1alpha1.ReadinessCheck{
			{Type: identityv1alpha1.ReadinessSandboxVersionAtLeast, Version: "18"},
			{Type: identityv1alpha1.ReadinessFlagValue, Flag: "enable_legacy_profile", Value: &no},
		}}}
	NewWithT(t).Expect(CheckedFlags(m)).To(Equal([]string{"enable_legacy_profile"}))
}

func ptr[T any](v T) *T { return &v }

// Before the tenant is read, nobody can say whether it is ready: it is
// pending, for a migration of either kind, and never Affected.
func TestAnUnreadTenantIsPendingNotNotReady(t *testing.T) {
	unread := Tenant{CreatedAt: graceStart.AddDate(-1, 0, 0),
		Readiness: CheckReadiness([]identityv1alpha1.ReadinessCheck{{Type: identityv1alpha1.ReadinessSandboxVersionAtLeast, Version: "18"}}, TenantState{})}
	eol := checkOnlyMigration()
	withChange := flagMigration(&deadline)
	tests := []struct {
		name      string
		m         *identityv1alpha1.PlatformMigration
		now       time.Time
		wantState identityv1alpha1.MigrationState
		wantApply bool
	}{
		{"end of life before its date", eol, deadline.Add(-ns), identityv1alpha1.MigrationPending, false},
		{"end of life after its date", eol, deadline.Add(ns), identityv1alpha1.MigrationPending, false},
		{"a change during the grace period", withChange, deadline.Add(-ns), identityv1alpha1.MigrationPending, false},
		{"a change after its date is enforced anyway", withChange, deadline, identityv1alpha1.MigrationEnabled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(tt.m, unread, tt.now)
			g.Expect(d.State).To(Equal(tt.wantState))
			g.Expect(d.Apply).To(Equal(tt.wantApply))
			if !tt.wantApply {
				g.Expect(d.Reason).To(Equal(ReasonReadinessUnknown))
			}
		})
	}
}

// The mandatory date brings a round of its own, so that an end of life's
// tenants hear that they are now affected without waiting for the cadence.
func TestAReminderRoundIsDueAtExactlyTheMandatoryDate(t *testing.T) {
	interval := 720 * time.Hour
	before := deadline.Add(-time.Hour)
	at := deadline
	tests := []struct {
		name     string
		last     *time.Time
		now      time.Time
		wantDue  bool
		wantNext time.Time
	}{
		{"1ns before the date: the next round is the date", &before, deadline.Add(-ns), false, deadline},
		{"exactly at the date", &before, deadline, true, deadline.Add(interval)},
		{"1ns after the date (a late pass)", &before, deadline.Add(ns), true, deadline.Add(ns).Add(interval)},
		{"the round at the date is not repeated", &at, deadline.Add(time.Hour), false, deadline.Add(interval)},
		{"never sent", nil, deadline.Add(time.Hour), true, deadline.Add(time.Hour).Add(interval)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mandatory := deadline
			due, next := ReminderDueAt(tt.last, interval, &mandatory, tt.now)
			g.Expect(due).To(Equal(tt.wantDue))
			g.Expect(next).To(Equal(tt.wantNext))
		})
	}
	// With the date TBD, only the cadence.
	due, next := ReminderDueAt(&before, interval, nil, deadline)
	NewWithT(t).Expect([]any{due, next}).To(Equal([]any{false, before.Add(interval)}))
}
