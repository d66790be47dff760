package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// passwordTenant is a tenant with a database "db" holding ann@example.com.
func passwordTenant(t *testing.T, e *emulatortest.Emulator, domain string, opts ...emulatortest.TenantOption) (*api, string) {
	t.Helper()
	a := newTenant(t, e, domain, opts...)
	a.createDatabase("db", nil)
	id := e.CreateUser(domain, emulatortest.UserSeed{Connection: "db", Email: "ann@example.com", Password: "Old-passw0rd"})
	return a, id
}

func TestTheNewFlowRefusesAPasswordInTheChangePasswordRequest(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _ := passwordTenant(t, e, "newflow.emulator.local")
	r := a.form("/dbconnections/change_password", url.Values{"client_id": {a.creds.ClientID}, "email": {"ann@example.com"}, "connection": {"db"}, "password": {"Attacker-pw1"}})
	g.Expect(r.Status).To(Equal(400))
	g.Expect(r.JSON()).To(HaveKeyWithValue("description", "Password is not allowed"))
	g.Expect(e.Outbox(a.domain)).To(BeEmpty())

	r = a.requestReset("db", "ann@example.com")
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.Header.Get("Content-Type")).To(HavePrefix("text/html"))
	g.Expect(string(r.Body)).To(Equal("We've just sent you an email to reset your password."))
	g.Expect(e.Outbox(a.domain)).To(HaveLen(1))
	g.Expect(e.Outbox(a.domain)[0].Template).To(Equal("reset_email"))
}

func TestTheOldFlowAppliesTheRequestedPasswordWhenTheEmailedLinkIsFollowed(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _ := passwordTenant(t, e, "oldflow.emulator.local", emulatortest.Legacy())
	r := a.form("/dbconnections/change_password", url.Values{"client_id": {a.creds.ClientID}, "email": {"ann@example.com"}, "connection": {"db"}, "password": {"Attacker-pw1"}})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(string(r.Body)).To(Equal("We've just sent you an email to reset your password."))
	g.Expect(a.login("db", "ann@example.com", "Old-passw0rd").Status).To(Equal(200), "nothing changes before the click")

	link := a.lastLink("ann@example.com")
	g.Expect(e.Outbox(a.domain)[0].Template).To(Equal("change_password"))
	// One click, no form: that is the vulnerability the migration removes.
	g.Expect(a.get(link).Status).To(Equal(200))
	g.Expect(a.login("db", "ann@example.com", "Attacker-pw1").Status).To(Equal(200))
	g.Expect(a.login("db", "ann@example.com", "Old-passw0rd").Status).To(Equal(403))
	g.Expect(a.get(link).Status).To(Equal(400), "the link works once")

	t.Run("once the tenant opts in, the same request is refused", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"flags": map[string]any{"change_pwd_flow_v1": false}}).Status).To(Equal(200))
		r := a.form("/dbconnections/change_password", url.Values{"client_id": {a.creds.ClientID}, "email": {"ann@example.com"}, "connection": {"db"}, "password": {"Attacker-pw2"}})
		g.Expect(r.Status).To(Equal(400))
	})
}

func TestAfterTwoResetRequestsOnlyTheNewestLinkWorksOnce(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _ := passwordTenant(t, e, "newest.emulator.local")
	a.requestReset("db", "ann@example.com")
	first := a.lastLink("ann@example.com")
	a.requestReset("db", "ann@example.com")
	second := a.lastLink("ann@example.com")
	g.Expect(second).NotTo(Equal(first))

	g.Expect(a.get(first).Status).To(Equal(400), "the older link no longer shows the form")
	g.Expect(a.submitReset(first, "First-passw0rd").Status).To(Equal(400))
	page := a.get(second)
	g.Expect(page.Status).To(Equal(200))
	g.Expect(string(page.Body)).To(ContainSubstring(`<form method="post"`))
	g.Expect(string(page.Body)).To(ContainSubstring(`name="newPassword"`))
	g.Expect(string(page.Body)).To(ContainSubstring(`name="confirmNewPassword"`))

	g.Expect(a.submitReset(second, "Second-passw0rd").Status).To(Equal(200))
	g.Expect(a.login("db", "ann@example.com", "Second-passw0rd").Status).To(Equal(200))
	g.Expect(a.submitReset(second, "Third-passw0rd").Status).To(Equal(400), "a link works once")
	g.Expect(a.login("db", "ann@example.com", "Third-passw0rd").Status).To(Equal(403))
	g.Expect(a.login("db", "ann@example.com", "First-passw0rd").Status).To(Equal(403))
}

func TestTheResetFormChecksBothPasswordsAndThePolicy(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _ := passwordTenant(t, e, "form.emulator.local")
	a.requestReset("db", "ann@example.com")
	link := a.lastLink("ann@example.com")
	ticket := strings.TrimSuffix(strings.SplitN(link, "ticket=", 2)[1], "#")
	r := a.form("/u/reset-password", url.Values{"ticket": {ticket}, "newPassword": {"New-passw0rd"}, "confirmNewPassword": {"Other-passw0rd"}})
	g.Expect(r.Status).To(Equal(400))
	g.Expect(string(r.Body)).To(ContainSubstring("The passwords do not match."))
	g.Expect(a.submitReset(link, "short").Status).To(Equal(400), "the connection's password policy applies")
	g.Expect(a.submitReset(link, "New-passw0rd").Status).To(Equal(200), "failed attempts do not spend the link")
}

func TestResetLinksLiveAsLongAsTheResetEmailTemplateSays(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _ := passwordTenant(t, e, "lifetime.emulator.local")
	g.Expect(a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email", "urlLifetimeInSeconds": 3600, "resultUrl": "https://app.example/after-reset"}).Status).To(Equal(201))

	a.requestReset("db", "ann@example.com")
	link := a.lastLink("ann@example.com")
	e.AdvanceClock(3599 * time.Second)
	g.Expect(a.get(link).Status).To(Equal(200), "still valid a second before its lifetime ends")
	e.AdvanceClock(time.Second)
	g.Expect(a.get(link).Status).To(Equal(400), "expired at its lifetime")
	g.Expect(a.submitReset(link, "New-passw0rd").Status).To(Equal(400))

	a.requestReset("db", "ann@example.com")
	r := a.submitReset(a.lastLink("ann@example.com"), "New-passw0rd")
	g.Expect(r.Status).To(Equal(302), "the template's resultUrl is where the person goes next")
	g.Expect(r.Header.Get("Location")).To(HavePrefix("https://app.example/after-reset?"))
	g.Expect(r.Header.Get("Location")).To(ContainSubstring("success=true"))
}

func TestChangePasswordAnswersTheSameForAnUnknownEmail(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, _ := passwordTenant(t, e, "probe.emulator.local")
	known := a.requestReset("db", "ann@example.com")
	unknown := a.requestReset("db", "nobody@example.com")
	g.Expect(unknown.Status).To(Equal(known.Status))
	g.Expect(unknown.Body).To(Equal(known.Body))
	g.Expect(unknown.Header.Get("Content-Type")).To(Equal(known.Header.Get("Content-Type")))
	g.Expect(e.Outbox(a.domain)).To(HaveLen(1), "only the known email gets mail")
}

func TestPasswordChangeTicketsHonourTTLResultURLAndTheNewestRule(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, id := passwordTenant(t, e, "tickets.emulator.local")
	r := a.do("POST", "/api/v2/tickets/password-change", map[string]any{"user_id": id, "ttl_sec": 60, "result_url": "https://app.example/x", "includeEmailInRedirect": true, "mark_email_as_verified": true})
	g.Expect(r.Status).To(Equal(201), string(r.Body))
	ticket := r.JSON()["ticket"].(string)
	g.Expect(ticket).To(HavePrefix("https://tickets.emulator.local/u/reset-password?ticket="))
	g.Expect(ticket).To(HaveSuffix("#"))

	e.AdvanceClock(61 * time.Second)
	g.Expect(a.get(ticket).Status).To(Equal(400), "ttl_sec is the ticket's lifetime")

	conn := a.do("GET", "/api/v2/connections?name=db", nil).Array()[0].(map[string]any)
	r = a.do("POST", "/api/v2/tickets/password-change", map[string]any{"connection_id": conn["id"], "email": "ann@example.com", "result_url": "https://app.example/x", "includeEmailInRedirect": true, "mark_email_as_verified": true})
	g.Expect(r.Status).To(Equal(201))
	older := r.JSON()["ticket"].(string)
	newer := a.do("POST", "/api/v2/tickets/password-change", map[string]any{"user_id": id, "result_url": "https://app.example/x", "includeEmailInRedirect": true, "mark_email_as_verified": true}).JSON()["ticket"].(string)
	g.Expect(a.submitReset(older, "Ticket-passw0rd").Status).To(Equal(400), "only the newest ticket works")
	r = a.submitReset(newer, "Ticket-passw0rd")
	g.Expect(r.Status).To(Equal(302))
	loc, _ := url.Parse(r.Header.Get("Location"))
	g.Expect(loc.Query().Get("email")).To(Equal("ann@example.com"))
	u, _ := e.User(a.domain, id)
	g.Expect(u).To(HaveKeyWithValue("email_verified", true))
	g.Expect(u).To(HaveKey("last_password_reset"))

	t.Run("an unknown user is 404", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("POST", "/api/v2/tickets/password-change", map[string]any{"user_id": "auth0|000000000000000000000000"})
		g.Expect(r.Status).To(Equal(404))
		g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "inexistent_user"))
	})
}

func TestAnApplicationChangesAPasswordWithThePasswordGrantAndAUserPatch(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a, id := passwordTenant(t, e, "flow3.emulator.local")
	g.Expect(a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"default_directory": "db"}).Status).To(Equal(200))

	verify := func(pw string) int {
		return a.form("/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {a.creds.ClientID}, "client_secret": {a.creds.ClientSecret},
			"username": {"ann@example.com"}, "password": {pw}}).Status
	}
	g.Expect(verify("Old-passw0rd")).To(Equal(200), "the password grant uses the default directory")
	r := a.do("PATCH", "/api/v2/users/"+url.PathEscape(id), map[string]any{"password": "Fresh-passw0rd", "connection": "db"})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKey("last_password_reset"))
	g.Expect(verify("Fresh-passw0rd")).To(Equal(200))
	r = a.form("/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {a.creds.ClientID}, "client_secret": {a.creds.ClientSecret},
		"username": {"ann@example.com"}, "password": {"Old-passw0rd"}})
	g.Expect(r.Status).To(Equal(403))
	g.Expect(r.JSON()).To(Equal(map[string]any{"error": "invalid_grant", "error_description": "Wrong email or password."}))
}
