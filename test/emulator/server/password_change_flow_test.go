package server_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// passwordChangeAction is the sample post-login Action of flow 4, shared
// with the operator's samples.
func passwordChangeAction(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "password-change-action.js"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const passwordChanged = "https://app.example/password-changed"

// Flow 4 of the design, end to end as a browser walks it: re-authenticate
// through Universal Login (prompt=login, login_hint, scope update:password);
// the post-login Action gets a token by client credentials, creates a
// password-change ticket and sends the browser to it; the ticket form sets
// the new password and redirects to the result URL.
func TestPasswordChangeThroughReauthenticationAndAPostLoginAction(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, userID, app := loginTenant(t, e, "flow4.emulator.local")
	m2m := e.MintClient(a.domain, "create:user_tickets")

	// The Action, through the Management API as the operator writes it.
	created := a.do("POST", "/api/v2/actions/actions", map[string]any{"name": "password-change",
		"supported_triggers": []any{map[string]any{"id": "post-login", "version": "v3"}}, "runtime": "node22",
		"code": passwordChangeAction(t), "secrets": []any{
			map[string]any{"name": "CLIENT_ID", "value": m2m.ClientID}, map[string]any{"name": "CLIENT_SECRET", "value": m2m.ClientSecret},
			map[string]any{"name": "RESULT_URL", "value": passwordChanged}}})
	g.Expect(created.Status).To(Equal(201), string(created.Body))
	g.Expect(created.JSON()).To(HaveKeyWithValue("status", "built"))
	actionID := created.JSON()["id"].(string)
	g.Expect(a.do("POST", "/api/v2/actions/actions/"+actionID+"/deploy", nil).Status).To(Equal(202))
	g.Expect(a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": []any{
		map[string]any{"ref": map[string]any{"type": "action_name", "value": "password-change"}}}}).Status).To(Equal(200))

	reauth := authzParams(app, "prompt", "login", "login_hint", "ann@example.com", "scope", "openid update:password")
	tickets := func() int { return e.Requests(a.domain).Count("POST", "/api/v2/tickets/password-change") }
	tokens := func() int { return e.Requests(a.domain).Tokens() }

	b := e.Browser(a.domain)
	login := b.Authorize(reauth)
	g.Expect(login.Status).To(Equal(200))
	g.Expect(login.Field("username")).To(Equal("ann@example.com"))

	// Wrong current password: the page again, no Action, no ticket.
	tokensBefore := tokens()
	wrong := b.Submit(login, map[string]string{"password": "Not-the-passw0rd"})
	g.Expect(wrong.Status).To(Equal(400))
	g.Expect(wrong.Body).To(ContainSubstring("Wrong email or password."))
	g.Expect(tickets()).To(Equal(0))
	g.Expect(tokens()).To(Equal(tokensBefore), "the Action did not run")

	// Right one: the Action's ticket form.
	form := b.Submit(wrong, map[string]string{"password": "Old-passw0rd"})
	g.Expect(form.Status).To(Equal(200), form.Body)
	g.Expect(form.URL.Path).To(Equal("/u/reset-password"))
	g.Expect(form.URL.Query().Get("ticket")).NotTo(BeEmpty())
	g.Expect(form.URL.Query().Get("state")).NotTo(BeEmpty(), "the platform appends its state to the Action's redirect")
	g.Expect(form.HasForm("newPassword")).To(BeTrue())
	g.Expect(form.Body).To(ContainSubstring("ann@example.com"))
	g.Expect(tickets()).To(Equal(1))
	g.Expect(tokens()).To(Equal(tokensBefore+1), "the Action got its token by client credentials")
	_, port, _ := net.SplitHostPort(e.Addr())
	g.Expect(form.URL.Port()).To(Equal(port), "the ticket link carries the port the emulator serves the tenant on")
	ticketLink := form.URL.String()

	// The new password: back to the result URL.
	done := b.Submit(form, map[string]string{"newPassword": "New-passw0rd", "confirmNewPassword": "New-passw0rd"})
	g.Expect(done.Status).To(Equal(302), done.Body)
	g.Expect(done.Location).To(HavePrefix(passwordChanged + "?"))
	g.Expect(done.LocationQuery().Get("success")).To(Equal("true"))

	// The old password is refused, the new one accepted, by both doors.
	g.Expect(a.login("db", "ann@example.com", "Old-passw0rd").Status).To(Equal(403))
	g.Expect(a.login("db", "ann@example.com", "New-passw0rd").Status).To(Equal(200))
	fresh := e.Browser(a.domain)
	page := fresh.Authorize(authzParams(app, "login_hint", "ann@example.com"))
	old := fresh.Submit(page, map[string]string{"password": "Old-passw0rd"})
	g.Expect(old.Status).To(Equal(400))
	g.Expect(old.Body).To(ContainSubstring("Wrong email or password."))
	in := fresh.Submit(old, map[string]string{"password": "New-passw0rd"})
	g.Expect(in.Location).To(HavePrefix(appCallback + "?"))
	g.Expect(in.LocationQuery().Get("code")).NotTo(BeEmpty(), "a login without update:password passes the Action untouched")
	g.Expect(tickets()).To(Equal(1))
	g.Expect(jwtClaims(t, a.exchange(app, in.LocationQuery().Get("code")).secret("id_token"))).To(HaveKeyWithValue("sub", userID))

	// The ticket works once.
	spent := b.Open(ticketLink)
	g.Expect(spent.Status).To(Equal(400))
	g.Expect(spent.Body).To(ContainSubstring("This link has already been used."))
	again := b.Submit(form, map[string]string{"newPassword": "Third-passw0rd", "confirmNewPassword": "Third-passw0rd"})
	g.Expect(again.Status).To(Equal(400))
	g.Expect(a.login("db", "ann@example.com", "Third-passw0rd").Status).To(Equal(403))

	t.Run("an Action that throws fails the login with the platform's error shape", func(t *testing.T) {
		g := NewWithT(t)
		// A rotated client secret the Action's Secret did not follow: its
		// token request fails and it throws.
		r := a.do("PATCH", "/api/v2/actions/actions/"+actionID, map[string]any{"secrets": []any{
			map[string]any{"name": "CLIENT_ID", "value": m2m.ClientID}, map[string]any{"name": "CLIENT_SECRET", "value": "stale-secret"},
			map[string]any{"name": "RESULT_URL", "value": passwordChanged}}})
		g.Expect(r.JSON()).To(HaveKeyWithValue("all_changes_deployed", false))
		g.Expect(a.do("POST", "/api/v2/actions/actions/"+actionID+"/deploy", nil).Status).To(Equal(202))

		tokensBefore := tokens()
		b := e.Browser(a.domain)
		failed := b.Submit(b.Authorize(reauth), map[string]string{"password": "New-passw0rd"})
		g.Expect(failed.Status).To(Equal(302))
		g.Expect(failed.Location).To(HavePrefix(appCallback + "?"))
		q := failed.LocationQuery()
		g.Expect(q.Get("error")).To(Equal("access_denied"))
		g.Expect(q.Get("error_description")).To(Equal("Could not get a Management API token: 401"))
		g.Expect(q.Get("state")).To(Equal("app-state-1"))
		g.Expect(q.Has("code")).To(BeFalse())
		g.Expect(tickets()).To(Equal(1), "no ticket")
		g.Expect(tokens()).To(Equal(tokensBefore+1), "the Action ran and its token request was refused")
	})
}

// The platform's links carry no port; the emulator's keep the port the
// caller reached the tenant by, so that they work against `make run`.
func TestTicketLinksKeepThePortTheTenantWasReachedBy(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, userID, _ := loginTenant(t, e, "ports.emulator.local")
	ticket := func(host string) string {
		body, _ := json.Marshal(map[string]any{"user_id": userID})
		req, _ := http.NewRequest("POST", "https://"+host+"/api/v2/tickets/password-change", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.token)
		r := a.send(req)
		g.Expect(r.Status).To(Equal(201), string(r.Body))
		return r.JSON()["ticket"].(string)
	}
	g.Expect(ticket(a.domain)).To(HavePrefix("https://ports.emulator.local/u/reset-password?ticket="))
	g.Expect(ticket(a.domain + ":8443")).To(HavePrefix("https://ports.emulator.local:8443/u/reset-password?ticket="))
	g.Expect(ticket(a.domain + ":443")).To(HavePrefix("https://ports.emulator.local/u/reset-password?ticket="))
}
