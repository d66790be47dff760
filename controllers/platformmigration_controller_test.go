package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/reminder"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// migration applies a PlatformMigration limited to the test's namespace and
// deletes it when the test ends. Times are whole seconds, as the API keeps them.
func (f *fixture) migration(name string, grace time.Time, mandatory *time.Time, specLines string) *identityv1alpha1.PlatformMigration {
	f.t.Helper()
	mandatoryLine := ""
	if mandatory != nil {
		mandatoryLine = fmt.Sprintf("  mandatoryOptIn: %q\n", mandatory.UTC().Format(time.RFC3339))
	}
	f.apply(fmt.Sprintf(`
apiVersion: identity.tenantops.io/v1alpha1
kind: PlatformMigration
metadata: {name: %s}
spec:
  severity: Medium
  gracePeriodStart: %q
%s  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: %s}
%s`, name, grace.UTC().Format(time.RFC3339), mandatoryLine, f.ns, specLines))
	m := &identityv1alpha1.PlatformMigration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	f.t.Cleanup(func() { _ = k8s.Delete(context.Background(), m) })
	return m
}

// migrationStatus waits until the migration's status satisfies check.
func (f *fixture) migrationStatus(m *identityv1alpha1.PlatformMigration, timeout time.Duration, check func(g Gomega, s identityv1alpha1.PlatformMigrationStatus)) {
	f.t.Helper()
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: m.Name}, m)).To(Succeed())
		g.Expect(m.Status.Tenants).NotTo(BeNil(), "not evaluated yet")
		check(g, m.Status)
	}, timeout, 100*time.Millisecond).Should(Succeed())
}

func (f *fixture) flag(domain, name string) any { return f.emu.Flags(domain)[name] }

func createdAt(t time.Time) string {
	return fmt.Sprintf("createdAt: %q\n", t.UTC().Format(time.RFC3339))
}

func wholeSecond(t time.Time) time.Time { return t.Truncate(time.Second) }

func TestMigrationLifecycleFromScheduledToCompleted(t *testing.T) {
	f := newFixture(t)
	now := wholeSecond(clock.Now())
	grace, deadline := now.Add(24*time.Hour), now.Add(48*time.Hour)
	name := "pwflow-" + f.ns
	long := now.AddDate(-1, 0, 0)

	acme, _ := f.tenant("acme", indent(createdAt(long)+"optInMigrations: ["+name+"]"), emulatortest.Legacy())
	globex, globexCreds := f.tenant("globex", indent(createdAt(long)+"flags: {change_pwd_flow_v1: true}"), emulatortest.Legacy())
	newco, _ := f.tenant("newco", indent(createdAt(grace.Add(time.Hour))), emulatortest.Legacy())
	m := f.migration(name, grace, &deadline, "  change:\n    flags: {change_pwd_flow_v1: false}\n")

	// Before the grace period: nothing changes, all three are pending.
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseScheduled))
		g.Expect(s.Tenants.Selected).To(BeNumerically("==", 3))
		g.Expect(s.Progress).To(Equal("0/3"))
	})
	for _, d := range []string{acme, globex, newco} {
		f.g.Expect(f.flag(d, "change_pwd_flow_v1")).To(Equal(true))
	}

	// The grace period starts: the opted-in and the new tenant get the change.
	clock.Step(24 * time.Hour)
	f.g.Eventually(func() any { return f.flag(acme, "change_pwd_flow_v1") }, 10*resync, 50*time.Millisecond).Should(Equal(false))
	f.g.Eventually(func() any { return f.flag(newco, "change_pwd_flow_v1") }, 10*resync, 50*time.Millisecond).Should(Equal(false))
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseGracePeriod))
		g.Expect(s.Progress).To(Equal("2/3"))
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 3, Enabled: 2, OptedIn: 1, AutoEnrolled: 1, Pending: 1}))
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(And(
			HaveField("Name", "globex"), HaveField("State", identityv1alpha1.MigrationPending), HaveField("Reason", "NotOptedIn"))))
	})
	f.g.Expect(f.flag(globex, "change_pwd_flow_v1")).To(Equal(true), "a tenant that did not opt in changed during the grace period")
	row := f.clusterRow("platformmigrations", name)
	f.g.Expect(row).To(And(HaveKeyWithValue("Phase", "GracePeriod"), HaveKeyWithValue("Enabled", "2/3"), HaveKeyWithValue("Pending", "1"),
		HaveKeyWithValue("Mandatory", deadline.UTC().Format(time.RFC3339))))
	f.g.Expect(f.row("tenants", "globex")).To(HaveKeyWithValue("Migrations Pending", "1"))

	// The mandatory date passes: the last tenant is changed, whatever it asks.
	clock.Step(24 * time.Hour)
	f.g.Eventually(func() any { return f.flag(globex, "change_pwd_flow_v1") }, 10*resync, 50*time.Millisecond).Should(Equal(false))
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseCompleted))
		g.Expect(s.Progress).To(Equal("3/3"))
		g.Expect(s.EnforcedTime).NotTo(BeNil())
		g.Expect(s.TenantsNeedingAttention).To(BeEmpty())
	})
	msg := f.condition(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "globex"}}, controllers.ConditionMigrationOverride, metav1.ConditionTrue, "FlagOverriddenByMigration")
	f.g.Expect(msg).To(ContainSubstring("flags.change_pwd_flow_v1 is false, not true as declared, because " + name + " is enabled"))
	f.g.Expect(f.clusterRow("platformmigrations", name)).To(HaveKeyWithValue("Phase", "Completed"))
	for _, tenant := range []string{"acme", "globex", "newco"} {
		f.g.Expect(f.events(tenant)).NotTo(ContainElement(HavePrefix("Warning DriftCorrected")),
			"a change the migration asked for is not drift")
	}

	// What the change means for users: a password in the request is refused.
	form := url.Values{"client_id": {globexCreds.ClientID}, "email": {"ann@globex.example"}, "connection": {"users"}, "password": {"Attacker-pw-1"}}
	resp, err := f.emu.HTTPClient().Post(f.emu.BaseURL(globex)+"/dbconnections/change_password", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	f.g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	f.g.Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), "the old change-password flow still accepts a password")
}

func TestMigrationIsEnforcedWithinASecondOfARealDeadline(t *testing.T) {
	f := newFixture(t)
	now := clock.Now()
	deadline := wholeSecond(now.Add(4 * time.Second)).Add(time.Second)
	name := "realtime-" + f.ns
	domain, _ := f.tenant("late", indent(createdAt(now.AddDate(-1, 0, 0))), emulatortest.Legacy())
	m := f.migration(name, wholeSecond(now.Add(-time.Hour)), &deadline, "  change:\n    flags: {change_pwd_flow_v1: false, enable_legacy_profile: false}\n")
	f.migrationStatus(m, 10*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Tenants.Pending).To(BeNumerically("==", 1))
	})
	f.g.Expect(clock.Now().Before(deadline)).To(BeTrue(), "the setup took longer than the deadline allows; the measurement would be meaningless")

	var changedAt time.Time
	for clock.Now().Before(deadline.Add(5 * time.Second)) {
		if f.flag(domain, "change_pwd_flow_v1") == false {
			changedAt = clock.Now()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.g.Expect(changedAt).NotTo(BeZero(), "the flag never changed")
	lag := changedAt.Sub(deadline)
	t.Logf("flag changed %s after the deadline", lag)
	f.g.Expect(lag).To(BeNumerically(">=", 0), "changed before the deadline")
	f.g.Expect(lag).To(BeNumerically("<", time.Second))
	f.g.Expect(f.flag(domain, "enable_legacy_profile")).To(Equal(false))
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(1), "two flags, one PATCH")

	// Status follows, with one MigrationEnabled event; the date brings no
	// reminder to a tenant the operator is changing itself.
	f.migrationStatus(m, 10*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseCompleted))
	})
	count := func(reason string) int {
		n := 0
		for _, e := range f.events("late") {
			if strings.Contains(e, " "+reason+": ") {
				n++
			}
		}
		return n
	}
	f.g.Expect(count(identityv1alpha1.EventReasonMigrationEnabled)).To(Equal(1))
	f.g.Expect(count(identityv1alpha1.EventReasonReminder)).To(Equal(1), "reminded at the date of a change it was being given: %v", f.events("late"))
}

func TestOperatorRestartAcrossTheDeadlineMissesNothingAndRepeatsNothing(t *testing.T) {
	f := newFixture(t)
	now := wholeSecond(clock.Now())
	deadline := now.Add(time.Hour)
	name := "restart-" + f.ns
	domain, _ := f.tenant("acme", indent(createdAt(now.AddDate(-1, 0, 0))), emulatortest.Legacy())
	m := f.migration(name, now.Add(-time.Hour), &deadline, "  change:\n    flags: {change_pwd_flow_v1: false}\n")
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Tenants.Pending).To(BeNumerically("==", 1))
	})

	// The operator is down while the deadline passes.
	restartOperator(t, func() { clock.Step(2 * time.Hour) })

	f.g.Eventually(func() any { return f.flag(domain, "change_pwd_flow_v1") }, 30*time.Second, 50*time.Millisecond).Should(Equal(false))
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseCompleted))
	})
	enforcedAt := m.Status.EnforcedTime.DeepCopy()

	// Another restart after the fact: nothing is done again.
	restartOperator(t, nil)
	time.Sleep(3 * resync)
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(1))
	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: name}, m)).To(Succeed())
	f.g.Expect(m.Status.EnforcedTime.Equal(enforcedAt)).To(BeTrue(), "the enforcement time moved")
	enforcedEvents := 0
	for _, e := range f.clusterEvents(name) {
		if strings.Contains(e, identityv1alpha1.EventReasonEnforced) {
			enforcedEvents++
		}
	}
	f.g.Expect(enforcedEvents).To(Equal(1))
}

func TestRemindersReachAdministratorsOncePerInterval(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "relay-password")
	mailer.use(t, &reminder.SMTPRelay{Address: fmt.Sprintf("%s:%d", smtp.Host(), smtp.Port()), From: "identity-operator@platform.example",
		Username: "operator", Password: "relay-password"})
	now := wholeSecond(clock.Now())
	name := "remind-" + f.ns
	f.tenant("globex", indent(createdAt(now.AddDate(-1, 0, 0))+"administratorEmails: [identity@globex.example]"), emulatortest.Legacy())
	f.migration(name, now.Add(-time.Hour), nil, "  reminderInterval: 1h\n  change:\n    flags: {change_pwd_flow_v1: false}\n")

	f.g.Eventually(smtp.Messages, 30*time.Second, 100*time.Millisecond).Should(HaveLen(1))
	first := smtp.Messages()[0]
	f.g.Expect(first.To).To(ConsistOf("identity@globex.example"))
	f.g.Expect(first.User).To(Equal("operator"))
	f.g.Expect(first.Data).To(ContainSubstring("Action needed"))
	f.g.Expect(first.Data).To(ContainSubstring(name))
	f.g.Eventually(func() []string { return f.events("globex") }, 10*time.Second, 100*time.Millisecond).Should(
		ContainElement(HavePrefix("Warning " + identityv1alpha1.EventReasonReminder)))

	// Not again within the interval, not after a restart.
	clock.Step(30 * time.Minute)
	restartOperator(t, nil)
	time.Sleep(3 * resync)
	f.g.Expect(smtp.Messages()).To(HaveLen(1))

	// Once the interval has passed, the next reminder.
	clock.Step(31 * time.Minute)
	f.g.Eventually(smtp.Messages, 10*resync, 100*time.Millisecond).Should(HaveLen(2))

	// Opting in ends the reminders.
	f.tenantFor(f.tenantDomain("globex"), "globex", indent(createdAt(now.AddDate(-1, 0, 0))+"administratorEmails: [identity@globex.example]\noptInMigrations: ["+name+"]"))
	f.g.Eventually(func() any { return f.flag(f.tenantDomain("globex"), "change_pwd_flow_v1") }, 10*resync, 50*time.Millisecond).Should(Equal(false))
	clock.Step(2 * time.Hour)
	time.Sleep(3 * resync)
	f.g.Expect(smtp.Messages()).To(HaveLen(2))
}

func TestEmailMigrationReportsTenantsWithoutAProviderAsAffected(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	now := wholeSecond(clock.Now())
	name := "email-from-" + f.ns
	f.tenant("acme", indent(createdAt(now.AddDate(-1, 0, 0))))
	deadline := now.Add(-time.Hour)
	m := f.migration(name, now.Add(-2*time.Hour), &deadline, `  readinessChecks:
    - type: EmailProviderConfigured
      message: Configure an EmailProvider to keep your own sender address.
`)
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseEnforced))
		g.Expect(s.Tenants.Affected).To(BeNumerically("==", 1), "the platform made the change: a tenant without a provider is affected, not converted")
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(And(HaveField("Name", "acme"), HaveField("State", identityv1alpha1.MigrationAffected),
			HaveField("Reason", controllers.ReasonNoEmailProvider), HaveField("Message", ContainSubstring("Configure an EmailProvider")))))
	})
	f.g.Expect(f.clusterRow("platformmigrations", name)).To(HaveKeyWithValue("Affected", "1"))

	f.apply(smtpProvider("acme", smtp, "pw"))
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseCompleted))
		g.Expect(s.Progress).To(Equal("1/1"))
	})
}

// clusterRow is a cluster-scoped object's row in `kubectl get -o wide`.
func (f *fixture) clusterRow(resource, name string) map[string]string {
	f.t.Helper()
	_, rows, err := env.Table(context.Background(), resource, "")
	f.g.Expect(err).NotTo(HaveOccurred())
	for _, r := range rows {
		if r["Name"] == name {
			return r
		}
	}
	return nil
}

// clusterEvents returns the events about a cluster-scoped object.
func (f *fixture) clusterEvents(name string) []string {
	f.t.Helper()
	var out []string
	list := &corev1.EventList{}
	f.g.Expect(k8s.List(context.Background(), list)).To(Succeed())
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	return out
}

// tenantDomain is the domain f.tenant gave a Tenant.
func (f *fixture) tenantDomain(name string) string {
	return fmt.Sprintf("%s.%s.identity.test", name, f.ns)
}
