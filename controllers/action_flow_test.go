package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/testenv"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

const (
	appCallback     = "https://app.acme.example/callback"
	passwordChanged = "https://app.acme.example/password-changed"
)

// webApp creates a regular web application that logs users in through
// Universal Login, the way a platform team registers one, and returns its
// client id and secret.
func (f *fixture) webApp(domain string, creds emulatortest.Credentials) (clientID, clientSecret string) {
	f.t.Helper()
	body := strings.NewReader(fmt.Sprintf(`{"name":"Acme web app","app_type":"regular_web","callbacks":[%q]}`, appCallback))
	req, err := http.NewRequest(http.MethodPost, f.emu.BaseURL(domain)+"/api/v2/clients", body)
	f.g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+f.emu.Token(creds))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.emu.HTTPClient().Do(req)
	f.g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	f.g.Expect(resp.StatusCode).To(Equal(http.StatusCreated))
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	f.g.Expect(json.Unmarshal(data, &app)).To(Succeed())
	return app.ClientID, app.ClientSecret
}

// The fourth way to change a password, end to end, with the sample Action
// applied as a manifest and reconciled by the operator, and a browser
// walking the pages: re-authenticate (prompt=login, login_hint, scope
// update:password), the Action creates a ticket by client credentials and
// sends the browser to it, the new password is set there.
func TestPasswordChangeByReauthenticationThroughTheSampleAction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	_, err := api.CreateConnection(ctx, identity.ConnectionCreate{Name: "db", Strategy: identity.StrategyAuth0})
	f.g.Expect(err).NotTo(HaveOccurred())
	const email, oldPassword, newPassword = "ann@acme.example", "Old-passw0rd-1", "New-passw0rd-2"
	userID := f.emu.CreateUser(domain, emulatortest.UserSeed{Connection: "db", Email: email, Password: oldPassword})
	appID, _ := f.webApp(domain, creds)
	m2m := f.emu.MintClient(domain, "create:user_tickets")

	// The sample, with its Secret made as the sample says.
	root, err := testenv.RepoRoot()
	f.g.Expect(err).NotTo(HaveOccurred())
	sample, err := os.ReadFile(filepath.Join(root, "config", "samples", "action_acme-password-change.yaml"))
	f.g.Expect(err).NotTo(HaveOccurred())
	objs, err := testenv.DecodeManifests(sample)
	f.g.Expect(err).NotTo(HaveOccurred())
	code, err := os.ReadFile(filepath.Join(root, "test", "emulator", "testdata", "password-change-action.js"))
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(objs[0].Object["data"]).To(HaveKeyWithValue("password-change.js", string(code)),
		"the sample runs the code the emulator's own flow test runs")
	f.apply(fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: acme-password-change}
stringData: {CLIENT_ID: %q, CLIENT_SECRET: %q, RESULT_URL: %q}
---
%s`, m2m.ClientID, m2m.ClientSecret, passwordChanged, sample))
	act := actionObject("password-change")
	f.ready(act)
	f.g.Expect(f.row("actions", "password-change")).To(And(HaveKeyWithValue("Version", "1"), HaveKeyWithValue("Bound", "1/1"),
		HaveKeyWithValue("Build", "built")))

	tickets := func() int { return f.emu.Requests(domain).Count("POST", "/api/v2/tickets/password-change") }
	reauth := url.Values{"response_type": {"code"}, "client_id": {appID}, "redirect_uri": {appCallback}, "state": {"s-1"},
		"scope": {"openid update:password"}, "prompt": {"login"}, "login_hint": {email}, "connection": {"db"}}

	// Wrong current password: the login page again, and no ticket.
	browser := f.emu.Browser(domain)
	login := browser.Authorize(reauth)
	f.g.Expect(login.Status).To(Equal(http.StatusOK), login.Body)
	f.g.Expect(login.Field("username")).To(Equal(email), "login_hint is filled in")
	wrong := browser.Submit(login, map[string]string{"password": "Not-the-passw0rd"})
	f.g.Expect(wrong.Status).To(Equal(http.StatusBadRequest))
	f.g.Expect(wrong.Body).To(ContainSubstring("Wrong email or password."))
	f.g.Expect(tickets()).To(BeZero())

	// The right one: the Action sends the browser to a ticket.
	form := browser.Submit(wrong, map[string]string{"password": oldPassword})
	f.g.Expect(form.Status).To(Equal(http.StatusOK), form.Body)
	f.g.Expect(form.URL.Path).To(Equal("/u/reset-password"))
	f.g.Expect(form.URL.Query().Get("ticket")).NotTo(BeEmpty())
	f.g.Expect(form.HasForm("newPassword")).To(BeTrue())
	f.g.Expect(tickets()).To(Equal(1))
	ticketLink := form.URL.String()

	// The new password is set; the browser lands on the sample's result URL.
	done := browser.Submit(form, map[string]string{"newPassword": newPassword, "confirmNewPassword": newPassword})
	f.g.Expect(done.Status).To(Equal(http.StatusFound), done.Body)
	f.g.Expect(done.Location).To(HavePrefix(passwordChanged + "?"))

	// The old password is refused and the new one accepted, by the password
	// grant and by the login page (where the Action lets a plain login through).
	f.g.Expect(f.login(domain, creds, "db", email, oldPassword)).To(Equal(http.StatusForbidden))
	f.g.Expect(f.login(domain, creds, "db", email, newPassword)).To(Equal(http.StatusOK))
	plain := url.Values{"response_type": {"code"}, "client_id": {appID}, "redirect_uri": {appCallback}, "state": {"s-2"},
		"scope": {"openid"}, "login_hint": {email}, "connection": {"db"}}
	fresh := f.emu.Browser(domain)
	old := fresh.Submit(fresh.Authorize(plain), map[string]string{"password": oldPassword})
	f.g.Expect(old.Status).To(Equal(http.StatusBadRequest))
	in := fresh.Submit(old, map[string]string{"password": newPassword})
	f.g.Expect(in.Location).To(HavePrefix(appCallback + "?"))
	f.g.Expect(in.LocationQuery().Get("code")).NotTo(BeEmpty())
	f.g.Expect(tickets()).To(Equal(1), "a login without update:password makes no ticket")
	stored, _ := f.emu.User(domain, userID)
	f.g.Expect(stored).To(HaveKey("last_password_reset"))

	// The ticket works once.
	spent := browser.Open(ticketLink)
	f.g.Expect(spent.Status).To(Equal(http.StatusBadRequest))
	f.g.Expect(spent.Body).To(ContainSubstring("already been used"))
	again := browser.Submit(form, map[string]string{"newPassword": "Third-passw0rd-3", "confirmNewPassword": "Third-passw0rd-3"})
	f.g.Expect(again.Status).To(Equal(http.StatusBadRequest))
	f.g.Expect(f.login(domain, creds, "db", email, "Third-passw0rd-3")).To(Equal(http.StatusForbidden))
	f.g.Expect(f.login(domain, creds, "db", email, newPassword)).To(Equal(http.StatusOK))

	// The application's credentials never show in the Action's status or events.
	f.noSecretIn(act, m2m.ClientSecret)
}
