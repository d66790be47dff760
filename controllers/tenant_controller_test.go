package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

func TestTenantAppliesOnlyWhatItDeclaresInOnePatch(t *testing.T) {
	f := newFixture(t)
	// Set in the dashboard, not in Git: the operator must leave these alone.
	domain, _ := f.tenant("acme", indent(`
settings:
  friendlyName: Acme
  sessionLifetimeHours: 168
  idleSessionLifetimeHours: 72
  enabledLocales: [en, de]
flags:
  enable_sso: true
  revoke_refresh_token_grant: false
  enable_public_signup_user_exists_error: true
`), emulatortest.WithSettings(map[string]any{"support_url": "https://dashboard.example/help", "flags": map[string]any{"enable_apis_section": true}}))

	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	f.ready(tenant)

	settings := f.emu.Settings(domain)
	f.g.Expect(settings).To(HaveKeyWithValue("friendly_name", "Acme"))
	f.g.Expect(settings).To(HaveKeyWithValue("session_lifetime", BeNumerically("==", 168)))
	f.g.Expect(settings).To(HaveKeyWithValue("idle_session_lifetime", BeNumerically("==", 72)))
	f.g.Expect(settings).To(HaveKeyWithValue("support_url", "https://dashboard.example/help"), "an undeclared setting was touched")
	flags := f.emu.Flags(domain)
	f.g.Expect(flags).To(HaveKeyWithValue("enable_sso", true))
	f.g.Expect(flags).To(HaveKeyWithValue("revoke_refresh_token_grant", false))
	f.g.Expect(flags).To(HaveKeyWithValue("enable_public_signup_user_exists_error", true))
	f.g.Expect(flags).To(HaveKeyWithValue("enable_apis_section", true), "an undeclared flag was touched")
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(1), "three flags and four settings are one PATCH")

	f.g.Expect(tenant.Status.Settings).NotTo(BeNil())
	f.g.Expect(*tenant.Status.Settings.FriendlyName).To(Equal("Acme"))
	f.g.Expect(*tenant.Status.Settings.SessionLifetimeHours).To(BeNumerically("==", 168))
	f.g.Expect(tenant.Status.Settings.SupportURL).To(BeNil(), "an undeclared setting is not reported as managed")
	f.g.Expect(tenant.Status.Flags).To(Equal(map[string]bool{"enable_sso": true, "revoke_refresh_token_grant": false, "enable_public_signup_user_exists_error": true}))
	f.g.Expect(tenant.Status.LastSyncTime).NotTo(BeNil())
	f.g.Expect(tenant.Status.ObservedGeneration).To(Equal(tenant.Generation))
	f.g.Expect(f.row("tenants", "acme")).To(And(HaveKeyWithValue("Domain", domain), HaveKeyWithValue("Ready", "True"), HaveKeyWithValue("Reason", "Synced")))
}

func TestTenantCredentialProblemsAreConditionsThatClearOnceFixed(t *testing.T) {
	f := newFixture(t)
	domain := "creds." + f.ns + ".identity.test"
	creds := f.emu.CreateTenant(domain)
	f.apply(`
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: creds}
spec:
  domain: ` + domain + `
  dialAddress: ` + f.emu.Addr() + `
  caBundleRef: {name: emulator-ca, key: ca.crt}
  credentialsSecretRef: {name: creds-credentials}
  settings: {friendlyName: Creds}
`)
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "creds"}}

	msg := f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonCredentialsSecretNotFound)
	f.g.Expect(msg).To(ContainSubstring(`Secret "creds-credentials" not found`))
	f.condition(tenant, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonCredentialsSecretNotFound)

	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: creds-credentials}
stringData: {client_id: ` + creds.ClientID + `}
`)
	msg = f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonCredentialsSecretInvalid)
	f.g.Expect(msg).To(ContainSubstring(`no key "client_secret"`))

	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: creds-credentials}
stringData: {client_id: ` + creds.ClientID + `, client_secret: not-the-secret}
`)
	msg = f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonCredentialsRejected)
	f.g.Expect(msg).To(ContainSubstring("refused the credentials"))
	f.g.Expect(msg).NotTo(ContainSubstring("not-the-secret"), "a secret value reached status")

	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: creds-credentials}
stringData: {client_id: ` + creds.ClientID + `, client_secret: ` + creds.ClientSecret + `}
`)
	f.ready(tenant)
	f.g.Expect(meta_IsTrue(tenant, identityv1alpha1.ConditionStalled)).To(BeFalse())
	f.g.Expect(f.emu.Settings(domain)).To(HaveKeyWithValue("friendly_name", "Creds"))
	f.g.Expect(f.events("creds")).To(ContainElement(ContainSubstring("Warning CredentialsSecretNotFound")))
	f.g.Expect(f.events("creds")).To(ContainElement(ContainSubstring("Normal Synced")))
}

func TestTenantFlagThePlatformRefusesStallsWithoutRetrying(t *testing.T) {
	f := newFixture(t)
	domain := "refused." + f.ns + ".identity.test"
	f.tenantFor(domain, "refused", "")
	f.emu.RefuseFlags(domain, "allow_legacy_tokeninfo_endpoint")
	f.tenantFor(domain, "refused", indent(`
flags:
  allow_legacy_tokeninfo_endpoint: true
  enable_sso: true
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "refused"}}
	msg := f.condition(tenant, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonFlagRefused)
	f.g.Expect(msg).To(ContainSubstring(`"allow_legacy_tokeninfo_endpoint"`))
	f.g.Expect(msg).To(ContainSubstring("remove it from spec.flags"))

	// No hot loop: over several resync periods, no more PATCHes.
	patches := f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")
	time.Sleep(3 * resync)
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(patches))

	// Once the stalled-retry interval (an hour here) has passed, a pass asks
	// once more, in case the platform now allows the flag; then it waits again.
	clock.Step(time.Hour + time.Minute)
	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "refused"}, tenant)).To(Succeed())
	poke := client.MergeFrom(tenant.DeepCopy())
	tenant.Annotations = map[string]string{"example.com/poke": "1"}
	f.g.Expect(k8s.Patch(context.Background(), tenant, poke)).To(Succeed())
	f.g.Eventually(func() int { return f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings") }, 10*time.Second, 50*time.Millisecond).Should(Equal(patches + 1))
	time.Sleep(2 * resync)
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(patches+1), "asked more than once after the interval")

	// Removing the flag from the spec recovers.
	f.tenantFor(domain, "refused", indent(`
flags:
  enable_sso: true
`))
	f.ready(tenant)
	f.g.Expect(f.emu.Flags(domain)).To(HaveKeyWithValue("enable_sso", true))
}

func TestTenantRestoresDriftAndSaysWhat(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("drift", indent(`
settings: {friendlyName: Drift Inc}
flags: {enable_sso: true}
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "drift"}}
	f.ready(tenant)

	// Someone edits the tenant in the dashboard.
	f.emu.PatchSettings(domain, map[string]any{"friendly_name": "Hacked", "flags": map[string]any{"enable_sso": false}})

	f.g.Eventually(func() any { return f.emu.Settings(domain)["friendly_name"] }, 10*resync, 100*time.Millisecond).Should(Equal("Drift Inc"))
	f.g.Eventually(func() any { return f.emu.Flags(domain)["enable_sso"] }, 10*resync, 100*time.Millisecond).Should(Equal(true))
	f.g.Eventually(func() []string { return f.events("drift") }, 10*time.Second, 100*time.Millisecond).Should(
		ContainElement(And(HavePrefix("Warning DriftCorrected"), ContainSubstring("settings.friendly_name"), ContainSubstring("flags.enable_sso"))))
}

func TestTenantSteadyStateIsOneReadPerResyncAndNoWrites(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("steady", indent(`
settings: {friendlyName: Steady}
flags: {enable_sso: true, enable_apis_section: false}
resetEmail:
  urlLifetimeSeconds: 3600
  resultURL: https://app.steady.example/login
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "steady"}}
	f.ready(tenant)
	time.Sleep(resync / 2)

	f.emu.ResetRequests(domain)
	const resyncs = 4
	time.Sleep(resyncs * resync)
	reqs := f.emu.Requests(domain)
	f.g.Expect(reqs.ManagementWrites()).To(BeZero(), "steady state wrote: %v", reqs)
	f.g.Expect(reqs.ManagementReads()).To(BeNumerically("<=", resyncs+1), "more than one read per resync: %v", reqs)
	f.g.Expect(reqs.ManagementReads()).To(BeNumerically(">=", resyncs-1), "the resync did not read the tenant: %v", reqs)
	f.g.Expect(reqs.Tokens()).To(BeZero(), "the token should be cached: %v", reqs)
}

func TestTenantResetEmailTemplateIsCreatedAndKept(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("mail", indent(`
resetEmail:
  urlLifetimeSeconds: 900
  resultURL: https://app.mail.example/login
  includeEmailInRedirect: true
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "mail"}}
	f.ready(tenant)
	tpl, ok := f.emu.EmailTemplate(domain, "reset_email")
	f.g.Expect(ok).To(BeTrue(), "the template was never created")
	f.g.Expect(tpl).To(HaveKeyWithValue("urlLifetimeInSeconds", BeNumerically("==", 900)))
	f.g.Expect(tpl).To(HaveKeyWithValue("resultUrl", "https://app.mail.example/login"))
	f.g.Expect(tpl).To(HaveKeyWithValue("enabled", true))
	f.g.Expect(tenant.Status.ResetEmail).NotTo(BeNil())

	// A new lifetime in Git reaches the template.
	f.tenantFor(domain, "mail", indent(`
resetEmail:
  urlLifetimeSeconds: 1800
  resultURL: https://app.mail.example/login
  includeEmailInRedirect: true
`))
	f.g.Eventually(func() any {
		tpl, _ := f.emu.EmailTemplate(domain, "reset_email")
		return tpl["urlLifetimeInSeconds"]
	}, 20*time.Second, 100*time.Millisecond).Should(BeNumerically("==", 1800))
}

func TestTenantCustomizedTemplateNeedsAnEmailProvider(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("brand", indent(`
resetEmail:
  from: "Brand <no-reply@brand.example>"
  subject: Reset your Brand password
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "brand"}}
	msg := f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonTemplateRefused)
	f.g.Expect(msg).To(ContainSubstring("needs an EmailProvider"))

	f.apply(smtpProvider("brand", smtp, "relay-password"))
	f.ready(tenant)
	tpl, _ := f.emu.EmailTemplate(domain, "reset_email")
	f.g.Expect(tpl).To(HaveKeyWithValue("from", "Brand <no-reply@brand.example>"))
	f.g.Expect(tpl).To(HaveKeyWithValue("subject", "Reset your Brand password"))
}

func TestPausedTenantMakesNoCalls(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("paused", indent(`settings: {friendlyName: Before}`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "paused"}}
	f.ready(tenant)

	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "paused"}, tenant)).To(Succeed())
	patch := client.MergeFrom(tenant.DeepCopy())
	tenant.Annotations = map[string]string{identityv1alpha1.PausedAnnotation: "true"}
	tenant.Spec.Settings.FriendlyName = ptrTo("After")
	f.g.Expect(k8s.Patch(context.Background(), tenant, patch)).To(Succeed())
	f.condition(tenant, identityv1alpha1.ConditionPaused, metav1.ConditionTrue, "Paused")

	f.emu.ResetRequests(domain)
	time.Sleep(2 * resync)
	f.g.Expect(f.emu.Requests(domain).Total()).To(BeZero(), "a paused Tenant called the tenant")
	f.g.Expect(f.emu.Settings(domain)).To(HaveKeyWithValue("friendly_name", "Before"))

	patch = client.MergeFrom(tenant.DeepCopy())
	tenant.Annotations = nil
	f.g.Expect(k8s.Patch(context.Background(), tenant, patch)).To(Succeed())
	f.g.Eventually(func() any { return f.emu.Settings(domain)["friendly_name"] }, 20*time.Second, 100*time.Millisecond).Should(Equal("After"))
	f.g.Eventually(func() bool {
		_ = k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "paused"}, tenant)
		return meta_IsTrue(tenant, identityv1alpha1.ConditionPaused)
	}, 10*time.Second, 100*time.Millisecond).Should(BeFalse())
}

func TestTenantDeletionPolicyDeleteRemovesWhatItManaged(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("gone", indent(`
deletionPolicy: Delete
settings: {friendlyName: Gone Corp}
flags: {enable_sso: true}
`), emulatortest.WithSettings(map[string]any{"support_email": "kept@gone.example"}))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}
	f.ready(tenant)
	f.g.Expect(k8s.Delete(context.Background(), tenant)).To(Succeed())
	f.gone(tenant)
	settings := f.emu.Settings(domain)
	f.g.Expect(settings).NotTo(HaveKey("friendly_name"))
	f.g.Expect(f.emu.Flags(domain)).NotTo(HaveKey("enable_sso"))
	f.g.Expect(settings).To(HaveKeyWithValue("support_email", "kept@gone.example"))
}

// tenantFor applies a Tenant for an emulator tenant created by the test.
func (f *fixture) tenantFor(domain, name, specLines string) {
	f.t.Helper()
	creds, ok := f.creds[domain]
	if !ok {
		creds = f.emu.CreateTenant(domain)
		f.creds[domain] = creds
	}
	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: ` + name + `-credentials}
stringData: {client_id: "` + creds.ClientID + `", client_secret: "` + creds.ClientSecret + `"}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: ` + name + `}
spec:
  domain: ` + domain + `
  dialAddress: ` + f.emu.Addr() + `
  caBundleRef: {name: emulator-ca, key: ca.crt}
  credentialsSecretRef: {name: ` + name + `-credentials}
` + specLines)
}

func meta_IsTrue(obj client.Object, t string) bool {
	for _, c := range conditionsOf(obj) {
		if c.Type == t {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// The session and redirect settings that infrastructure-as-code users manage
// today: sent in the one PATCH, read back into status, and restored when
// changed behind the operator's back.
func TestTenantManagesSessionCookieLogoutURLsAndDefaultRedirection(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("acme", indent(`
settings:
  sessionCookieMode: non-persistent
  allowedLogoutURLs: [https://app.acme.example/bye, https://admin.acme.example/bye]
  defaultRedirectionURI: https://app.acme.example/login
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	f.ready(tenant)

	settings := f.emu.Settings(domain)
	f.g.Expect(settings).To(HaveKeyWithValue("session_cookie", HaveKeyWithValue("mode", "non-persistent")))
	f.g.Expect(settings).To(HaveKeyWithValue("allowed_logout_urls", ConsistOf("https://app.acme.example/bye", "https://admin.acme.example/bye")))
	f.g.Expect(settings).To(HaveKeyWithValue("default_redirection_uri", "https://app.acme.example/login"))
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/tenants/settings")).To(Equal(1))
	f.g.Expect(*tenant.Status.Settings.SessionCookieMode).To(Equal("non-persistent"))
	f.g.Expect(tenant.Status.Settings.AllowedLogoutURLs).To(HaveLen(2))
	f.g.Expect(*tenant.Status.Settings.DefaultRedirectionURI).To(Equal("https://app.acme.example/login"))

	// Someone switches the cookie back in the dashboard: the next resync
	// restores it and says so.
	f.emu.PatchSettings(domain, map[string]any{"session_cookie": map[string]any{"mode": "persistent"}})
	clock.Step(resync)
	f.g.Eventually(func() any { return f.emu.Settings(domain)["session_cookie"] }, 20*time.Second, 100*time.Millisecond).
		Should(HaveKeyWithValue("mode", "non-persistent"))
	f.g.Eventually(func() []string { return f.events("acme") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(ContainSubstring("settings.session_cookie")))
}
