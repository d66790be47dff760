package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// legacyStore is the old user database behind a web service that answers
// only its service account, with HTTP Basic Auth, as in the platform's "web
// service with Basic Auth" script template. It counts every call.
type legacyStore struct {
	*httptest.Server
	mu              sync.Mutex
	accounts        map[string]legacyAccount
	servicePassword string
	calls           int
}

type legacyAccount struct {
	ID                              int
	Email, Username, Name, Password string
}

const legacyServiceUser = "identity-platform"

func startLegacyStore(t *testing.T, servicePassword string, accounts ...legacyAccount) *legacyStore {
	l := &legacyStore{accounts: map[string]legacyAccount{}, servicePassword: servicePassword}
	for _, a := range accounts {
		l.accounts[a.Email] = a
	}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls++
		if user, pass, ok := r.BasicAuth(); !ok || user != legacyServiceUser || pass != l.servicePassword {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var account legacyAccount
		var found bool
		switch r.URL.Path {
		case "/authenticate":
			var body struct{ Email, Password string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			account, found = l.accounts[body.Email]
			if !found || account.Password != body.Password {
				w.WriteHeader(http.StatusForbidden)
				return
			}
		case "/users":
			if account, found = l.accounts[r.URL.Query().Get("email")]; !found {
				w.WriteHeader(http.StatusNotFound)
				return
			}
		default:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": account.ID, "email": account.Email, "username": account.Username, "name": account.Name})
	}))
	t.Cleanup(l.Close)
	return l
}

// Calls is how many requests the legacy service received.
func (l *legacyStore) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// rotate changes the service account's password; the old one stops working.
func (l *legacyStore) rotate(password string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.servicePassword = password
}

// The scripts a platform team keeps as files and tests on their own.
const (
	legacyLoginScript = `function login(email, password, callback) {
  const request = require('request');
  request.post({
    url: configuration.LEGACY_URL + '/authenticate',
    auth: { username: configuration.LEGACY_USER, password: configuration.LEGACY_PASSWORD },
    json: { email: email, password: password }
  }, function (err, response, body) {
    if (err) return callback(err);
    if (response.statusCode === 403) return callback(new WrongUsernameOrPasswordError(email, 'Wrong email or password.'));
    if (response.statusCode !== 200) return callback(new Error('the legacy service answered ' + response.statusCode));
    callback(null, { user_id: String(body.id), email: body.email, username: body.username, name: body.name, email_verified: true });
  });
}`
	legacyGetUserScript = `function getByEmail(email, callback) {
  const request = require('request');
  request.get({
    url: configuration.LEGACY_URL + '/users?email=' + encodeURIComponent(email),
    auth: { username: configuration.LEGACY_USER, password: configuration.LEGACY_PASSWORD },
    json: true
  }, function (err, response, body) {
    if (err) return callback(err);
    if (response.statusCode === 404) return callback(null, null);
    if (response.statusCode !== 200) return callback(new Error('the legacy service answered ' + response.statusCode));
    callback(null, { user_id: String(body.id), email: body.email, username: body.username, name: body.name + ' (from get_user)' });
  });
}`
)

// legacyScripts is the ConfigMap of the scripts, with getUser's source given.
func legacyScripts(getUser string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: ConfigMap
metadata: {name: legacy-scripts}
data:
  login.js: %q
  get-user.js: %q
`, legacyLoginScript, getUser)
}

// legacyConfiguration is the Secret of the scripts' configuration.
func legacyConfiguration(l *legacyStore, password string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: legacy-service}
stringData: {LEGACY_URL: %q, LEGACY_USER: %q, LEGACY_PASSWORD: %q}
`, l.URL, legacyServiceUser, password)
}

// legacyConnectionSpec is a CustomDatabaseConnection migrating the users of
// the legacy store into connection legacy-users of Tenant acme, plus extra
// spec lines.
func legacyConnectionSpec(extra string) string {
	return `
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: legacy-users}
spec:
  tenantRef: {name: acme}
  connectionName: legacy-users
  displayName: Acme accounts
  scripts:
    login: {configMapKeyRef: {name: legacy-scripts, key: login.js}}
    getUser: {configMapKeyRef: {name: legacy-scripts, key: get-user.js}}
  configurationSecretRef: {name: legacy-service}
  importMode: true
  expectedUsers: 3
  userCountInterval: 5m
  validation: {enabled: true, usernameLength: {min: 2, max: 20}}
  passwordPolicy: {strength: fair, minLength: 10, history: 3, dictionary: true}
  disableSignup: true
` + extra
}

// legacyConnection is the whole manifest: scripts, configuration, connection.
func legacyConnection(l *legacyStore, servicePassword, extra string) string {
	return legacyScripts(legacyGetUserScript) + "---" + legacyConfiguration(l, servicePassword) + "---" + legacyConnectionSpec(extra)
}

var (
	ann = legacyAccount{ID: 101, Email: "ann@acme.example", Username: "ann", Name: "Ann Legacy", Password: "Ann-legacy-pw1"}
	bob = legacyAccount{ID: 102, Email: "bob@acme.example", Username: "bob", Name: "Bob Legacy", Password: "Bob-legacy-pw1"}
	cid = legacyAccount{ID: 103, Email: "cid@acme.example", Username: "cid", Name: "Cid Legacy", Password: "Cid-legacy-pw1"}
)

func legacyUsersObject() *identityv1alpha1.CustomDatabaseConnection {
	return &identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Name: "legacy-users"}}
}

// login runs the password-realm grant an application uses and returns the
// HTTP status (200: logged in).
func (f *fixture) login(domain string, creds emulatortest.Credentials, connection, username, password string) int {
	f.t.Helper()
	form := url.Values{
		"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {connection},
		"username": {username}, "password": {password}, "client_id": {creds.ClientID},
		"client_secret": {creds.ClientSecret}, "scope": {"openid"},
	}
	resp, err := f.emu.HTTPClient().Post(f.emu.BaseURL(domain)+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	f.g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	return resp.StatusCode
}

// confirmPasswordReset follows the newest reset link mailed to email and
// sets password on the reset page.
func (f *fixture) confirmPasswordReset(domain, email, password string) {
	f.t.Helper()
	var link string
	f.g.Eventually(func() string {
		for _, m := range f.emu.Outbox(domain) {
			if m.To == email {
				link = m.URL
			}
		}
		return link
	}, 10*time.Second, 100*time.Millisecond).ShouldNot(BeEmpty(), "no reset mail to %s", email)
	u, err := url.Parse(strings.TrimSuffix(link, "#"))
	f.g.Expect(err).NotTo(HaveOccurred())
	form := url.Values{"ticket": {u.Query().Get("ticket")}, "newPassword": {password}, "confirmNewPassword": {password}}
	resp, err := f.emu.HTTPClient().Post(f.emu.BaseURL(domain)+"/u/reset-password", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	f.g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	f.g.Expect(resp.StatusCode).To(BeNumerically("<", 400))
}

// remoteConnection is the connection as the platform stores it, without
// its configuration (which the emulator gives in plain text: a failing
// assertion would print it).
func (f *fixture) remoteConnection(domain string) (options map[string]any, id string) {
	f.t.Helper()
	c, ok := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(ok).To(BeTrue(), "connection legacy-users does not exist on the tenant")
	options, _ = c["options"].(map[string]any)
	_, hasConfiguration := options["configuration"]
	delete(options, "configuration")
	options["configuration (not shown)"] = hasConfiguration
	id, _ = c["id"].(string)
	return options, id
}

// remoteConfigurationIs reports whether the platform holds exactly this
// plain configuration, without printing it when it does not.
func (f *fixture) remoteConfigurationIs(domain string, want map[string]string) bool {
	c, _ := f.emu.Connection(domain, "legacy-users")
	options, _ := c["options"].(map[string]any)
	got, _ := options["configuration"].(map[string]any)
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// countUsersNow moves the operator's clock past the counting interval and
// waits until the printer column shows migrated.
func (f *fixture) countUsersNow(migrated string) {
	f.t.Helper()
	clock.Step(5*time.Minute + time.Second)
	f.g.Eventually(func() map[string]string { return f.row("customdatabaseconnections", "legacy-users") },
		15*time.Second, 200*time.Millisecond).Should(HaveKeyWithValue("Migrated", migrated))
}

func TestCustomDatabaseConnectionMigratesUsersLazilyAndCountsThem(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann, bob, cid)
	domain, creds := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	conn := legacyUsersObject()
	f.ready(conn)

	options, id := f.remoteConnection(domain)
	f.g.Expect(conn.Status.ConnectionID).To(Equal(id))
	f.g.Expect(options).To(And(
		HaveKeyWithValue("enabledDatabaseCustomization", true),
		HaveKeyWithValue("import_mode", true),
		HaveKeyWithValue("requires_username", false),
		HaveKeyWithValue("strategy_version", 2.0),
		HaveKeyWithValue("validation", map[string]any{"username": map[string]any{"min": 2.0, "max": 20.0}}),
		HaveKeyWithValue("passwordPolicy", "fair"),
		HaveKeyWithValue("password_complexity_options", map[string]any{"min_length": 10.0}),
		HaveKeyWithValue("password_history", map[string]any{"enable": true, "size": 3.0}),
		HaveKeyWithValue("password_dictionary", map[string]any{"enable": true}),
		HaveKeyWithValue("password_no_personal_info", map[string]any{"enable": false}),
		HaveKeyWithValue("brute_force_protection", true),
		HaveKeyWithValue("disable_signup", true),
		HaveKeyWithValue("customScripts", map[string]any{"login": legacyLoginScript, "get_user": legacyGetUserScript}),
	))
	f.g.Expect(f.remoteConfigurationIs(domain, map[string]string{"LEGACY_URL": legacy.URL, "LEGACY_USER": legacyServiceUser, "LEGACY_PASSWORD": "service-pw-1"})).
		To(BeTrue(), "the platform holds the Secret's values as the scripts' configuration")
	f.g.Expect(f.row("customdatabaseconnections", "legacy-users")).To(And(
		HaveKeyWithValue("Phase", "Migrating"), HaveKeyWithValue("Migrated", "0/3"), HaveKeyWithValue("Ready", "True")))

	// Users log in with their legacy passwords; each is migrated on the
	// first login, and the platform serves every later one.
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
	f.g.Expect(legacy.Calls()).To(Equal(1))
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
	f.g.Expect(legacy.Calls()).To(Equal(1), "a migrated user is served by the platform")
	f.g.Expect(f.login(domain, creds, "legacy-users", bob.Email, "Not-bobs-pw1")).To(Equal(http.StatusForbidden))
	f.g.Expect(f.login(domain, creds, "legacy-users", bob.Email, bob.Password)).To(Equal(http.StatusOK))
	f.g.Expect(f.emu.CountUsers(domain, "legacy-users")).To(Equal(2))
	migrated, _ := f.emu.User(domain, "auth0|101")
	f.g.Expect(migrated).To(And(HaveKeyWithValue("email", ann.Email), HaveKeyWithValue("name", ann.Name)))

	f.countUsersNow("2/3")
	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "legacy-users"}, conn)).To(Succeed())
	f.g.Expect(conn.Status.UsersMigrated).To(Equal(ptrTo(int64(2))))
	f.g.Expect(conn.Status.LastUserCountTime).NotTo(BeNil())

	// Cid forgot the legacy password: get_user finds the account, and
	// confirming a new password creates the user with get_user's profile.
	f.requestPasswordReset(domain, creds.ClientID, cid.Email, "legacy-users")
	f.g.Expect(f.emu.CountUsers(domain, "legacy-users")).To(Equal(2), "asking for a reset migrates nobody")
	f.confirmPasswordReset(domain, cid.Email, "Cid-brand-new-pw2")
	reset, ok := f.emu.User(domain, "auth0|103")
	f.g.Expect(ok).To(BeTrue(), "the reset created the user")
	f.g.Expect(reset).To(And(HaveKeyWithValue("username", "cid"), HaveKeyWithValue("name", "Cid Legacy (from get_user)")))
	calls := legacy.Calls()
	f.g.Expect(f.login(domain, creds, "legacy-users", cid.Email, "Cid-brand-new-pw2")).To(Equal(http.StatusOK))
	f.g.Expect(legacy.Calls()).To(Equal(calls), "the new password is the platform's")
	f.countUsersNow("3/3")
}

func TestCustomDatabaseConnectionCompletingTheMigrationStopsCallsToTheLegacyStore(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann, bob)
	domain, creds := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	conn := legacyUsersObject()
	f.ready(conn)
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))

	f.apply(legacyConnection(legacy, "service-pw-1", "  completeMigration: true\n"))
	msg := f.condition(conn, controllers.ConditionMigrationCompleted, metav1.ConditionTrue, identityv1alpha1.ReasonLegacyStoreDisconnected)
	f.g.Expect(msg).To(ContainSubstring("legacy store is no longer called"))
	f.ready(conn)
	f.g.Expect(conn.Status.Phase).To(Equal(identityv1alpha1.ConnectionCompleted))
	f.g.Eventually(func() []string { return f.events("legacy-users") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(HavePrefix("Normal MigrationCompleted: ")))

	options, _ := f.remoteConnection(domain)
	f.g.Expect(options).To(HaveKeyWithValue("import_mode", true), "import mode stays on: migrated users keep logging in")
	scripts, _ := options["customScripts"].(map[string]any)
	f.g.Expect(scripts["login"]).To(And(HavePrefix("function login(email, password, callback)"), ContainSubstring("callback(null, null)")))
	f.g.Expect(scripts["get_user"]).To(And(HavePrefix("function getByEmail(email, callback)"), ContainSubstring("callback(null, null)")))

	before := legacy.Calls()
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK), "migrated users are unaffected")
	f.g.Expect(f.login(domain, creds, "legacy-users", bob.Email, bob.Password)).To(Equal(http.StatusForbidden), "nobody else comes in any more")
	f.requestPasswordReset(domain, creds.ClientID, bob.Email, "legacy-users")
	f.g.Expect(f.emu.Outbox(domain)).To(BeEmpty(), "get_user finds nobody either")
	f.g.Expect(legacy.Calls()).To(Equal(before), "the legacy store received no further call")

	// Going back is refused by the API server, with the reason.
	patch := client.MergeFrom(conn.DeepCopy())
	conn.Spec.CompleteMigration = false
	err := k8s.Patch(context.Background(), conn, patch)
	f.g.Expect(err).To(MatchError(ContainSubstring("completeMigration cannot be switched back")))
}

func TestCustomDatabaseConnectionRotatedConfigurationSecretReachesTheScripts(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann, bob)
	domain, creds := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	conn := legacyUsersObject()
	f.ready(conn)
	firstHash := conn.Status.AppliedHash
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))

	// The legacy service's password changes: the scripts' old one fails.
	legacy.rotate("service-pw-2")
	f.g.Expect(f.login(domain, creds, "legacy-users", bob.Email, bob.Password)).NotTo(Equal(http.StatusOK))

	f.emu.ResetRequests(domain)
	f.apply(legacyConfiguration(legacy, "service-pw-2"))
	f.g.Eventually(func() int { return f.login(domain, creds, "legacy-users", bob.Email, bob.Password) },
		20*time.Second, 250*time.Millisecond).Should(Equal(http.StatusOK), "the rotated Secret reached the login script")
	f.g.Expect(f.emu.CountUsers(domain, "legacy-users")).To(Equal(2))
	f.g.Expect(f.remoteConfigurationIs(domain, map[string]string{"LEGACY_URL": legacy.URL, "LEGACY_USER": legacyServiceUser, "LEGACY_PASSWORD": "service-pw-2"})).To(BeTrue())

	f.g.Eventually(func() string {
		_ = k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "legacy-users"}, conn)
		return conn.Status.AppliedHash
	}, 10*time.Second, 100*time.Millisecond).ShouldNot(Equal(firstHash))
	time.Sleep(2 * resync)
	f.g.Expect(f.emu.Requests(domain).Count("PATCH", "/api/v2/connections/{id}")).To(Equal(1), "one update carries the rotated configuration")

	// The values never show in status or events.
	data, err := json.Marshal(conn)
	f.g.Expect(err).NotTo(HaveOccurred())
	for _, secret := range []string{"service-pw-1", "service-pw-2"} {
		f.g.Expect(strings.Contains(string(data), secret)).To(BeFalse(), "a configuration value is in the object")
		f.g.Expect(strings.Contains(strings.Join(f.events("legacy-users"), "\n"), secret)).To(BeFalse(), "a configuration value is in an event")
	}
}

func TestCustomDatabaseConnectionSteadyStateReadsOncePerResyncAndWritesNothing(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, _ := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	conn := legacyUsersObject()
	f.ready(conn)
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})

	time.Sleep(resync / 2)
	f.emu.ResetRequests(domain)
	time.Sleep(3 * resync)
	requests := f.emu.Requests(domain)
	connectionReads, settingsReads := requests.Count("GET", "/api/v2/connections/{id}"), requests.Count("GET", "/api/v2/tenants/settings")
	t.Logf("steady state, 3 resyncs: %d GET of the connection, %d GET of the tenant settings (Tenant controller), %d writes, %d token requests",
		connectionReads, settingsReads, requests.ManagementWrites(), requests.Tokens())
	f.g.Expect(requests.ManagementReads()).To(Equal(connectionReads+settingsReads), "the connection costs no other read")
	f.g.Expect(requests.ManagementWrites()).To(BeZero())
	f.g.Expect(requests.Count("GET", "/api/v2/connections/{id}")).To(BeNumerically("~", 3, 1), "one read of the connection per resync")
	f.g.Expect(requests.Count("GET", "/api/v2/connections")).To(BeZero(), "the connection is read by id, not searched")
	f.g.Expect(requests.Count("GET", "/api/v2/users")).To(BeZero(), "users are counted on their own cadence, not every resync")

	// Once the interval has passed, one count.
	f.emu.ResetRequests(domain)
	f.countUsersNow("0/3")
	time.Sleep(2 * resync)
	requests = f.emu.Requests(domain)
	f.g.Expect(requests.Count("GET", "/api/v2/users")).To(Equal(1))
	f.g.Expect(requests.ManagementWrites()).To(BeZero())
}

func TestCustomDatabaseConnectionAdoptsByNameKeepsUnmanagedOptionsAndCorrectsDrift(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	ctx := context.Background()
	// Made by hand before the operator: an option the spec does not manage
	// (a password policy) and one the client does not model (mfa).
	existing, err := api.CreateConnection(ctx, identity.ConnectionCreate{Name: "legacy-users", Strategy: identity.StrategyAuth0,
		Options: &identity.ConnectionOptions{PasswordPolicy: ptrTo("excellent"), Extra: map[string]json.RawMessage{"mfa": json.RawMessage(`{"active":true}`)}}})
	f.g.Expect(err).NotTo(HaveOccurred())

	f.apply(legacyScripts(legacyGetUserScript) + "---" + legacyConfiguration(legacy, "service-pw-1") + "---" +
		strings.Replace(legacyConnectionSpec(fmt.Sprintf("  enabledClients: [%q]\n", creds.ClientID)), "  passwordPolicy: {strength: fair, minLength: 10, history: 3, dictionary: true}\n", "", 1))
	conn := legacyUsersObject()
	f.ready(conn)
	f.g.Expect(conn.Status.ConnectionID).To(Equal(existing.ID))
	adopted, _ := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(adopted["display_name"]).To(Equal("Acme accounts"))
	f.g.Expect(adopted["enabled_clients"]).To(Equal([]string{creds.ClientID}))
	f.g.Eventually(func() []string { return f.events("legacy-users") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(ContainSubstring("Normal Adopted: adopted the existing connection legacy-users")))
	options, _ := f.remoteConnection(domain)
	f.g.Expect(options).To(And(HaveKeyWithValue("mfa", map[string]any{"active": true}), HaveKeyWithValue("passwordPolicy", "excellent"),
		HaveKeyWithValue("import_mode", true), HaveKey("customScripts")))

	// Someone turns import mode off the way a person would: read, change,
	// send back. The configuration goes back as the ciphertext it was read as.
	current, err := api.GetConnection(ctx, existing.ID)
	f.g.Expect(err).NotTo(HaveOccurred())
	current.Options.ImportMode = ptrTo(false)
	_, err = api.UpdateConnection(ctx, existing.ID, identity.ConnectionUpdate{Options: &current.Options})
	f.g.Expect(err).NotTo(HaveOccurred())

	f.g.Eventually(func() []string { return f.events("legacy-users") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(ContainSubstring("Warning DriftCorrected: restored values changed outside the operator: options.import_mode")))
	options, _ = f.remoteConnection(domain)
	f.g.Expect(options).To(And(HaveKeyWithValue("import_mode", true), HaveKeyWithValue("mfa", map[string]any{"active": true}), HaveKeyWithValue("passwordPolicy", "excellent")))
	f.g.Expect(f.remoteConfigurationIs(domain, map[string]string{"LEGACY_URL": legacy.URL, "LEGACY_USER": legacyServiceUser, "LEGACY_PASSWORD": "service-pw-1"})).
		To(BeTrue(), "the plain configuration was sent again")
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
}

func TestCustomDatabaseConnectionDeletedOutsideTheOperatorIsMadeAgain(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, creds := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	conn := legacyUsersObject()
	f.ready(conn)
	first := conn.Status.ConnectionID
	f.g.Expect(f.identityClient(domain, creds).DeleteConnection(context.Background(), first)).To(Succeed())

	f.g.Eventually(func() any {
		c, _ := f.emu.Connection(domain, "legacy-users")
		return c["id"]
	}, 15*time.Second, 200*time.Millisecond).Should(And(Not(BeNil()), Not(Equal(first))))
	f.g.Eventually(func() []string { return f.events("legacy-users") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(ContainSubstring("Warning DriftCorrected: connection legacy-users (" + first + ") was deleted outside the operator")))
	f.ready(conn)
	_, id := f.remoteConnection(domain)
	f.g.Expect(conn.Status.ConnectionID).To(Equal(id))
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
}

func TestCustomDatabaseConnectionWithoutImportModeIsActive(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, creds := f.tenant("acme", "")
	// Scripts inline this time.
	f.apply(legacyConfiguration(legacy, "service-pw-1") + fmt.Sprintf(`---
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: legacy-users}
spec:
  tenantRef: {name: acme}
  connectionName: legacy-users
  scripts:
    login: {inline: %q}
    getUser: {inline: %q}
  configurationSecretRef: {name: legacy-service}
`, legacyLoginScript, legacyGetUserScript))
	conn := legacyUsersObject()
	f.ready(conn)
	f.g.Expect(f.row("customdatabaseconnections", "legacy-users")).To(And(HaveKeyWithValue("Phase", "Active"), HaveKeyWithValue("Migrated", "0")))
	options, _ := f.remoteConnection(domain)
	f.g.Expect(options).To(And(HaveKeyWithValue("import_mode", false),
		HaveKeyWithValue("customScripts", map[string]any{"login": legacyLoginScript, "get_user": legacyGetUserScript})))

	// The legacy store stays the source of truth: every login calls it.
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
	f.g.Expect(legacy.Calls()).To(Equal(2))
}

func TestCustomDatabaseConnectionPlatformRefusalWithUsersIsAStalledCondition(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1")
	domain, creds := f.tenant("acme", "")
	// A plain database connection that already holds users cannot be turned
	// into a custom database.
	_, err := f.identityClient(domain, creds).CreateConnection(context.Background(), identity.ConnectionCreate{Name: "legacy-users", Strategy: identity.StrategyAuth0})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.emu.CreateUser(domain, emulatortest.UserSeed{Connection: "legacy-users", Email: "dee@acme.example", Password: "Dee-platform-pw1"})

	f.apply(legacyConnection(legacy, "service-pw-1", ""))
	conn := legacyUsersObject()
	msg := f.condition(conn, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonPlatformRefused)
	f.g.Expect(msg).To(And(ContainSubstring("This database contains users"), ContainSubstring("choose another spec.connectionName")))
	f.condition(conn, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonPlatformRefused)
	options, _ := f.remoteConnection(domain)
	f.g.Expect(options).NotTo(HaveKey("enabledDatabaseCustomization"))
}

func TestCustomDatabaseConnectionScriptProblemsAreConditionsNamingTheScript(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, creds := f.tenant("acme", "")
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})
	conn := legacyUsersObject()

	// Neither the ConfigMap nor the Secret is there yet: nothing is sent.
	// A stalled object is retried only after an hour in these tests, so
	// each step below is the watch of a ConfigMap or Secret at work.
	f.apply(legacyConnectionSpec(""))
	msg := f.condition(conn, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonScriptSourceNotFound)
	f.g.Expect(msg).To(And(ContainSubstring(`ConfigMap "legacy-scripts"`), ContainSubstring("spec.scripts.login")))

	// The scripts arrive, get_user with a syntax error; the Secret is missing.
	f.apply(legacyScripts(strings.Replace(legacyGetUserScript, "function (err, response, body) {", "function (err, response, body {", 1)))
	msg = f.condition(conn, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonConfigurationSecretNotFound)
	f.g.Expect(msg).To(ContainSubstring(`Secret "legacy-service" (spec.configurationSecretRef) not found`))
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/api/v2/connections")).To(BeZero())

	// With the Secret, the platform refuses get_user, and the condition
	// names the script and the file it came from.
	f.apply(legacyConfiguration(legacy, "service-pw-1"))
	msg = f.condition(conn, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonScriptInvalid)
	f.g.Expect(msg).To(And(ContainSubstring("spec.scripts.getUser"), ContainSubstring("ConfigMap legacy-scripts, key get-user.js"),
		ContainSubstring("Error in options.customScripts.get_user script")))
	f.condition(conn, controllers.ConditionScriptsValid, metav1.ConditionFalse, identityv1alpha1.ReasonScriptInvalid)
	_, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeFalse())

	// Fixing the file is enough: the ConfigMap is watched.
	f.apply(legacyScripts(legacyGetUserScript))
	f.ready(conn)
	f.condition(conn, controllers.ConditionScriptsValid, metav1.ConditionTrue, identityv1alpha1.ReasonScriptsAccepted)
	f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))
}

func TestCustomDatabaseConnectionDeletionPolicies(t *testing.T) {
	for _, policy := range []string{"Delete", "Orphan"} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t)
			legacy := startLegacyStore(t, "service-pw-1", ann)
			domain, creds := f.tenant("acme", "")
			f.apply(legacyConnection(legacy, "service-pw-1", "  deletionPolicy: "+policy+"\n"))
			conn := legacyUsersObject()
			f.ready(conn)
			f.g.Expect(f.login(domain, creds, "legacy-users", ann.Email, ann.Password)).To(Equal(http.StatusOK))

			f.g.Expect(k8s.Delete(context.Background(), conn)).To(Succeed())
			f.gone(conn)
			_, exists := f.emu.Connection(domain, "legacy-users")
			f.g.Expect(exists).To(Equal(policy == "Orphan"))
			if policy == "Orphan" {
				f.g.Expect(f.emu.CountUsers(domain, "legacy-users")).To(Equal(1), "the orphaned connection keeps its users")
			}
		})
	}
}

func TestTenantDeletionWaitsForItsCustomDatabaseConnection(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1")
	domain, _ := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", "  deletionPolicy: Delete\n"))
	conn := legacyUsersObject()
	f.ready(conn)
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: f.ns}}

	f.g.Expect(k8s.Delete(context.Background(), tenant)).To(Succeed())
	msg := f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonDependentsExist)
	f.g.Expect(msg).To(ContainSubstring("CustomDatabaseConnection/legacy-users"))

	conn.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), conn)).To(Succeed())
	f.gone(conn)
	f.gone(tenant)
	_, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeFalse(), "the connection was deleted with the tenant's credentials before the Tenant went")
}
