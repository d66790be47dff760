package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// legacyService is an old user store behind a web service with Basic Auth,
// as the platform's "web service" script templates expect.
type legacyService struct {
	*httptest.Server
	mu      sync.Mutex
	calls   map[string]int
	users   map[string]legacyUser
	records map[string][]map[string]any
}

type legacyUser struct {
	ID                  int
	Email, Username, PW string
}

func startLegacyService(t *testing.T, users ...legacyUser) *legacyService {
	l := &legacyService{calls: map[string]int{}, users: map[string]legacyUser{}, records: map[string][]map[string]any{}}
	for _, u := range users {
		l.users[u.Email] = u
	}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.calls[r.URL.Path]++
		l.mu.Unlock()
		user, pass, _ := r.BasicAuth()
		switch r.URL.Path {
		case "/profile": // the person's own credentials
			u, ok := l.users[user]
			if !ok || u.PW != pass {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "email": u.Email, "username": u.Username, "name": "Legacy " + u.Username})
		case "/users": // the service account from the connection's configuration
			if user != "svc" || pass != "svc-secret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			u, ok := l.users[r.URL.Query().Get("email")]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "email": u.Email, "username": u.Username})
		case "/record/create", "/record/change_password", "/record/change_email", "/record/delete":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			l.mu.Lock()
			l.records[strings.TrimPrefix(r.URL.Path, "/record/")] = append(l.records[strings.TrimPrefix(r.URL.Path, "/record/")], body)
			l.mu.Unlock()
			_, _ = w.Write([]byte("{}"))
		case "/slow":
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *legacyService) recorded(action string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.records[action]...)
}

func (l *legacyService) count(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[path]
}

const loginViaWebService = `function login(email, password, callback) {
  const request = require('request');
  request.get({
    url: configuration.BASE_URL + '/profile',
    auth: { username: email, password: password }
  }, function (err, response, body) {
    if (err) return callback(err);
    if (response.statusCode === 401) return callback(new WrongUsernameOrPasswordError(email, 'Wrong email or password.'));
    if (response.statusCode !== 200) return callback(new Error('legacy service answered ' + response.statusCode));
    const user = JSON.parse(body);
    callback(null, { user_id: user.id.toString(), email: user.email, username: user.username, name: user.name });
  });
}`

const getUserViaWebService = `function getByEmail(email, callback) {
  const request = require('request');
  request.get({
    url: configuration.BASE_URL + '/users?email=' + encodeURIComponent(email),
    auth: { username: configuration.SERVICE_USER, password: configuration.SERVICE_PASSWORD },
    json: true
  }, function (err, response, body) {
    if (err) return callback(err);
    if (response.statusCode === 404) return callback(null, null);
    if (response.statusCode !== 200) return callback(new Error('legacy service answered ' + response.statusCode));
    callback(null, { user_id: String(body.id), email: body.email, username: body.username });
  });
}`

// The scripts that complete a migration: nothing is left in the old store.
const noOpLogin = `function login(email, password, callback) { return callback(null, null); }`
const noOpGetUser = `function getByEmail(email, callback) { return callback(null, null); }`

func migrationOptions(l *legacyService, loginScript, getUserScript string) map[string]any {
	return map[string]any{
		"enabledDatabaseCustomization": true, "import_mode": true, "strategy_version": 2,
		"customScripts": map[string]any{"login": loginScript, "get_user": getUserScript},
		"configuration": map[string]any{"BASE_URL": l.URL, "SERVICE_USER": "svc", "SERVICE_PASSWORD": "svc-secret"},
	}
}

func TestALoginScriptMigratesAUserFromALegacyBasicAuthServiceOnce(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	legacy := startLegacyService(t, legacyUser{ID: 42, Email: "hal@example.com", Username: "hal", PW: "Legacy-pw1"})
	a := newTenant(t, e, "lazy.emulator.local")
	a.createDatabase("legacy", migrationOptions(legacy, loginViaWebService, getUserViaWebService))

	r := a.login("legacy", "hal@example.com", "Legacy-pw1", "openid", "profile")
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(legacy.count("/profile")).To(Equal(1))
	g.Expect(e.CountUsers(a.domain, "legacy")).To(Equal(1))
	u, ok := e.User(a.domain, "auth0|42")
	g.Expect(ok).To(BeTrue(), "the user keeps the legacy id")
	g.Expect(u).To(HaveKeyWithValue("email", "hal@example.com"))
	g.Expect(u).To(HaveKeyWithValue("name", "Legacy hal"))

	r = a.login("legacy", "hal@example.com", "Legacy-pw1")
	g.Expect(r.Status).To(Equal(200))
	g.Expect(a.login("legacy", "hal@example.com", "wrong-Passw0rd").Status).To(Equal(403))
	g.Expect(legacy.count("/profile")).To(Equal(1), "later logins are served by the platform's store")

	search := a.do("GET", "/api/v2/users?"+url.Values{"q": {`identities.connection:"legacy"`}, "include_totals": {"true"}, "per_page": {"0"}}.Encode(), nil)
	g.Expect(search.JSON()).To(HaveKeyWithValue("total", 1.0), "the operator counts migrated users this way")

	t.Run("a wrong password is not migrated", func(t *testing.T) {
		g := NewWithT(t)
		legacy.users["ivy@example.com"] = legacyUser{ID: 43, Email: "ivy@example.com", Username: "ivy", PW: "Right-pw1"}
		r := a.login("legacy", "ivy@example.com", "Wrong-pw1")
		g.Expect(r.Status).To(Equal(403))
		g.Expect(r.JSON()).To(HaveKeyWithValue("error_description", "Wrong email or password."))
		g.Expect(e.CountUsers(a.domain, "legacy")).To(Equal(1))
	})
}

func TestGetUserServesAResetForAUserNotYetMigrated(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	legacy := startLegacyService(t, legacyUser{ID: 7, Email: "jo@example.com", Username: "jo", PW: "Forgotten-pw1"})
	a := newTenant(t, e, "getuser.emulator.local")
	a.createDatabase("legacy", migrationOptions(legacy, loginViaWebService, getUserViaWebService))

	g.Expect(a.requestReset("legacy", "jo@example.com").Status).To(Equal(200))
	g.Expect(legacy.count("/users")).To(Equal(1))
	g.Expect(e.CountUsers(a.domain, "legacy")).To(Equal(0), "asking for a reset does not migrate")
	g.Expect(a.submitReset(a.lastLink("jo@example.com"), "Brand-new-pw1").Status).To(Equal(200))

	g.Expect(e.CountUsers(a.domain, "legacy")).To(Equal(1), "confirming the new password creates the user")
	u, _ := e.User(a.domain, "auth0|7")
	g.Expect(u).To(HaveKeyWithValue("username", "jo"))
	g.Expect(a.login("legacy", "jo@example.com", "Brand-new-pw1").Status).To(Equal(200))
	g.Expect(legacy.count("/profile")).To(Equal(0), "the login script was never needed")

	g.Expect(a.requestReset("legacy", "nobody@example.com").Status).To(Equal(200))
	g.Expect(e.Outbox(a.domain)).To(HaveLen(1), "get_user found nobody: no mail, same answer")
}

func TestMigrationValidatesProfilesWithStrategyVersion2(t *testing.T) {
	const script = `function login(email, password, callback) {
  var profiles = {
    upper:  { user_id: '1', email: 'MiXed@Example.COM', username: 'MiXed' },
    bad:    { user_id: '2', email: 'not-an-email', username: 'bad' },
    nouser: { user_id: '3', email: 'nouser@example.com' },
    dup:    { user_id: '4', email: 'taken@example.com', username: 'dup' },
    long:   { user_id: '5', email: 'long@example.com', username: 'a-very-long-username-indeed' }
  };
  callback(null, profiles[email] || null);
}`
	e := emulatortest.Start(t)
	a := newTenant(t, e, "validation.emulator.local")
	opts := func(version int) map[string]any {
		return map[string]any{"enabledDatabaseCustomization": true, "import_mode": true, "requires_username": true,
			"strategy_version": version, "customScripts": map[string]any{"login": script}}
	}
	a.createDatabase("v2", opts(2))
	a.createDatabase("v1", opts(1))
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "v2", Email: "taken@example.com", Username: "taken", Password: "Passw0rd!x"})

	cases := []struct {
		conn, login string
		migrated    bool
		email, user string
	}{
		{"v2", "upper", true, "mixed@example.com", "mixed"},
		{"v1", "upper", true, "MiXed@Example.COM", "MiXed"},
		{"v2", "bad", false, "", ""},
		{"v2", "nouser", false, "", ""},
		{"v2", "dup", false, "", ""},
		{"v2", "long", false, "", ""},
	}
	for _, c := range cases {
		t.Run(c.conn+" "+c.login, func(t *testing.T) {
			g := NewWithT(t)
			before := e.CountUsers(a.domain, c.conn)
			r := a.login(c.conn, c.login, "Any-passw0rd")
			if !c.migrated {
				g.Expect(r.Status).To(Equal(400), string(r.Body))
				g.Expect(r.JSON()["error_description"]).To(HavePrefix("The profile returned by the login script is invalid"))
				g.Expect(e.CountUsers(a.domain, c.conn)).To(Equal(before))
				return
			}
			g.Expect(r.Status).To(Equal(200), string(r.Body))
			u, ok := e.User(a.domain, "auth0|1")
			g.Expect(ok).To(BeTrue())
			g.Expect(u).To(HaveKeyWithValue("email", c.email))
			g.Expect(u).To(HaveKeyWithValue("username", c.user))
			// Migrated users log in with what they typed, in any case.
			g.Expect(a.login(c.conn, "MIXED@example.com", "Any-passw0rd").Status).To(Equal(200))
			a.do("DELETE", "/api/v2/users/auth0%7C1", nil)
		})
	}
}

func TestNoOpScriptsCompleteTheMigration(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	legacy := startLegacyService(t,
		legacyUser{ID: 1, Email: "kim@example.com", Username: "kim", PW: "Legacy-pw1"},
		legacyUser{ID: 2, Email: "lou@example.com", Username: "lou", PW: "Legacy-pw2"})
	a := newTenant(t, e, "complete.emulator.local")
	id := a.createDatabase("legacy", migrationOptions(legacy, loginViaWebService, getUserViaWebService))["id"].(string)
	g.Expect(a.login("legacy", "kim@example.com", "Legacy-pw1").Status).To(Equal(200))

	r := a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"options": migrationOptions(legacy, noOpLogin, noOpGetUser)})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	legacy.Close() // the legacy store is disconnected
	calls := legacy.count("/profile")

	g.Expect(a.login("legacy", "kim@example.com", "Legacy-pw1").Status).To(Equal(200), "migrated users are unaffected")
	g.Expect(a.login("legacy", "lou@example.com", "Legacy-pw2").Status).To(Equal(403), "nobody else can come in any more")
	g.Expect(a.requestReset("legacy", "lou@example.com").Status).To(Equal(200))
	g.Expect(e.Outbox(a.domain)).To(BeEmpty())
	g.Expect(legacy.count("/profile")).To(Equal(calls))
}

func TestScriptsFollowThePlatformsConventions(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "conventions.emulator.local")
	cases := []struct {
		name, script string
		status       int
		err, descr   string
	}{
		{"configuration is a global", `function login(email, password, callback) {
			if (password !== configuration.MASTER) return callback(new WrongUsernameOrPasswordError(email));
			callback(null, { id: 99, email: email });
		}`, 200, "", ""},
		{"WrongUsernameOrPasswordError", `function login(e, p, cb) { cb(new WrongUsernameOrPasswordError(e, 'nope')); }`, 403, "invalid_grant", "Wrong email or password."},
		{"callback() without a user", `function login(e, p, cb) { cb(); }`, 403, "invalid_grant", "Wrong email or password."},
		{"ValidationError", `function login(e, p, cb) { cb(new ValidationError('user-blocked', 'This account is locked in the old system')); }`, 400, "invalid_request", "This account is locked in the old system"},
		{"a thrown error does not leak its message", `function login(e, p, cb) { throw new Error('db password is ' + configuration.MASTER); }`, 500, "server_error", "The custom database script failed"},
		{"an unknown module", `function login(e, p, cb) { require('mysql'); cb(null, null); }`, 500, "server_error", "The custom database script failed"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			name := "conv-" + string(rune('a'+i))
			a.createDatabase(name, map[string]any{"enabledDatabaseCustomization": true, "import_mode": true,
				"customScripts": map[string]any{"login": c.script}, "configuration": map[string]any{"MASTER": "Master-pw1"}})
			r := a.login(name, "mo@example.com", "Master-pw1")
			g.Expect(r.Status).To(Equal(c.status), string(r.Body))
			if c.err != "" {
				g.Expect(r.JSON()).To(Equal(map[string]any{"error": c.err, "error_description": c.descr}))
			}
			g.Expect(string(r.Body)).NotTo(ContainSubstring("Master-pw1"))
		})
	}
}

func TestScriptsRunUnderATimeLimit(t *testing.T) {
	e := emulatortest.Start(t, emulatortest.WithScriptTimeout(500*time.Millisecond))
	legacy := startLegacyService(t)
	a := newTenant(t, e, "timeout.emulator.local")
	cases := map[string]string{
		"a busy loop":           `function login(e, p, cb) { while (true) {} }`,
		"a slow legacy service": `function login(e, p, cb) { require('request').get(configuration.BASE_URL + '/slow', function (err, res) { cb(err, null); }); }`,
	}
	i := 0
	for name, script := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			conn := "slow-" + string(rune('a'+i))
			a.createDatabase(conn, map[string]any{"enabledDatabaseCustomization": true, "import_mode": true,
				"customScripts": map[string]any{"login": script}, "configuration": map[string]any{"BASE_URL": legacy.URL}})
			start := time.Now()
			r := a.login(conn, "x@example.com", "Passw0rd!x")
			g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
			g.Expect(r.Status).To(Equal(500))
			g.Expect(r.JSON()).To(HaveKeyWithValue("error_description", "The custom database script timed out"))
		})
	}
}

func TestRepeatedFailedLoginsAreBlocked(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "bruteforce.emulator.local")
	a.createDatabase("db", nil)
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "nia@example.com", Password: "Right-passw0rd"})
	for i := 0; i < 10; i++ {
		g.Expect(a.login("db", "nia@example.com", "wrong").Status).To(Equal(403))
	}
	r := a.login("db", "nia@example.com", "Right-passw0rd")
	g.Expect(r.Status).To(Equal(429))
	g.Expect(r.JSON()).To(HaveKeyWithValue("error", "too_many_attempts"))
}

// recordingScript is an action script that reports its arguments to the
// legacy service and answers what the platform expects of that action.
func recordingScript(action, fn, params, payload, answer string) string {
	return `function ` + fn + `(` + params + `, callback) {
  require('request').post({ url: configuration.BASE_URL + '/record/` + action + `', json: ` + payload + ` },
    function (err, response) { if (err) return callback(err); callback(null` + answer + `); });
}`
}

func TestAConnectionWithoutImportModeRunsEveryActionThroughItsScripts(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	legacy := startLegacyService(t, legacyUser{ID: 5, Email: "pat@example.com", Username: "pat", PW: "Legacy-pw1"})
	a := newTenant(t, e, "legacyowned.emulator.local")
	a.createDatabase("legacy", map[string]any{
		"enabledDatabaseCustomization": true, "import_mode": false,
		"customScripts": map[string]any{
			"login":           loginViaWebService,
			"get_user":        getUserViaWebService,
			"create":          recordingScript("create", "create", "user", "{ email: user.email, password: user.password }", ""),
			"change_password": recordingScript("change_password", "changePassword", "email, newPassword", "{ email: email, password: newPassword }", ", true"),
			"change_email":    recordingScript("change_email", "changeEmail", "email, newEmail, verified", "{ email: email, newEmail: newEmail }", ", true"),
			"delete":          recordingScript("delete", "remove", "id", "{ id: id }", ""),
		},
		"configuration": map[string]any{"BASE_URL": legacy.URL, "SERVICE_USER": "svc", "SERVICE_PASSWORD": "svc-secret"},
	})

	g.Expect(a.login("legacy", "pat@example.com", "Legacy-pw1").Status).To(Equal(200))
	g.Expect(a.login("legacy", "pat@example.com", "Legacy-pw1").Status).To(Equal(200))
	g.Expect(legacy.count("/profile")).To(Equal(2), "without import mode every login asks the legacy store")
	g.Expect(a.login("legacy", "pat@example.com", "Wrong-pw1").Status).To(Equal(403))
	_, copied := e.User(a.domain, "auth0|5")
	g.Expect(copied).To(BeTrue(), "the platform keeps a profile copy")

	r := a.form("/dbconnections/signup", url.Values{"client_id": {a.creds.ClientID}, "connection": {"legacy"}, "email": {"quinn@example.com"}, "password": {"Signup-pw1"}})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(legacy.recorded("create")).To(Equal([]map[string]any{{"email": "quinn@example.com", "password": "Signup-pw1"}}))

	r = a.do("PATCH", "/api/v2/users/auth0%7C5", map[string]any{"password": "Patched-pw1", "connection": "legacy"})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(legacy.recorded("change_password")).To(Equal([]map[string]any{{"email": "pat@example.com", "password": "Patched-pw1"}}))

	g.Expect(a.requestReset("legacy", "pat@example.com").Status).To(Equal(200))
	g.Expect(a.submitReset(a.lastLink("pat@example.com"), "Reset-pw1").Status).To(Equal(200))
	g.Expect(legacy.recorded("change_password")).To(HaveLen(2))
	g.Expect(legacy.recorded("change_password")[1]).To(HaveKeyWithValue("password", "Reset-pw1"))

	r = a.do("PATCH", "/api/v2/users/auth0%7C5", map[string]any{"email": "pat@new.example", "connection": "legacy"})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(legacy.recorded("change_email")).To(Equal([]map[string]any{{"email": "pat@example.com", "newEmail": "pat@new.example"}}))

	g.Expect(a.do("DELETE", "/api/v2/users/auth0%7C5", nil).Status).To(Equal(204))
	g.Expect(legacy.recorded("delete")).To(Equal([]map[string]any{{"id": "5"}}))
}
