package migration

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

var (
	graceStart = time.Date(2016, 3, 22, 0, 0, 0, 0, time.UTC)
	deadline   = time.Date(2016, 4, 27, 0, 0, 0, 0, time.UTC)
	ns         = time.Nanosecond
)

func flagMigration(mandatory *time.Time) *identityv1alpha1.PlatformMigration {
	m := &identityv1alpha1.PlatformMigration{
		ObjectMeta: metav1.ObjectMeta{Name: "vulnerable-password-flow"},
		Spec: identityv1alpha1.PlatformMigrationSpec{
			Severity:         identityv1alpha1.SeverityMedium,
			GracePeriodStart: metav1.NewTime(graceStart),
			Change:           &identityv1alpha1.MigrationChange{Flags: map[string]bool{"change_pwd_flow_v1": false}},
		},
	}
	if mandatory != nil {
		t := metav1.NewTime(*mandatory)
		m.Spec.MandatoryOptIn = &t
	}
	return m
}

func checkOnlyMigration() *identityv1alpha1.PlatformMigration {
	m := flagMigration(&deadline)
	m.Name = "email-from-address"
	m.Spec.Change = nil
	m.Spec.ReadinessChecks = []identityv1alpha1.ReadinessCheck{{Type: identityv1alpha1.ReadinessEmailProviderConfigured}}
	return m
}

func TestPhaseChangesExactlyAtTheGraceStartAndTheDeadline(t *testing.T) {
	withDeadline := flagMigration(&deadline).Spec
	tbd := flagMigration(nil).Spec
	tests := []struct {
		name string
		spec *identityv1alpha1.PlatformMigrationSpec
		now  time.Time
		want identityv1alpha1.MigrationPhase
	}{
		{"1ns before the grace period", &withDeadline, graceStart.Add(-ns), identityv1alpha1.PhaseScheduled},
		{"exactly at the grace start", &withDeadline, graceStart, identityv1alpha1.PhaseGracePeriod},
		{"1ns into the grace period", &withDeadline, graceStart.Add(ns), identityv1alpha1.PhaseGracePeriod},
		{"1ns before the deadline", &withDeadline, deadline.Add(-ns), identityv1alpha1.PhaseGracePeriod},
		{"exactly at the deadline", &withDeadline, deadline, identityv1alpha1.PhaseEnforced},
		{"1ns after the deadline", &withDeadline, deadline.Add(ns), identityv1alpha1.PhaseEnforced},
		{"TBD stays in the grace period for years", &tbd, graceStart.AddDate(10, 0, 0), identityv1alpha1.PhaseGracePeriod},
		{"TBD before its grace period", &tbd, graceStart.Add(-ns), identityv1alpha1.PhaseScheduled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(Phase(tt.spec, tt.now)).To(Equal(tt.want))
		})
	}
}

func TestPhaseIsCompletedOnlyWhenEnforcedOnEveryTenant(t *testing.T) {
	spec := flagMigration(&deadline).Spec
	tests := []struct {
		name              string
		now               time.Time
		selected, enabled int
		want              identityv1alpha1.MigrationPhase
	}{
		{"all enabled after the deadline", deadline, 3, 3, identityv1alpha1.PhaseCompleted},
		{"one left after the deadline", deadline, 3, 2, identityv1alpha1.PhaseEnforced},
		{"all enabled before the deadline is still a grace period", deadline.Add(-ns), 3, 3, identityv1alpha1.PhaseGracePeriod},
		{"no tenants selected is not completed", deadline, 0, 0, identityv1alpha1.PhaseEnforced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(PhaseWithTenants(&spec, tt.now, tt.selected, tt.enabled)).To(Equal(tt.want))
		})
	}
}

func TestDecideForAFlagMigration(t *testing.T) {
	oldTenant := graceStart.AddDate(-1, 0, 0)
	ready := Readiness{Ready: true}
	noProvider := Readiness{Reason: "NoEmailProvider", Message: "configure an EmailProvider"}
	tests := []struct {
		name       string
		mandatory  *time.Time
		tenant     Tenant
		now        time.Time
		wantApply  bool
		wantState  identityv1alpha1.MigrationState
		wantReason string
	}{
		{"opted in before the grace period: nothing yet", &deadline, Tenant{CreatedAt: oldTenant, OptedIn: true, Readiness: ready}, graceStart.Add(-ns),
			false, identityv1alpha1.MigrationPending, ReasonGracePeriodNotStarted},
		{"opted in, exactly at the grace start", &deadline, Tenant{CreatedAt: oldTenant, OptedIn: true, Readiness: ready}, graceStart,
			true, identityv1alpha1.MigrationEnabled, ReasonOptedIn},
		{"not opted in during the grace period", &deadline, Tenant{CreatedAt: oldTenant, Readiness: ready}, deadline.Add(-ns),
			false, identityv1alpha1.MigrationPending, ReasonNotOptedIn},
		{"not opted in, exactly at the deadline", &deadline, Tenant{CreatedAt: oldTenant, Readiness: ready}, deadline,
			true, identityv1alpha1.MigrationEnabled, ReasonEnforced},
		{"not opted in, 1ns after the deadline", &deadline, Tenant{CreatedAt: oldTenant, Readiness: ready}, deadline.Add(ns),
			true, identityv1alpha1.MigrationEnabled, ReasonEnforced},
		{"created 1ns before the grace start is not enrolled", &deadline, Tenant{CreatedAt: graceStart.Add(-ns), Readiness: ready}, graceStart.Add(time.Hour),
			false, identityv1alpha1.MigrationPending, ReasonNotOptedIn},
		{"created exactly at the grace start is enrolled", &deadline, Tenant{CreatedAt: graceStart, Readiness: ready}, graceStart.Add(time.Hour),
			true, identityv1alpha1.MigrationEnabled, ReasonAutoEnrolled},
		{"created after the grace start is enrolled", &deadline, Tenant{CreatedAt: graceStart.Add(ns), Readiness: ready}, graceStart.Add(time.Hour),
			true, identityv1alpha1.MigrationEnabled, ReasonAutoEnrolled},
		{"opted in but not ready waits", &deadline, Tenant{CreatedAt: oldTenant, OptedIn: true, Readiness: noProvider}, deadline.Add(-ns),
			false, identityv1alpha1.MigrationNotReady, "NoEmailProvider"},
		{"not ready is enforced at the deadline anyway", &deadline, Tenant{CreatedAt: oldTenant, OptedIn: true, Readiness: noProvider}, deadline,
			true, identityv1alpha1.MigrationEnabled, ReasonOptedIn},
		{"TBD: not opted in stays pending", nil, Tenant{CreatedAt: oldTenant, Readiness: ready}, graceStart.AddDate(10, 0, 0),
			false, identityv1alpha1.MigrationPending, ReasonNotOptedIn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(flagMigration(tt.mandatory), tt.tenant, tt.now)
			g.Expect(d.Apply).To(Equal(tt.wantApply))
			g.Expect(d.State).To(Equal(tt.wantState))
			g.Expect(d.Reason).To(Equal(tt.wantReason))
			g.Expect(d.Message).NotTo(BeEmpty())
		})
	}
}

func TestDecideForAMigrationThePlatformMakesItself(t *testing.T) {
	m := checkOnlyMigration()
	tests := []struct {
		name      string
		ready     bool
		now       time.Time
		wantState identityv1alpha1.MigrationState
		message   string
	}{
		{"before the grace period", false, graceStart.Add(-ns), identityv1alpha1.MigrationPending, "starts"},
		{"with a provider", true, graceStart, identityv1alpha1.MigrationEnabled, "meets every readiness check"},
		{"without a provider before the deadline", false, deadline.Add(-ns), identityv1alpha1.MigrationNotReady, "before the mandatory date"},
		{"without a provider after the deadline", false, deadline, identityv1alpha1.MigrationAffected, "still affected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide(m, Tenant{CreatedAt: graceStart.AddDate(-1, 0, 0), Readiness: Readiness{Ready: tt.ready, Reason: "NoEmailProvider", Message: "configure one"}}, tt.now)
			g.Expect(d.Apply).To(BeFalse(), "the operator has nothing to apply for this migration")
			g.Expect(d.State).To(Equal(tt.wantState))
			g.Expect(d.Message).To(ContainSubstring(tt.message))
		})
	}
}

func TestNextTransitionIsTheNextCalendarBoundary(t *testing.T) {
	spec := flagMigration(&deadline).Spec
	tbd := flagMigration(nil).Spec
	tests := []struct {
		name   string
		spec   *identityv1alpha1.PlatformMigrationSpec
		now    time.Time
		want   time.Time
		wantOK bool
	}{
		{"1ns before the grace start", &spec, graceStart.Add(-ns), graceStart, true},
		{"exactly at the grace start: the deadline is next", &spec, graceStart, deadline, true},
		{"1ns before the deadline", &spec, deadline.Add(-ns), deadline, true},
		{"exactly at the deadline: nothing left", &spec, deadline, time.Time{}, false},
		{"TBD in the grace period: nothing to wait for", &tbd, graceStart, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			at, ok := NextTransition(tt.spec, tt.now)
			g.Expect(ok).To(Equal(tt.wantOK))
			g.Expect(at).To(Equal(tt.want))
		})
	}
}

func TestReminderIsDueOncePerInterval(t *testing.T) {
	interval := 168 * time.Hour
	last := deadline.Add(-30 * 24 * time.Hour)
	tests := []struct {
		name     string
		last     *time.Time
		now      time.Time
		wantDue  bool
		wantNext time.Time
	}{
		{"never sent", nil, last, true, last.Add(interval)},
		{"1ns before the interval ends", &last, last.Add(interval - ns), false, last.Add(interval)},
		{"exactly when the interval ends", &last, last.Add(interval), true, last.Add(2 * interval)},
		{"long overdue (after a restart): one reminder, then a full interval", &last, last.Add(5 * interval), true, last.Add(6 * interval)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			due, next := ReminderDue(tt.last, interval, tt.now)
			g.Expect(due).To(Equal(tt.wantDue))
			g.Expect(next).To(Equal(tt.wantNext))
		})
	}
}

func TestRequeueAfterPicksTheEarliestMomentAhead(t *testing.T) {
	g := NewWithT(t)
	now := deadline.Add(-time.Minute)
	d, ok := RequeueAfter(now, time.Time{}, now.Add(-time.Hour), deadline, now.Add(time.Hour))
	g.Expect(ok).To(BeTrue())
	g.Expect(d).To(Equal(time.Minute))
	_, ok = RequeueAfter(now, now, now.Add(-ns))
	g.Expect(ok).To(BeFalse(), "a moment exactly now or past is not ahead")
}

func TestTenantWakeUpComesToPrepareBeforeTheTransitionThenAtIt(t *testing.T) {
	prepare := deadline.Add(-PrepareAhead)
	tests := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"long before: to prepare", deadline.Add(-time.Hour), prepare},
		{"prepare -1ns: to prepare", prepare.Add(-ns), prepare},
		{"exactly at prepare: the transition", prepare, deadline},
		{"prepare +1ns: the transition", prepare.Add(ns), deadline},
		{"deadline -1ns: the transition", deadline.Add(-ns), deadline},
		{"exactly at the transition: the transition (RequeueAfter finds nothing ahead)", deadline, deadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(TenantWakeUp(tt.now, deadline)).To(Equal(tt.want))
		})
	}
	NewWithT(t).Expect(TenantWakeUp(deadline, time.Time{})).To(BeZero(), "no transition, no wake-up")
}

func TestMergeFlagsLetsEnabledMigrationsWinAndSaysSo(t *testing.T) {
	tests := []struct {
		name          string
		declared      map[string]bool
		changes       []Change
		want          map[string]bool
		wantOverrides []Override
	}{
		{
			name:     "no migrations: the Tenant's own flags",
			declared: map[string]bool{"enable_sso": true},
			want:     map[string]bool{"enable_sso": true},
		},
		{
			name:     "a migration adds its flag",
			declared: map[string]bool{"enable_sso": true},
			changes:  []Change{{Migration: "vulnerable-password-flow", Flags: map[string]bool{"change_pwd_flow_v1": false}}},
			want:     map[string]bool{"enable_sso": true, "change_pwd_flow_v1": false},
		},
		{
			name:          "a Tenant asking for the old value is overridden",
			declared:      map[string]bool{"change_pwd_flow_v1": true},
			changes:       []Change{{Migration: "vulnerable-password-flow", Flags: map[string]bool{"change_pwd_flow_v1": false}}},
			want:          map[string]bool{"change_pwd_flow_v1": false},
			wantOverrides: []Override{{Flag: "change_pwd_flow_v1", Declared: true, Migration: "vulnerable-password-flow", Value: false}},
		},
		{
			name:     "agreeing values are no override",
			declared: map[string]bool{"change_pwd_flow_v1": false},
			changes:  []Change{{Migration: "vulnerable-password-flow", Flags: map[string]bool{"change_pwd_flow_v1": false}}},
			want:     map[string]bool{"change_pwd_flow_v1": false},
		},
		{
			name: "two migrations: both flags, in one set",
			changes: []Change{
				{Migration: "vulnerable-password-flow", Flags: map[string]bool{"change_pwd_flow_v1": false}},
				{Migration: "idp-tokens-removed-from-profile", Flags: map[string]bool{"enable_legacy_profile": false}},
			},
			want: map[string]bool{"change_pwd_flow_v1": false, "enable_legacy_profile": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, overrides := MergeFlags(tt.declared, tt.changes)
			g.Expect(got).To(Equal(tt.want))
			g.Expect(overrides).To(Equal(tt.wantOverrides))
		})
	}
}
