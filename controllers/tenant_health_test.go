package controllers_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
	"github.com/tenantops/identity-operator/test/emulator/server"
)

// answerLog is the emulator's request logger: it keeps when each tenant's
// requests came and which of them were answered (a status below 500).
type answerLog struct {
	mu       sync.Mutex
	requests map[string][]time.Time
	answers  map[string][]time.Time
}

func (l *answerLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *answerLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *answerLog) WithGroup(string) slog.Handler            { return l }
func (l *answerLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "request" {
		return nil
	}
	var tenant string
	var status int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "tenant":
			tenant = a.Value.String()
		case "status":
			status = a.Value.Int64()
		}
		return true
	})
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests[tenant] = append(l.requests[tenant], now)
	if status < 500 {
		l.answers[tenant] = append(l.answers[tenant], now)
	}
	return nil
}

// since counts domain's requests at or after t, and returns the first one
// answered at or after t (zero when none).
func (l *answerLog) since(domain string, t time.Time) (requests int, firstAnswer time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.requests[domain] {
		if !at.Before(t) {
			requests++
		}
	}
	for _, at := range l.answers[domain] {
		if !at.Before(t) {
			return requests, at
		}
	}
	return requests, time.Time{}
}

// A tenant that is down: its Tenant, EmailProvider,
// CustomDatabaseConnection and Action say so (TenantUnavailable, Reconciling, not
// Stalled) and stop calling it but for a probe now and then; once a probe
// finds it back, all four are in sync again within 2 s, not at their next
// retry.
func TestTenantDownIsReportedAndLeftAloneUntilItAnswers(t *testing.T) {
	log := &answerLog{requests: map[string][]time.Time{}, answers: map[string][]time.Time{}}
	f := newFixture(t, func(c *server.Config) { c.Logger = slog.New(log) })
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("acme", "")
	f.apply(smtpProvider("acme", smtp, "relay-password") + `---
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: acme-users}
spec:
  tenantRef: {name: acme}
  connectionName: acme-users
  scripts:
    login: {inline: "function login(email, password, callback) { callback(null, null); }"}
    getUser: {inline: "function getUser(email, callback) { callback(null, null); }"}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Action
metadata: {name: acme-greeting}
spec:
  tenantRef: {name: acme}
  trigger: post-login
  code: {inline: "exports.onExecutePostLogin = async (event, api) => {};"}
`)
	objects := []client.Object{
		&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}},
		&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}},
		&identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Name: "acme-users"}},
		&identityv1alpha1.Action{ObjectMeta: metav1.ObjectMeta{Name: "acme-greeting"}},
	}
	for _, obj := range objects {
		f.ready(obj)
	}

	f.emu.SetTenantDown(domain, true)
	outage := time.Now()
	for _, obj := range objects {
		msg := f.condition(obj, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonTenantUnavailable)
		f.g.Expect(msg).To(And(ContainSubstring(domain+" has not answered since"), ContainSubstring("503 Service Unavailable"),
			ContainSubstring("next probe, at")), obj.GetName())
		f.g.Expect(meta.FindStatusCondition(conditionsOf(obj), identityv1alpha1.ConditionReconciling)).To(
			HaveField("Reason", identityv1alpha1.ReasonTenantUnavailable), obj.GetName())
		f.g.Expect(meta.FindStatusCondition(conditionsOf(obj), identityv1alpha1.ConditionStalled)).To(BeNil(), obj.GetName())
	}
	// Ten seconds down: the 3 requests that opened the breaker and the
	// probes at 2 and 6 s, give or take a request under way as it opened.
	time.Sleep(time.Until(outage.Add(10 * time.Second)))
	drawn, _ := log.since(domain, outage)
	t.Logf("the tenant drew %d requests in its first 10 s down", drawn)
	f.g.Expect(drawn).To(BeNumerically("<=", 7))

	f.emu.SetTenantDown(domain, false)
	back := time.Now()
	var answered time.Time
	f.g.Eventually(func() bool {
		_, answered = log.since(domain, back)
		return !answered.IsZero()
	}, 30*time.Second, 20*time.Millisecond).Should(BeTrue(), "no probe reached the tenant after it came back")
	f.g.Eventually(func(g Gomega) {
		for _, obj := range objects {
			g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: obj.GetName()}, obj)).To(Succeed())
			ready := meta.FindStatusCondition(conditionsOf(obj), identityv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s: %s", obj.GetName(), ready.Reason, ready.Message)
		}
	}, 5*time.Second, 20*time.Millisecond).Should(Succeed())
	took := time.Since(answered)
	t.Logf("back: the first probe %s after the tenant answered again, all four Ready %s after it",
		answered.Sub(back).Round(10*time.Millisecond), took.Round(10*time.Millisecond))
	f.g.Expect(took).To(BeNumerically("<", 2*time.Second), "the objects waited for their own retry")
}
