package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// partialClient creates the emulator tenant domain and, on it, an M2M
// application whose grant for the Management API holds only scopes: the
// credentials the test's Tenant will use.
func (f *fixture) partialClient(domain string, scopes ...string) {
	f.t.Helper()
	admin := f.emu.CreateTenant(domain)
	f.creds[domain] = f.emu.MintClient(domain, scopes...)
	f.creds["admin@"+domain] = admin
}

// setGrant replaces the scopes of the test application's grant through the
// emulator's Management API (GET and PATCH /api/v2/client-grants), as an
// administrator fixing it in the dashboard would.
func (f *fixture) setGrant(domain string, scopes ...string) {
	f.t.Helper()
	token := f.emu.Token(f.creds["admin@"+domain])
	call := func(method, path string, body any, out any) {
		var payload []byte
		if body != nil {
			payload, _ = json.Marshal(body)
		}
		req, err := http.NewRequest(method, f.emu.BaseURL(domain)+path, bytes.NewReader(payload))
		f.g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.emu.HTTPClient().Do(req)
		f.g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		f.g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s %s", method, path)
		f.g.Expect(json.NewDecoder(resp.Body).Decode(out)).To(Succeed())
	}
	var grants []struct {
		ID string `json:"id"`
	}
	call(http.MethodGet, "/api/v2/client-grants?client_id="+url.QueryEscape(f.creds[domain].ClientID), nil, &grants)
	f.g.Expect(grants).To(HaveLen(1))
	var updated map[string]any
	call(http.MethodPatch, "/api/v2/client-grants/"+grants[0].ID, map[string]any{"scope": scopes}, &updated)
}

// touch changes an annotation of the object, as `kubectl annotate` does:
// for a Secret, the objects that use it are looked at again.
func touch(g Gomega, obj client.Object, ns string) {
	ctx := context.Background()
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.GetName()}, obj)).To(Succeed())
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	obj.SetAnnotations(map[string]string{"touched": time.Now().Format(time.RFC3339Nano)})
	g.Expect(k8s.Patch(ctx, obj, patch)).To(Succeed())
}

func TestTenantWithoutTheScopesItsSpecNeedsSaysWhichAndSendsNothing(t *testing.T) {
	f := newFixture(t)
	domain := "acme." + f.ns + ".identity.test"
	// Granted reading, not writing: the spec declares settings, a flag and
	// a reset_email template.
	f.partialClient(domain, "read:tenant_settings", "read:email_templates")
	before := f.emu.Settings(domain)
	f.emu.ResetRequests(domain)
	// It opted in to a migration, whose flag it cannot write either.
	name := "scopes-" + f.ns
	m := f.migration(name, clock.Now().Add(-time.Hour), nil, "  change:\n    flags: {change_pwd_flow_v1: false}\n")
	f.tenantFor(domain, "acme", indent(`
settings: {friendlyName: Acme}
flags: {enable_sso: true}
resetEmail: {urlLifetimeSeconds: 3600}
optInMigrations: [`+name+`]
`))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	msg := f.condition(tenant, identityv1alpha1.ConditionCredentialsValid, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(msg).To(Equal(`the credentials in Secret "acme-credentials" lack ` +
		`update:tenant_settings (to write spec.settings and spec.flags), ` +
		`create:email_templates (to create the reset_email template of spec.resetEmail), ` +
		`update:email_templates (to write spec.resetEmail); ` + domain + ` granted their token: read:email_templates read:tenant_settings. ` +
		`Add the missing scopes to the application's grant for the Management API of ` + domain + `; nothing is sent until then`))
	ready := f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(ready).To(Equal(msg))
	f.condition(tenant, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(f.row("tenants", "acme")).To(HaveKeyWithValue("Ready", "False"))

	// No request that would fail was sent: not the PATCH, not even the reads.
	spent := f.emu.Requests(domain)
	f.g.Expect(spent.ManagementWrites()).To(BeZero(), "%v", spent)
	f.g.Expect(spent.ManagementReads()).To(BeZero(), "%v", spent)
	f.g.Expect(spent.Tokens()).To(BeNumerically(">=", 1))
	f.g.Expect(f.emu.Settings(domain)["friendly_name"]).To(Equal(before["friendly_name"]))
	_, found := f.emu.EmailTemplate(domain, "reset_email")
	f.g.Expect(found).To(BeFalse())
	// The migration reports the tenant Failed, and why, not "waiting".
	f.g.Expect(tenant.Status.Migrations).To(ConsistOf(And(HaveField("Name", name),
		HaveField("State", identityv1alpha1.MigrationFailed), HaveField("Message", Equal(msg)))))
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Tenants.Failed).To(BeNumerically("==", 1))
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(And(HaveField("Name", "acme"), HaveField("State", identityv1alpha1.MigrationFailed))))
	})

	// The administrator adds the scopes; the next pass (here: the Secret
	// touched, as rotating it would) gets a new token, and with it the grant.
	f.setGrant(domain, "read:tenant_settings", "update:tenant_settings", "read:email_templates", "create:email_templates", "update:email_templates")
	touch(f.g, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "acme-credentials"}}, f.ns)
	f.ready(tenant)
	granted := f.condition(tenant, identityv1alpha1.ConditionCredentialsValid, metav1.ConditionTrue, identityv1alpha1.ReasonScopesGranted)
	f.g.Expect(granted).To(ContainSubstring("read:tenant_settings update:tenant_settings read:email_templates create:email_templates update:email_templates"))
	f.g.Expect(f.emu.Settings(domain)).To(HaveKeyWithValue("friendly_name", "Acme"))
	f.g.Expect(f.emu.Flags(domain)).To(HaveKeyWithValue("enable_sso", true))
	_, found = f.emu.EmailTemplate(domain, "reset_email")
	f.g.Expect(found).To(BeTrue())
	f.g.Expect(f.emu.Flags(domain)).To(HaveKeyWithValue("change_pwd_flow_v1", false))
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Progress).To(Equal("1/1"))
	})
}

func TestConnectionProviderAndActionNameTheScopesTheirSpecNeeds(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain := "acme." + f.ns + ".identity.test"
	// The Tenant declares nothing (it reads the settings); the connection
	// may be created and updated but not deleted nor its users counted; the
	// provider may be read only.
	f.partialClient(domain, "read:tenant_settings", "read:connections", "create:connections", "update:connections", "read:email_provider")
	f.tenantFor(domain, "acme", "")
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})
	f.emu.ResetRequests(domain)
	f.apply(`
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: legacy-users}
spec:
  tenantRef: {name: acme}
  connectionName: legacy-users
  deletionPolicy: Delete
  scripts:
    login: {inline: "function login(email, password, callback) { callback(null, null); }"}
    getUser: {inline: "function getByEmail(email, callback) { callback(null, null); }"}
`)
	f.apply(smtpProvider("acme", smtp, "relay-password"))
	f.apply(`
apiVersion: identity.tenantops.io/v1alpha1
kind: Action
metadata: {name: greeting}
spec:
  tenantRef: {name: acme}
  trigger: post-login
  code: {inline: "exports.onExecutePostLogin = async (event, api) => {};"}
`)

	conn := &identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Name: "legacy-users"}}
	msg := f.condition(conn, identityv1alpha1.ConditionCredentialsValid, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(msg).To(ContainSubstring(`lack read:users (to count the migrated users), delete:connections (to delete it with this object: deletionPolicy Delete); `))
	f.g.Expect(msg).To(ContainSubstring("granted their token: create:connections read:connections read:email_provider read:tenant_settings update:connections."))
	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}}
	msg = f.condition(provider, identityv1alpha1.ConditionCredentialsValid, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(msg).To(ContainSubstring(`lack create:email_provider (to create the email provider), update:email_provider (to write the declared provider), delete:email_provider (to delete it with this object: deletionPolicy Delete); `))
	f.condition(provider, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	action := &identityv1alpha1.Action{ObjectMeta: metav1.ObjectMeta{Name: "greeting"}}
	msg = f.condition(action, identityv1alpha1.ConditionCredentialsValid, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(msg).To(ContainSubstring(`lack read:actions (to read the action and the bindings of post-login), create:actions (to create and deploy the action), ` +
		`update:actions (to write the declared code, dependencies and secrets), update:triggers (to bind the action to post-login), delete:actions (to delete it with this object: deletionPolicy Delete); `))

	// Neither was created, nor anything written or read for them.
	spent := f.emu.Requests(domain)
	f.g.Expect(spent.ManagementWrites()).To(BeZero(), "%v", spent)
	f.g.Expect(spent.Count("GET", "/api/v2/connections")).To(BeZero())
	f.g.Expect(spent.Count("GET", "/api/v2/emails/provider")).To(BeZero())
	f.g.Expect(spent.Count("GET", "/api/v2/actions/actions")).To(BeZero())
	_, found := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(found).To(BeFalse())
	_, found = f.emu.EmailProvider(domain)
	f.g.Expect(found).To(BeFalse())
	// The Tenant needs none of those scopes: it stays Ready.
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})

	// Deleting them works: they never held a remote object.
	f.g.Expect(k8s.Delete(context.Background(), provider)).To(Succeed())
	f.g.Expect(k8s.Delete(context.Background(), conn)).To(Succeed())
	f.g.Expect(k8s.Delete(context.Background(), action)).To(Succeed())
	f.gone(provider)
	f.gone(conn)
	f.gone(action)
}
