package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

const appCallback = "https://app.example/callback"

// webApp is an application that logs users in through Universal Login.
type webApp struct{ clientID, secret string }

// loginTenant is a tenant with a database "db" holding ann@example.com
// (password Old-passw0rd) and a regular web application whose callback is
// appCallback.
func loginTenant(t *testing.T, e *emulatortest.Emulator, domain string) (*api, string, webApp) {
	t.Helper()
	a, id := passwordTenant(t, e, domain)
	r := a.do("POST", "/api/v2/clients", map[string]any{"name": "Web app", "app_type": "regular_web", "callbacks": []any{appCallback}})
	if r.Status != 201 {
		t.Fatalf("create app: %d %s", r.Status, r.Body)
	}
	return a, id, webApp{clientID: r.JSON()["client_id"].(string), secret: r.secret("client_secret")}
}

// storedUser is a user as the emulator keeps it.
func storedUser(t *testing.T, e *emulatortest.Emulator, domain, id string) map[string]any {
	t.Helper()
	u, ok := e.User(domain, id)
	if !ok {
		t.Fatalf("no user %s", id)
	}
	return u
}

// authzParams is an authorization code request of app; extra are
// key, value pairs.
func authzParams(app webApp, extra ...string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {app.clientID}, "redirect_uri": {appCallback}, "state": {"app-state-1"}, "scope": {"openid email"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// exchange redeems an authorization code.
func (a *api) exchange(app webApp, code string) response {
	a.t.Helper()
	return a.form("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {app.clientID}, "client_secret": {app.secret},
		"code": {code}, "redirect_uri": {appCallback}})
}

// Shapes from https://auth0.com/docs/api/authentication/authorization-code-flow/authorize-application
// and .../get-token: the browser comes back to redirect_uri with code and
// state; the code is exchanged once at /oauth/token.
func TestUniversalLoginAuthenticatesDatabaseUsersAndIssuesACode(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, userID, app := loginTenant(t, e, "ul.emulator.local")
	b := e.Browser(a.domain)

	login := b.Authorize(authzParams(app, "login_hint", "ann@example.com"))
	g.Expect(login.Status).To(Equal(200), login.Body)
	g.Expect(login.URL.Path).To(Equal("/u/login"), "/authorize sends the browser to the login page")
	g.Expect(login.HasForm("password")).To(BeTrue())
	g.Expect(login.Field("username")).To(Equal("ann@example.com"), "login_hint is pre-filled")

	wrong := b.Submit(login, map[string]string{"password": "Wrong-passw0rd"})
	g.Expect(wrong.Status).To(Equal(400))
	g.Expect(wrong.Body).To(ContainSubstring("Wrong email or password."))
	g.Expect(wrong.Field("username")).To(Equal("ann@example.com"))

	done := b.Submit(wrong, map[string]string{"password": "Old-passw0rd"})
	g.Expect(done.Status).To(Equal(302), done.Body)
	g.Expect(done.Location).To(HavePrefix(appCallback + "?"))
	g.Expect(done.LocationQuery().Get("state")).To(Equal("app-state-1"))
	code := done.LocationQuery().Get("code")
	g.Expect(code).NotTo(BeEmpty())
	g.Expect(storedUser(t, e, a.domain, userID)).To(HaveKeyWithValue("logins_count", 1.0))

	tokens := a.exchange(app, code)
	g.Expect(tokens.Status).To(Equal(200), string(tokens.Body))
	idt := jwtClaims(t, tokens.secret("id_token"))
	g.Expect(idt).To(HaveKeyWithValue("sub", userID))
	g.Expect(idt).To(HaveKeyWithValue("email", "ann@example.com"))
	g.Expect(idt).To(HaveKeyWithValue("aud", app.clientID))
	g.Expect(a.exchange(app, code).JSON()).To(HaveKeyWithValue("error", "invalid_grant"), "a code is exchanged once")

	t.Run("the session skips the login page", func(t *testing.T) {
		g := NewWithT(t)
		again := b.Authorize(authzParams(app))
		g.Expect(again.Status).To(Equal(302))
		g.Expect(again.LocationQuery().Get("code")).NotTo(BeEmpty())
		g.Expect(b.Authorize(authzParams(app, "prompt", "none")).LocationQuery().Get("code")).NotTo(BeEmpty())
	})
	t.Run("prompt=login asks for the password again", func(t *testing.T) {
		g := NewWithT(t)
		p := b.Authorize(authzParams(app, "prompt", "login", "login_hint", "ann@example.com"))
		g.Expect(p.Status).To(Equal(200))
		g.Expect(p.HasForm("password")).To(BeTrue())
	})
	t.Run("prompt=none without a session is login_required", func(t *testing.T) {
		g := NewWithT(t)
		p := e.Browser(a.domain).Authorize(authzParams(app, "prompt", "none"))
		g.Expect(p.LocationQuery().Get("error")).To(Equal("login_required"))
		g.Expect(p.LocationQuery().Get("state")).To(Equal("app-state-1"))
	})
	t.Run("the brute-force counter applies to the form", func(t *testing.T) {
		g := NewWithT(t)
		fresh := e.Browser(a.domain)
		page := fresh.Authorize(authzParams(app, "prompt", "login"))
		for i := 0; i < 10; i++ {
			page = fresh.Submit(page, map[string]string{"username": "ann@example.com", "password": "Wrong-passw0rd"})
		}
		blocked := fresh.Submit(page, map[string]string{"username": "ann@example.com", "password": "Old-passw0rd"})
		g.Expect(blocked.Status).To(Equal(429))
		g.Expect(blocked.Body).To(ContainSubstring("blocked"))
	})
}

func TestAuthorizeRefusesUnknownClientsAndCallbacks(t *testing.T) {
	e := emulatortest.Start(t)
	a, _, app := loginTenant(t, e, "authz.emulator.local")
	for _, tc := range []struct {
		name     string
		params   url.Values
		status   int
		page     string // on the error page, when the application cannot be trusted
		redirect string // error sent back to redirect_uri
	}{
		{"an unknown client", authzParams(webApp{clientID: "nobody"}), 400, "Unknown client: nobody", ""},
		{"a callback not allowed", authzParams(app, "redirect_uri", "https://evil.example/cb"), 400, "Callback URL mismatch. https://evil.example/cb is not in the list of allowed callback URLs.", ""},
		{"another response type", authzParams(app, "response_type", "token"), 302, "", "unsupported_response_type"},
		{"a connection that is not a database", authzParams(app, "connection", "google-oauth2"), 302, "", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := e.Browser(a.domain).Authorize(tc.params)
			g.Expect(p.Status).To(Equal(tc.status), p.Body)
			if tc.page != "" {
				g.Expect(p.Body).To(ContainSubstring(tc.page))
				return
			}
			g.Expect(p.Location).To(HavePrefix(appCallback))
			g.Expect(p.LocationQuery().Get("error")).To(Equal(tc.redirect))
			g.Expect(p.LocationQuery().Get("state")).To(Equal("app-state-1"))
		})
	}
	g := NewWithT(t)
	g.Expect(e.Browser(a.domain).Open("https://" + a.domain + "/u/login?state=made-up").Status).To(Equal(400))
	g.Expect(e.Browser(a.domain).Open("https://" + a.domain + "/continue?state=made-up").Status).To(Equal(400))
}

// The post-login trigger runs the deployed versions of its bound actions
// in binding order (https://auth0.com/docs/customize/actions/flows-and-triggers/login-flow).
func TestPostLoginActionsRunInBindingOrderAndShapeTheLogin(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, userID, app := loginTenant(t, e, "trail.emulator.local")
	// Each action appends its letter to a trail kept in app_metadata and
	// puts the trail so far in the id_token.
	trail := func(letter string) string {
		return `exports.onExecutePostLogin = async (event, api) => {
  const trail = (event.user.app_metadata.trail || '') + '` + letter + `';
  api.user.setAppMetadata('trail', trail);
  api.idToken.setCustomClaim('https://example.com/trail', trail);
  api.accessToken.setCustomClaim('https://example.com/client', event.client.name + '/' + event.connection.name);
};`
	}
	ids := map[string]string{}
	for _, name := range []string{"A", "B"} {
		ids[name] = a.newAction("trail-"+name, trail(name), nil)["id"].(string)
		g.Expect(a.do("POST", "/api/v2/actions/actions/"+ids[name]+"/deploy", nil).Status).To(Equal(202))
	}
	bind := func(names ...string) {
		var bs []any
		for _, n := range names {
			bs = append(bs, map[string]any{"ref": map[string]any{"type": "action_id", "value": ids[n]}})
		}
		g.Expect(a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": bs}).Status).To(Equal(200))
	}
	logIn := func() (map[string]any, map[string]any) {
		b := e.Browser(a.domain)
		done := b.Submit(b.Authorize(authzParams(app)), map[string]string{"username": "ann@example.com", "password": "Old-passw0rd"})
		g.Expect(done.Location).To(HavePrefix(appCallback), done.Body)
		r := a.exchange(app, done.LocationQuery().Get("code"))
		return jwtClaims(t, r.secret("id_token")), jwtClaims(t, r.secret("access_token"))
	}

	bind("A", "B")
	idt, at := logIn()
	g.Expect(idt).To(HaveKeyWithValue("https://example.com/trail", "AB"))
	g.Expect(at).To(HaveKeyWithValue("https://example.com/client", "Web app/db"))
	bind("B", "A")
	idt, _ = logIn()
	g.Expect(idt).To(HaveKeyWithValue("https://example.com/trail", "ABBA"), "a later action sees what an earlier one set")
	g.Expect(storedUser(t, e, a.domain, userID)).To(HaveKeyWithValue("app_metadata", HaveKeyWithValue("trail", "ABBA")))

	t.Run("a wrong password runs no action", func(t *testing.T) {
		g := NewWithT(t)
		b := e.Browser(a.domain)
		p := b.Submit(b.Authorize(authzParams(app)), map[string]string{"username": "ann@example.com", "password": "Wrong-passw0rd"})
		g.Expect(p.Status).To(Equal(400))
		g.Expect(storedUser(t, e, a.domain, userID)).To(HaveKeyWithValue("app_metadata", HaveKeyWithValue("trail", "ABBA")))
	})

	t.Run("an action that redirects pauses the login until /continue", func(t *testing.T) {
		g := NewWithT(t)
		id := a.newAction("consent", `exports.onExecutePostLogin = async (event, api) => {
  api.redirect.sendUserTo('https://consent.example/ask', { query: { user: event.user.email } });
};
exports.onContinuePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/consented', event.request.query.state === 'app-state-1');
};`, nil)["id"].(string)
		ids["consent"] = id
		g.Expect(a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil).Status).To(Equal(202))
		bind("consent", "A")
		b := e.Browser(a.domain)
		away := b.Submit(b.Authorize(authzParams(app)), map[string]string{"username": "ann@example.com", "password": "Old-passw0rd"})
		g.Expect(away.Status).To(Equal(302))
		g.Expect(away.Location).To(HavePrefix("https://consent.example/ask?"))
		g.Expect(away.LocationQuery().Get("user")).To(Equal("ann@example.com"))
		state := away.LocationQuery().Get("state")
		g.Expect(state).NotTo(BeEmpty(), "the platform appends its state")
		g.Expect(state).NotTo(Equal("app-state-1"))

		back := b.Open("https://" + a.domain + "/continue?state=" + url.QueryEscape(state))
		g.Expect(back.Location).To(HavePrefix(appCallback), back.Body)
		g.Expect(back.LocationQuery().Get("state")).To(Equal("app-state-1"))
		idt := jwtClaims(t, a.exchange(app, back.LocationQuery().Get("code")).secret("id_token"))
		g.Expect(idt).To(HaveKeyWithValue("https://example.com/consented", true))
		g.Expect(idt).To(HaveKeyWithValue("https://example.com/trail", "ABBAA"), "the actions after the paused one run")
		g.Expect(b.Open("https://"+a.domain+"/continue?state="+url.QueryEscape(state)).Status).To(Equal(400), "a login resumes once")
	})

	for _, tc := range []struct{ name, code, description string }{
		{"an action that denies fails the login", `exports.onExecutePostLogin = async (event, api) => { api.access.deny('Logins are closed for ' + event.user.email); };`, "Logins are closed for ann@example.com"},
		{"an action that throws fails the login", `exports.onExecutePostLogin = async () => { throw new Error('Policy service unavailable'); };`, "Policy service unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			name := "fail-" + strings.Fields(tc.name)[3]
			id := a.newAction(name, tc.code, nil)["id"].(string)
			ids[name] = id
			g.Expect(a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil).Status).To(Equal(202))
			bind(name, "A")
			b := e.Browser(a.domain)
			p := b.Submit(b.Authorize(authzParams(app)), map[string]string{"username": "ann@example.com", "password": "Old-passw0rd"})
			g.Expect(p.Status).To(Equal(302))
			g.Expect(p.Location).To(HavePrefix(appCallback + "?"))
			q := p.LocationQuery()
			g.Expect(q.Get("error")).To(Equal("access_denied"))
			g.Expect(q.Get("error_description")).To(Equal(tc.description))
			g.Expect(q.Get("state")).To(Equal("app-state-1"))
			g.Expect(q.Has("code")).To(BeFalse())
			g.Expect(storedUser(t, e, a.domain, userID)).To(HaveKeyWithValue("app_metadata", HaveKeyWithValue("trail", "ABBAA")), "the actions after it do not run")
			g.Expect(b.Authorize(authzParams(app, "prompt", "none")).LocationQuery().Get("error")).To(Equal("login_required"), "a failed login leaves no session")
		})
	}
}

func TestUniversalLoginMigratesLegacyUsersThroughTheLoginScript(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	legacy := startLegacyService(t, legacyUser{ID: 42, Email: "hal@example.com", Username: "hal", PW: "Legacy-pw1"})
	a, _, app := loginTenant(t, e, "lazyul.emulator.local")
	a.createDatabase("legacy", migrationOptions(legacy, loginViaWebService, getUserViaWebService))
	id := a.newAction("who", `exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/who', event.user.user_id + ' via ' + event.connection.name);
};`, nil)["id"].(string)
	g.Expect(a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil).Status).To(Equal(202))
	g.Expect(a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": []any{
		map[string]any{"ref": map[string]any{"type": "action_id", "value": id}}}}).Status).To(Equal(200))

	logIn := func(pw string) emulatortest.Page {
		b := e.Browser(a.domain)
		return b.Submit(b.Authorize(authzParams(app, "connection", "legacy", "prompt", "login")), map[string]string{"username": "hal@example.com", "password": pw})
	}
	g.Expect(logIn("Wrong-pw1").Status).To(Equal(400))
	g.Expect(e.CountUsers(a.domain, "legacy")).To(Equal(0), "a wrong password migrates nobody")

	done := logIn("Legacy-pw1")
	g.Expect(done.Location).To(HavePrefix(appCallback+"?"), done.Body)
	g.Expect(e.CountUsers(a.domain, "legacy")).To(Equal(1), "the login script's success migrates the user")
	idt := jwtClaims(t, a.exchange(app, done.LocationQuery().Get("code")).secret("id_token"))
	g.Expect(idt).To(HaveKeyWithValue("https://example.com/who", "auth0|42 via legacy"))

	g.Expect(logIn("Legacy-pw1").LocationQuery().Get("code")).NotTo(BeEmpty())
	g.Expect(legacy.count("/profile")).To(Equal(2), "the wrong password and the first login asked the legacy store; the migrated user is served by the platform")
}

func TestLoginsCodesAndSessionsExpireByThePlatformClock(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _, app := loginTenant(t, e, "expiry.emulator.local")
	b := e.Browser(a.domain)
	creds := map[string]string{"username": "ann@example.com", "password": "Old-passw0rd"}

	page := b.Authorize(authzParams(app))
	e.AdvanceClock(time.Hour)
	late := b.Submit(page, creds)
	g.Expect(late.Status).To(Equal(400), "a login page left open for an hour has expired")
	g.Expect(late.Body).To(ContainSubstring("This login has expired"))

	done := b.Submit(b.Authorize(authzParams(app)), creds)
	code := done.LocationQuery().Get("code")
	g.Expect(code).NotTo(BeEmpty())
	e.AdvanceClock(10*time.Minute - time.Millisecond)
	g.Expect(b.Authorize(authzParams(app)).LocationQuery().Get("code")).NotTo(BeEmpty(), "the session is live")
	e.AdvanceClock(time.Millisecond)
	g.Expect(a.exchange(app, code).JSON()).To(HaveKeyWithValue("error", "invalid_grant"), "a code lives 10 minutes")

	e.AdvanceClock(72 * time.Hour)
	g.Expect(b.Authorize(authzParams(app)).HasForm("password")).To(BeTrue(), "a session lives 72 hours")
}
