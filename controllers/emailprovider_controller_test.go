package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// smtpProvider is an EmailProvider for tenant through the SMTP listener,
// with its password in the Secret <tenant>-smtp.
func smtpProvider(tenant string, smtp *emulatortest.SMTPServer, password string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-smtp}
stringData: {smtp_pass: %[4]q}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: EmailProvider
metadata: {name: %[1]s-mail}
spec:
  tenantRef: {name: %[1]s}
  provider: smtp
  defaultFromAddress: "no-reply@%[1]s.example"
  smtp: {host: %[2]s, port: %[3]d, user: mailer}
  credentialsSecretRef: {name: %[1]s-smtp}
`, tenant, smtp.Host(), smtp.Port(), password)
}

func TestEmailProviderIsConfiguredAndItsSecretsNeverComeBack(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("acme", "")
	f.apply(smtpProvider("acme", smtp, "first-relay-password"))

	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}}
	f.ready(provider)
	remote, ok := f.emu.EmailProvider(domain)
	f.g.Expect(ok).To(BeTrue())
	f.g.Expect(remote).To(HaveKeyWithValue("name", "smtp"))
	f.g.Expect(remote).To(HaveKeyWithValue("default_from_address", "no-reply@acme.example"))
	f.g.Expect(remote["credentials"]).To(HaveKeyWithValue("smtp_pass", "first-relay-password"))
	f.g.Expect(provider.Status.AppliedCredentialsHash).NotTo(BeEmpty())
	// The password reaches the platform and nothing a user reads: not the
	// object (spec, status, conditions, annotations), not its events. (A
	// hex hash could never contain it: the whole object is what can.)
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(identityv1alpha1.GroupVersion.WithKind("EmailProvider"))
	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "acme-mail"}, stored)).To(Succeed())
	data, err := json.Marshal(stored.Object)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(string(data)).To(ContainSubstring(provider.Status.AppliedCredentialsHash), "the stored object is the one read")
	f.g.Expect(string(data)).NotTo(ContainSubstring("first-relay-password"))
	f.g.Expect(strings.Join(f.events("acme-mail"), "\n")).NotTo(ContainSubstring("first-relay-password"))
	f.g.Expect(f.row("emailproviders", "acme-mail")).To(And(HaveKeyWithValue("Provider", "smtp"), HaveKeyWithValue("Ready", "True"), HaveKeyWithValue("Tenant", "acme")))

	// Steady state: the provider is read, never written.
	time.Sleep(resync / 2)
	f.emu.ResetRequests(domain)
	time.Sleep(3 * resync)
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/emails/provider")).To(BeZero())
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/api/v2/emails/provider")).To(BeZero())
}

func TestEmailProviderChecksTheSecretBeforeAnyCall(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("acme", "")
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	f.ready(tenant)
	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: ses-keys}
stringData: {accessKeyId: AKIAEXAMPLE}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: EmailProvider
metadata: {name: acme-ses}
spec:
  tenantRef: {name: acme}
  provider: ses
  defaultFromAddress: no-reply@acme.example
  ses: {region: eu-west-1}
  credentialsSecretRef: {name: ses-keys}
`)
	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-ses"}}
	msg := f.condition(provider, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonCredentialsSecretInvalid)
	f.g.Expect(msg).To(ContainSubstring("secretAccessKey"))
	f.g.Expect(msg).NotTo(ContainSubstring("AKIAEXAMPLE"))
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/api/v2/emails/provider")).To(BeZero())

	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: ses-keys}
stringData: {accessKeyId: AKIAEXAMPLE, secretAccessKey: ses-secret-value}
`)
	f.ready(provider)
	remote, _ := f.emu.EmailProvider(domain)
	f.g.Expect(remote["credentials"]).To(HaveKeyWithValue("region", "eu-west-1"))
}

func TestRotatedSMTPPasswordIsUsedForTheNextResetEmail(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, creds := f.tenant("acme", indent(`
resetEmail:
  from: "Acme <no-reply@acme.example>"
  subject: Reset your Acme password
  urlLifetimeSeconds: 600
`))
	f.apply(smtpProvider("acme", smtp, "old-relay-password"))
	f.ready(&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}})
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})

	// A user to reset, in a plain database connection.
	api := f.identityClient(domain, creds)
	_, err := api.CreateConnection(context.Background(), identity.ConnectionCreate{Name: "users", Strategy: identity.StrategyAuth0})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.emu.CreateUser(domain, emulatortest.UserSeed{Connection: "users", Email: "ann@acme.example", Password: "Correct-horse-1"})

	f.requestPasswordReset(domain, creds.ClientID, "ann@acme.example", "users")
	f.g.Eventually(smtp.Messages, 10*time.Second, 100*time.Millisecond).Should(HaveLen(1))
	f.g.Expect(smtp.Messages()[0].Password).To(Equal("old-relay-password"))

	// Rotate the Secret; the operator sends the new password to the platform.
	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: acme-smtp}
stringData: {smtp_pass: new-relay-password}
`)
	f.g.Eventually(func() any {
		remote, _ := f.emu.EmailProvider(domain)
		return remote["credentials"].(map[string]any)["smtp_pass"]
	}, 20*time.Second, 100*time.Millisecond).Should(Equal("new-relay-password"))

	f.requestPasswordReset(domain, creds.ClientID, "ann@acme.example", "users")
	f.g.Eventually(smtp.Messages, 10*time.Second, 100*time.Millisecond).Should(HaveLen(2))
	last := smtp.Messages()[1]
	f.g.Expect(last.Password).To(Equal("new-relay-password"))
	f.g.Expect(last.From).To(Equal("no-reply@acme.example"))
	f.g.Expect(last.Data).To(ContainSubstring("Reset your Acme password"))
}

func TestEmailProviderDeletionPolicies(t *testing.T) {
	for _, policy := range []string{"Delete", "Orphan"} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t)
			smtp := emulatortest.StartSMTP(t, "")
			domain, _ := f.tenant("acme", "")
			f.apply(smtpProvider("acme", smtp, "pw") + "  deletionPolicy: " + policy + "\n")
			provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}}
			f.ready(provider)
			f.g.Expect(k8s.Delete(context.Background(), provider)).To(Succeed())
			f.gone(provider)
			_, exists := f.emu.EmailProvider(domain)
			f.g.Expect(exists).To(Equal(policy == "Orphan"))
		})
	}
}

func TestSecondEmailProviderForATenantIsRefused(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	f.tenant("acme", "")
	f.apply(smtpProvider("acme", smtp, "pw"))
	f.ready(&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}})
	f.apply(`
apiVersion: identity.tenantops.io/v1alpha1
kind: EmailProvider
metadata: {name: acme-custom}
spec:
  tenantRef: {name: acme}
  provider: custom
  defaultFromAddress: other@acme.example
`)
	msg := f.condition(&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-custom"}},
		identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonDuplicateEmailProvider)
	f.g.Expect(msg).To(ContainSubstring(`"acme-mail" already manages`))
}

func TestTenantDeletionWaitsForItsEmailProvider(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("acme", "")
	f.apply(smtpProvider("acme", smtp, "pw"))
	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}}
	f.ready(provider)
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: f.ns}}

	f.g.Expect(k8s.Delete(context.Background(), tenant)).To(Succeed())
	msg := f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonDependentsExist)
	f.g.Expect(msg).To(ContainSubstring("EmailProvider/acme-mail"))

	f.g.Expect(k8s.Delete(context.Background(), provider)).To(Succeed())
	f.gone(provider)
	f.gone(tenant)
	_, exists := f.emu.EmailProvider(domain)
	f.g.Expect(exists).To(BeFalse(), "the provider was deleted with the tenant's credentials before the Tenant went")
}

// identityClient is the operator's own client, for a test to set up state
// on a tenant the way an application would.
func (f *fixture) identityClient(domain string, creds emulatortest.Credentials) identity.Client {
	c, err := identity.New(identity.Config{Domain: domain, DialAddress: f.emu.Addr(), CABundle: f.emu.CACertPEM(),
		ClientID: creds.ClientID, ClientSecret: creds.ClientSecret}, identity.Options{})
	f.g.Expect(err).NotTo(HaveOccurred())
	return c
}

// requestPasswordReset is the "forgot password" call an application makes.
func (f *fixture) requestPasswordReset(domain, clientID, email, connection string) {
	f.t.Helper()
	form := url.Values{"client_id": {clientID}, "email": {email}, "connection": {connection}}
	resp, err := f.emu.HTTPClient().Post(f.emu.BaseURL(domain)+"/dbconnections/change_password",
		"application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	f.g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	f.g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
}
