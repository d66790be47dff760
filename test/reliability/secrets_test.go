package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// A run with distinctive secret values, through success, rotation, wrong
// credentials, faults and a rotation under managementPolicy Plan: none of them shows in any line the operator
// logged, any event, any object's status or any metric.
func TestSecretsNeverShowInLogsEventsStatusOrMetrics(t *testing.T) {
	f := newFixture(t)
	mark := func(what string) string { return fmt.Sprintf("S3CRET-%s-%s-q7Zk", what, f.ns) }
	var needles []string

	a := f.tenant(0, map[string]bool{"enable_apis_section": true})
	a.Secrets.SMTPPassword = mark("smtp-pass")
	a.Secrets.Configuration = map[string]string{"LEGACY_TOKEN": mark("config-token"), "LEGACY_PASSWORD": mark("config-password")}
	f.create(a.All()...)
	needles = append(needles, a.Secrets.ClientSecret, a.Secrets.SMTPPassword, a.Secrets.Configuration["LEGACY_TOKEN"], a.Secrets.Configuration["LEGACY_PASSWORD"])

	// A SendGrid provider: an API key.
	b := f.tenant(1, nil)
	f.create(b.TenantObjects()...)
	apiKey := mark("sendgrid-api-key")
	needles = append(needles, b.Secrets.ClientSecret, apiKey)
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sendgrid"}, StringData: map[string]string{"api_key": apiKey}},
		&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "b-mail"},
			Spec: identityv1alpha1.EmailProviderSpec{TenantRef: identityv1alpha1.TenantReference{Name: b.Name}, Provider: "sendgrid",
				DefaultFromAddress: "no-reply@" + b.Domain, CredentialsSecretRef: &identityv1alpha1.LocalObjectReference{Name: "sendgrid"}}})

	// A post-login Action of a: its secrets from a Secret.
	actionSecret := func(value string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "a-action-secrets"}, StringData: map[string]string{"API_KEY": value}}
	}
	actionKey := mark("action-api-key")
	needles = append(needles, actionKey)
	f.create(actionSecret(actionKey), &identityv1alpha1.Action{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "a-greeting"},
		Spec: identityv1alpha1.ActionSpec{TenantRef: identityv1alpha1.TenantReference{Name: a.Name}, Trigger: identityv1alpha1.TriggerPostLogin,
			Code:       identityv1alpha1.ActionCode{Inline: "exports.onExecutePostLogin = async (event, api) => { if (!event.secrets.API_KEY) api.access.deny('x'); };"},
			SecretsRef: &identityv1alpha1.LocalObjectReference{Name: "a-action-secrets"}}})

	// Wrong credentials that look like a secret.
	c := f.tenant(2, nil)
	c.Secrets.ClientSecret = mark("wrong-client-secret")
	needles = append(needles, c.Secrets.ClientSecret)
	f.create(c.TenantObjects()...)

	f.emu.SetFaults(0.2, 0)
	f.allReadyExcept(6, c.Name, run.convergeTimeout)

	// Rotation: new values travel; the old ones and the new ones must stay
	// out of sight.
	a.Secrets.SMTPPassword = mark("smtp-pass-rotated")
	a.Secrets.Configuration["LEGACY_TOKEN"] = mark("config-token-rotated")
	needles = append(needles, a.Secrets.SMTPPassword, a.Secrets.Configuration["LEGACY_TOKEN"])
	for _, obj := range []client.Object{a.ProviderObjects()[0], a.ConnectionObjects()[0]} {
		f.g.Expect(k8s.Update(context.Background(), obj)).To(Succeed())
	}
	greeting := &identityv1alpha1.Action{}
	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "a-greeting"}, greeting)).To(Succeed())
	firstHash := greeting.Status.AppliedHash
	actionKey = mark("action-api-key-rotated")
	needles = append(needles, actionKey)
	rotated := actionSecret(actionKey)
	f.g.Expect(k8s.Patch(context.Background(), rotated, client.RawPatch(types.MergePatchType,
		[]byte(fmt.Sprintf(`{"stringData":{"API_KEY":%q}}`, actionKey))))).To(Succeed())
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(greeting), greeting)).To(Succeed())
		g.Expect(greeting.Status.AppliedHash).NotTo(Equal(firstHash))
		g.Expect(greeting.Status.DeployedVersion).To(BeNumerically(">=", 2))
	}, time.Minute, time.Second).Should(Succeed(), "the rotated action secret was not sent and deployed")
	f.g.Eventually(func() any {
		p, _ := f.emu.EmailProvider(a.Domain)
		creds, _ := p["credentials"].(map[string]any)
		return creds["smtp_pass"]
	}, time.Minute, time.Second).Should(Equal(a.Secrets.SMTPPassword), "the rotated SMTP password never reached the platform")
	f.g.Eventually(func() any {
		conn, _ := f.emu.Connection(a.Domain, a.ConnectionName())
		opts, _ := conn["options"].(map[string]any)
		conf, _ := opts["configuration"].(map[string]any)
		return conf["LEGACY_TOKEN"]
	}, time.Minute, time.Second).Should(Equal(a.Secrets.Configuration["LEGACY_TOKEN"]), "the rotated configuration never reached the platform")
	f.emu.SetFaults(0, 0)

	// Under managementPolicy Plan, a value rotated again is reported only
	// as changed (status.plan) and sent nowhere: the platform keeps the
	// last applied one, and the new one joins the needles.
	ctx := context.Background()
	sentPassword := a.Secrets.SMTPPassword
	for _, obj := range []client.Object{a.ProviderObjects()[1], a.ConnectionObjects()[1]} {
		f.g.Expect(k8s.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"managementPolicy":"Plan"}}`)))).To(Succeed())
	}
	a.Secrets.SMTPPassword = mark("smtp-pass-planned")
	a.Secrets.Configuration["LEGACY_TOKEN"] = mark("config-token-planned")
	needles = append(needles, a.Secrets.SMTPPassword, a.Secrets.Configuration["LEGACY_TOKEN"])
	for _, obj := range []client.Object{a.ProviderObjects()[0], a.ConnectionObjects()[0]} {
		f.g.Expect(k8s.Update(ctx, obj)).To(Succeed())
	}
	f.g.Eventually(func(g Gomega) {
		p := &identityv1alpha1.EmailProvider{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a.ProviderObjects()[1]), p)).To(Succeed())
		g.Expect(p.Status.Plan).NotTo(BeNil())
		g.Expect(p.Status.Plan.Changes).To(ContainElement(identityv1alpha1.PlannedChange{Field: "credentials.smtp_pass", Secret: identityv1alpha1.SecretChanged}))
		c := &identityv1alpha1.CustomDatabaseConnection{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a.ConnectionObjects()[1]), c)).To(Succeed())
		g.Expect(c.Status.Plan).NotTo(BeNil())
		g.Expect(c.Status.Plan.Changes).To(ContainElement(identityv1alpha1.PlannedChange{Field: "options.configuration", Secret: identityv1alpha1.SecretChanged}))
	}, time.Minute, time.Second).Should(Succeed())
	p, _ := f.emu.EmailProvider(a.Domain)
	creds, _ := p["credentials"].(map[string]any)
	f.g.Expect(creds["smtp_pass"] == sentPassword).To(BeTrue(), "a password rotated under Plan was sent")
	time.Sleep(2 * resync)

	// Where to look.
	haystacks := map[string]string{"log": logs.String(), "events": f.eventsText(), "status": f.statusText(), "metrics": metricsText(t)}
	// The search can fail: the values are in the Secrets.
	secrets := &corev1.SecretList{}
	f.g.Expect(k8s.List(context.Background(), secrets, client.InNamespace(f.ns))).To(Succeed())
	inSecrets := 0
	for _, n := range needles {
		for _, s := range secrets.Items {
			for _, v := range s.Data {
				if strings.Contains(string(v), n) {
					inSecrets++
				}
			}
		}
	}
	f.g.Expect(inSecrets).To(BeNumerically(">=", len(needles)-5), "the needles are not the Secrets' values") // five were rotated away
	found := 0
	for where, text := range haystacks {
		f.g.Expect(text).NotTo(BeEmpty(), "nothing to search in %s", where)
		for _, n := range needles {
			if strings.Contains(text, n) {
				found++
				t.Errorf("a secret value (%d characters) is in the %s", len(n), where) // never the value itself
			}
		}
	}
	figure(t, "%d distinctive secret values (client secrets, SMTP passwords, connection configuration, a SendGrid API key, an action secret, rotated values) searched in %d log lines, %d bytes of events, %d bytes of status, %d metric lines: %d found",
		len(needles), strings.Count(haystacks["log"], "\n"), len(haystacks["events"]), len(haystacks["status"]), strings.Count(haystacks["metrics"], "\n"), found)
}

// allReadyExcept waits until want objects other than the Tenant named
// except are Ready=True.
func (f *fixture) allReadyExcept(want int, except string, timeout time.Duration) {
	f.t.Helper()
	f.g.Eventually(func(g Gomega) {
		n, notReady := 0, []string{}
		f.each(g, func(obj conditioned) {
			if obj.GetName() == except {
				return
			}
			c := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
			if c != nil && c.Status == metav1.ConditionTrue {
				n++
			} else if c != nil {
				notReady = append(notReady, obj.GetName()+": "+c.Reason+": "+c.Message)
			}
		})
		g.Expect(n).To(Equal(want), "not Ready: %v", notReady)
	}, timeout, time.Second).Should(Succeed())
}

// eventsText is every event of the namespace, all fields.
func (f *fixture) eventsText() string {
	list := &corev1.EventList{}
	f.g.Expect(k8s.List(context.Background(), list, client.InNamespace(f.ns))).To(Succeed())
	b, err := json.Marshal(list.Items)
	f.g.Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// statusText is the status of every object of the operator's kinds.
func (f *fixture) statusText() string {
	var out []any
	f.each(f.g, func(obj conditioned) {
		switch o := obj.(type) {
		case *identityv1alpha1.Tenant:
			out = append(out, o.Status)
		case *identityv1alpha1.EmailProvider:
			out = append(out, o.Status)
		case *identityv1alpha1.CustomDatabaseConnection:
			out = append(out, o.Status)
		case *identityv1alpha1.Action:
			out = append(out, o.Status)
		}
	})
	migrations := &identityv1alpha1.PlatformMigrationList{}
	f.g.Expect(k8s.List(context.Background(), migrations)).To(Succeed())
	for _, m := range migrations.Items {
		out = append(out, m.Status)
	}
	b, err := json.Marshal(out)
	f.g.Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// metricsText is the Prometheus text exposition of controller-runtime's
// registry (controller, workqueue, REST client and identity client metrics)
// and of the running operator's migration metrics.
func metricsText(t *testing.T) string {
	h := promhttp.HandlerFor(prometheus.Gatherers{ctrlmetrics.Registry, operator.registry}, promhttp.HandlerOpts{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: %d", rec.Code)
	}
	return rec.Body.String()
}
