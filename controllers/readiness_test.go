package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/migration"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// Readiness read from the tenant: the checks of a PlatformMigration are
// decided on what the Tenant reconciler read from the tenant at its last
// pass (status.observed), never by a call of the PlatformMigration
// reconciler.

// onSandbox makes an emulator tenant whose rules, hooks and database
// scripts run on Node.js version.
func onSandbox(version string) emulatortest.TenantOption {
	return emulatortest.WithSettings(map[string]any{"sandbox_version": version})
}

// tenantMigration waits until the Tenant's status reports migration name as
// check wants, and returns the Tenant.
func (f *fixture) tenantMigration(tenant, name string, timeout time.Duration, check func(g Gomega, s identityv1alpha1.TenantMigrationStatus)) *identityv1alpha1.Tenant {
	f.t.Helper()
	obj := &identityv1alpha1.Tenant{}
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: tenant}, obj)).To(Succeed())
		var found *identityv1alpha1.TenantMigrationStatus
		for i := range obj.Status.Migrations {
			if obj.Status.Migrations[i].Name == name {
				found = &obj.Status.Migrations[i]
			}
		}
		g.Expect(found).NotTo(BeNil(), "%s does not list %s yet: %+v", tenant, name, obj.Status.Migrations)
		check(g, *found)
	}, timeout, 100*time.Millisecond).Should(Succeed())
	return obj
}

// legacyDatabase is a CustomDatabaseConnection of tenant, with scripts that
// find nobody: enough for a check that asks whether the tenant has one.
func legacyDatabase(tenant, name string) string {
	return fmt.Sprintf(`
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: %[2]s}
spec:
  tenantRef: {name: %[1]s}
  connectionName: %[2]s
  scripts:
    login: {inline: "function login(email, password, callback) { callback(null, null); }"}
    getUser: {inline: "function getByEmail(email, callback) { callback(null, null); }"}
`, tenant, name)
}

func TestATenantOnAnOldSandboxIsNotReadyUntilItsSandboxIsRaised(t *testing.T) {
	f := newFixture(t)
	now := wholeSecond(clock.Now())
	name := "node-eol-" + f.ns
	long := createdAt(now.AddDate(-1, 0, 0))
	acme, _ := f.tenant("acme", indent(long), onSandbox("12"))
	f.tenant("globex", indent(long), onSandbox("16"))
	f.tenant("initech", indent(long)) // the emulator's default, 22
	deadline := now.Add(30 * 24 * time.Hour)
	m := f.migration(name, now.Add(-time.Hour), &deadline, `  readinessChecks:
    - type: SandboxVersionAtLeast
      version: "18"
`)

	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseGracePeriod))
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 3, Enabled: 1, NotReady: 2}))
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(
			And(HaveField("Name", "acme"), HaveField("State", identityv1alpha1.MigrationNotReady), HaveField("Reason", migration.ReasonSandboxVersionTooOld),
				HaveField("Message", ContainSubstring("sandbox_version is 12, below 18"))),
			And(HaveField("Name", "globex"), HaveField("State", identityv1alpha1.MigrationNotReady), HaveField("Reason", migration.ReasonSandboxVersionTooOld),
				HaveField("Message", ContainSubstring("sandbox_version is 16, below 18")))))
	})
	tenant := f.tenantMigration("acme", name, 10*time.Second, func(g Gomega, s identityv1alpha1.TenantMigrationStatus) {
		g.Expect(s.State).To(Equal(identityv1alpha1.MigrationNotReady))
		g.Expect(s.Reason).To(Equal(migration.ReasonSandboxVersionTooOld))
	})
	f.g.Expect(tenant.Status.Observed).To(Equal(&identityv1alpha1.ObservedTenantState{SandboxVersion: "12"}))
	f.g.Expect(f.clusterRow("platformmigrations", name)).To(And(HaveKeyWithValue("Enabled", "1/3"), HaveKeyWithValue("Not Ready", "2")))

	// acme's owners raise the sandbox on the platform: the next resync's
	// read sees it, and the same pass reports the tenant ready.
	f.emu.PatchSettings(acme, map[string]any{"sandbox_version": "18"})
	f.tenantMigration("acme", name, 3*resync, func(g Gomega, s identityv1alpha1.TenantMigrationStatus) {
		g.Expect(s.State).To(Equal(identityv1alpha1.MigrationEnabled))
		g.Expect(s.Reason).To(Equal(migration.ReasonReadinessCheckPassed))
	})
	// globex declares the new sandbox in its Tenant: the operator sets it.
	f.tenantFor(f.tenantDomain("globex"), "globex", indent(long+"settings: {sandboxVersion: \"18\"}"))
	f.g.Eventually(func() any { return f.emu.Settings(f.tenantDomain("globex"))["sandbox_version"] }, 3*resync, 50*time.Millisecond).Should(Equal("18"))
	f.migrationStatus(m, 3*resync, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 3, Enabled: 3}))
		g.Expect(s.TenantsNeedingAttention).To(BeEmpty())
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseGracePeriod), "an end of life completes only at its date")
	})
	// Steady state still costs one read per resync: the check is answered
	// from that read.
	before := f.emu.Requests(acme)
	time.Sleep(3 * resync)
	after := f.emu.Requests(acme)
	f.g.Expect(after.ManagementWrites()).To(Equal(before.ManagementWrites()), "an end of life writes nothing")
	f.g.Expect(after.Count("GET", "/api/v2/tenants/settings") - before.Count("GET", "/api/v2/tenants/settings")).To(BeNumerically("<=", 4))
}

func TestACustomDatabaseOnAnOldSandboxIsNamed(t *testing.T) {
	f := newFixture(t)
	now := wholeSecond(clock.Now())
	name := "cdb-sandbox-" + f.ns
	long := createdAt(now.AddDate(-1, 0, 0))
	f.tenant("acme", indent(long), onSandbox("16"))
	f.tenant("hooli", indent(long), onSandbox("12")) // old, but runs no database scripts
	f.apply(legacyDatabase("acme", "legacy-users"))
	m := f.migration(name, now.Add(-time.Hour), nil, `  readinessChecks:
    - type: CustomDatabaseSandboxAtLeast
      version: "18"
      message: Test the database scripts on Node.js 18 and raise the sandbox.
`)
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 2, Enabled: 1, NotReady: 1}))
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(And(HaveField("Name", "acme"),
			HaveField("Reason", migration.ReasonCustomDatabaseOnOldSandbox),
			HaveField("Message", And(
				ContainSubstring("CustomDatabaseConnection/legacy-users (connection legacy-users) runs its scripts on sandbox_version 16, below 18"),
				ContainSubstring("Test the database scripts on Node.js 18"))))))
	})

	// Without the connection, the old sandbox no longer matters.
	f.g.Expect(k8s.Delete(context.Background(), &identityv1alpha1.CustomDatabaseConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "legacy-users"}})).To(Succeed())
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 2, Enabled: 2}))
	})
}

func TestAnEndOfLifePastItsDateReportsAffectedTenantsAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	now := wholeSecond(clock.Now())
	name := "eol-" + f.ns
	long := createdAt(now.AddDate(-1, 0, 0))
	acme, _ := f.tenant("acme", indent(long), onSandbox("16"))
	hooli, _ := f.tenant("hooli", indent(long), onSandbox("22"))
	f.apply(legacyDatabase("acme", "legacy-users"))
	deadline := now.Add(-time.Hour)
	m := f.migration(name, now.Add(-48*time.Hour), &deadline, `  reminderInterval: 1h
  readinessChecks:
    - type: CustomDatabaseSandboxAtLeast
      version: "18"
`)

	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseEnforced))
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 2, Enabled: 1, Affected: 1}))
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(And(HaveField("Name", "acme"),
			HaveField("State", identityv1alpha1.MigrationAffected), HaveField("Reason", migration.ReasonCustomDatabaseOnOldSandbox),
			HaveField("Message", ContainSubstring("still affected")))))
		g.Expect(s.EnforcedTime).NotTo(BeNil())
	})
	f.tenantMigration("acme", name, 10*time.Second, func(g Gomega, s identityv1alpha1.TenantMigrationStatus) {
		g.Expect(s.State).To(Equal(identityv1alpha1.MigrationAffected))
		g.Expect(s.Reason).To(Equal(migration.ReasonCustomDatabaseOnOldSandbox))
	})
	f.g.Expect(f.clusterRow("platformmigrations", name)).To(And(HaveKeyWithValue("Phase", "Enforced"), HaveKeyWithValue("Affected", "1")))
	f.g.Expect(f.row("tenants", "acme")).To(HaveKeyWithValue("Migrations Pending", "1"))

	// The affected tenant's owners are reminded, and again after the interval.
	reminders := func() int {
		var list corev1.EventList
		f.g.Expect(k8s.List(context.Background(), &list, client.InNamespace(f.ns))).To(Succeed())
		n := 0
		for _, e := range list.Items {
			if e.InvolvedObject.Name == "acme" && e.Reason == identityv1alpha1.EventReasonReminder && strings.Contains(e.Message, "is Affected (CustomDatabaseOnOldSandbox)") {
				n += int(max(e.Count, 1)) // the recorder counts repeats of an event on one object
			}
		}
		return n
	}
	f.g.Eventually(reminders, 10*time.Second, 100*time.Millisecond).Should(Equal(1), func() string { return strings.Join(f.events("acme"), "\n") })
	f.g.Expect(f.clusterEvents(name)).To(ContainElement(ContainSubstring("the platform makes this change itself")))
	clock.Step(61 * time.Minute)
	f.g.Eventually(reminders, 10*resync, 100*time.Millisecond).Should(Equal(2))

	// Nothing was enforced: no settings were written to either tenant.
	for _, domain := range []string{acme, hooli} {
		f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(BeZero(), domain)
	}
	f.g.Expect(f.emu.Settings(acme)["sandbox_version"]).To(Equal("16"))
}

// The date itself brings a round of reminders, whatever the cadence: a
// tenant told it was not ready hears, at the date, that it is now affected.
func TestTheEndOfLifeDateRemindsTheTenantsItAffects(t *testing.T) {
	f := newFixture(t)
	now := clock.Now()
	name := "eol-date-" + f.ns
	f.tenant("globex", indent(createdAt(now.AddDate(-1, 0, 0))), onSandbox("16"))
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "globex"}})
	deadline := wholeSecond(now.Add(5 * time.Second)).Add(time.Second)
	f.migration(name, wholeSecond(now.Add(-time.Hour)), &deadline, `  reminderInterval: 720h
  readinessChecks:
    - type: SandboxVersionAtLeast
      version: "18"
`)
	reminded := func(state string) func() bool {
		return func() bool {
			for _, e := range f.events("globex") {
				if strings.HasPrefix(e, "Warning "+identityv1alpha1.EventReasonReminder) && strings.Contains(e, name) && strings.Contains(e, "is "+state+" (SandboxVersionTooOld)") {
					return true
				}
			}
			return false
		}
	}
	f.g.Eventually(reminded("NotReady"), 10*time.Second, 100*time.Millisecond).Should(BeTrue())
	f.g.Expect(clock.Now().Before(deadline)).To(BeTrue(), "the setup took longer than the deadline allows")
	f.g.Eventually(reminded("Affected"), 10*time.Second, 100*time.Millisecond).Should(BeTrue(), "no reminder at the date")
}

func TestAMigrationFlagThePlatformRetiredLeavesTheOtherSettingsApplied(t *testing.T) {
	tests := []struct {
		name   string
		flag   string
		refuse func(f *fixture, domain string)
		answer string
	}{{
		name:   "a flag the platform does not have",
		flag:   "enable_retired_feature",
		answer: "Additional properties not allowed: enable_retired_feature",
	}, {
		name: "a flag the platform does not let anyone set",
		flag: "change_pwd_flow_v1",
		refuse: func(f *fixture, domain string) {
			f.emu.RefuseFlags(domain, "change_pwd_flow_v1", "disable_impersonation")
		},
		answer: "You are not allowed to set flag 'change_pwd_flow_v1'",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			now := wholeSecond(clock.Now())
			name := "retired-" + f.ns
			domain, _ := f.tenant("acme", indent(createdAt(now.AddDate(-1, 0, 0))+`optInMigrations: [`+name+`]
settings: {friendlyName: Acme Corp}
flags: {enable_sso: false}`), emulatortest.Legacy())
			if tt.refuse != nil {
				tt.refuse(f, domain)
			}
			m := f.migration(name, now.Add(-time.Hour), nil, fmt.Sprintf("  change:\n    flags: {%s: false, enable_legacy_profile: false}\n", tt.flag))

			// The Tenant is Ready, with every other setting applied...
			tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
			f.ready(tenant)
			f.g.Eventually(func() any { return f.emu.Settings(domain)["friendly_name"] }, 10*resync, 50*time.Millisecond).Should(Equal("Acme Corp"))
			f.g.Expect(f.flag(domain, "enable_sso")).To(Equal(false))
			f.g.Expect(f.flag(domain, "enable_legacy_profile")).To(Equal(false), "the migration's other flag is applied")
			// ...and the migration says which flag is gone, and why.
			tenant = f.tenantMigration("acme", name, 10*time.Second, func(g Gomega, s identityv1alpha1.TenantMigrationStatus) {
				g.Expect(s.State).To(Equal(identityv1alpha1.MigrationFailed))
				g.Expect(s.Reason).To(Equal(identityv1alpha1.ReasonFlagRetired))
				g.Expect(s.Message).To(And(ContainSubstring("flags."+tt.flag), ContainSubstring(tt.answer)))
			})
			f.g.Expect(tenant.Status.RetiredFlags).To(ConsistOf(And(HaveField("Flag", tt.flag), HaveField("Migrations", []string{name}))))
			f.g.Expect(f.events("acme")).To(ContainElement(HavePrefix("Warning " + identityv1alpha1.EventReasonFlagRetired)))
			f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
				g.Expect(s.Tenants.Failed).To(BeNumerically("==", 1))
				g.Expect(s.TenantsNeedingAttention).To(ConsistOf(And(HaveField("Name", "acme"), HaveField("Reason", identityv1alpha1.ReasonFlagRetired))))
			})

			// The retired flag is not sent again.
			patches := f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")
			time.Sleep(3 * resync)
			f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(patches))
			f.g.Expect(meta_IsTrue(tenant, identityv1alpha1.ConditionReady)).To(BeTrue())

			// The same flag declared by the Tenant itself is the Tenant's to
			// fix: the terminal FlagRefused.
			f.tenantFor(domain, "acme", indent(createdAt(now.AddDate(-1, 0, 0))+`optInMigrations: [`+name+`]
settings: {friendlyName: Acme Corp}
flags: {enable_sso: false, `+tt.flag+`: true}`))
			f.condition(tenant, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonFlagRefused)
		})
	}
}
