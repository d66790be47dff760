package server_test

import (
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
	"github.com/tenantops/identity-operator/test/emulator/server"
)

func TestEmailProviderNeverAnswersSecrets(t *testing.T) {
	e := emulatortest.Start(t)
	cases := []struct {
		name     string
		creds    map[string]any
		answered map[string]any
	}{
		{"smtp", map[string]any{"smtp_host": "127.0.0.1", "smtp_port": 2525, "smtp_user": "mailer", "smtp_pass": "pw"}, map[string]any{"smtp_host": "127.0.0.1", "smtp_port": 2525.0, "smtp_user": "mailer"}},
		{"ses", map[string]any{"accessKeyId": "AK", "secretAccessKey": "SK", "region": "eu-west-1"}, map[string]any{"region": "eu-west-1"}},
		{"mailgun", map[string]any{"api_key": "k", "domain": "mg.example.com", "region": "eu"}, map[string]any{"domain": "mg.example.com", "region": "eu"}},
		{"sendgrid", map[string]any{"api_key": "k"}, map[string]any{}},
		{"mandrill", map[string]any{"api_key": "k"}, map[string]any{}},
		{"ms365", map[string]any{"tenantId": "t", "clientId": "c", "clientSecret": "s"}, map[string]any{}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			a := newTenant(t, e, "provider"+string(rune('a'+i))+".emulator.local")
			r := a.do("POST", "/api/v2/emails/provider", map[string]any{"name": c.name, "credentials": c.creds, "default_from_address": "noreply@acme.example"})
			g.Expect(r.Status).To(Equal(201), string(r.Body))
			g.Expect(r.JSON()["credentials"]).To(Equal(c.answered))
			r = a.do("GET", "/api/v2/emails/provider?fields=name,enabled,credentials,default_from_address&include_fields=true", nil)
			g.Expect(r.JSON()).To(Equal(map[string]any{"name": c.name, "enabled": true, "credentials": c.answered, "default_from_address": "noreply@acme.example"}))
			stored, _ := e.EmailProvider(a.domain)
			g.Expect(stored["credentials"]).To(HaveLen(len(c.creds)), "the secrets are kept for sending")
		})
	}
}

func TestEmailProviderLifecycle(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "lifecycle.emulator.local")
	r := a.do("GET", "/api/v2/emails/provider", nil)
	g.Expect(r.Status).To(Equal(404))
	g.Expect(r.JSON()).To(Equal(map[string]any{"statusCode": 404.0, "error": "Not Found", "message": "There is not a configured email provider", "errorCode": "inexistent_email_provider"}))
	g.Expect(a.do("PATCH", "/api/v2/emails/provider", map[string]any{"enabled": false}).Status).To(Equal(404))

	sendgrid := map[string]any{"name": "sendgrid", "credentials": map[string]any{"api_key": "k1"}}
	g.Expect(a.do("POST", "/api/v2/emails/provider", sendgrid).Status).To(Equal(201))
	g.Expect(a.do("POST", "/api/v2/emails/provider", sendgrid).Status).To(Equal(409))
	g.Expect(a.do("GET", "/api/v2/emails/provider", nil).JSON()).To(Equal(map[string]any{"name": "sendgrid", "enabled": true}), "without fields: name and enabled only")

	r = a.do("PATCH", "/api/v2/emails/provider", map[string]any{"default_from_address": "a@acme.example"})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.JSON()).To(HaveKeyWithValue("default_from_address", "a@acme.example"))
	g.Expect(r.JSON()).To(HaveKeyWithValue("name", "sendgrid"), "a PATCH is partial")
	r = a.do("PATCH", "/api/v2/emails/provider", map[string]any{"name": "smtp"})
	g.Expect(r.Status).To(Equal(400), "a new provider name needs its own credentials")
	g.Expect(r.JSON()["message"]).To(ContainSubstring("Missing required property: smtp_host"))

	g.Expect(a.do("DELETE", "/api/v2/emails/provider", nil).Status).To(Equal(204))
	g.Expect(a.do("DELETE", "/api/v2/emails/provider", nil).Status).To(Equal(204), "also when none")
	g.Expect(a.do("POST", "/api/v2/emails/provider", map[string]any{"name": "postmark", "credentials": map[string]any{}}).Status).To(Equal(400))
}

func TestEmailTemplatesCreateReadPatchAndPut(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "templates.emulator.local")
	r := a.do("GET", "/api/v2/email-templates/reset_email", nil)
	g.Expect(r.Status).To(Equal(404), "never created")

	r = a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email", "urlLifetimeInSeconds": 3600, "resultUrl": "https://app.example/done", "enabled": true})
	g.Expect(r.Status).To(Equal(201), string(r.Body))
	r = a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email"})
	g.Expect(r.Status).To(Equal(409))
	g.Expect(r.JSON()).To(HaveKeyWithValue("message", "Template reset_email already exists."))

	r = a.do("PATCH", "/api/v2/email-templates/reset_email", map[string]any{"urlLifetimeInSeconds": 600})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.JSON()).To(HaveKeyWithValue("urlLifetimeInSeconds", 600.0))
	g.Expect(r.JSON()).To(HaveKeyWithValue("resultUrl", "https://app.example/done"), "PATCH is partial")
	g.Expect(r.JSON()).To(HaveKeyWithValue("syntax", "liquid"))

	r = a.do("PUT", "/api/v2/email-templates/reset_email", map[string]any{"template": "verify_email", "enabled": true})
	g.Expect(r.Status).To(Equal(400), "the body's template must match the path")
	r = a.do("PUT", "/api/v2/email-templates/reset_email", map[string]any{"template": "reset_email", "enabled": false})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.JSON()).NotTo(HaveKey("resultUrl"), "PUT replaces whole")
	g.Expect(a.do("PATCH", "/api/v2/email-templates/welcome_email", map[string]any{"enabled": true}).Status).To(Equal(404))
	g.Expect(a.do("GET", "/api/v2/email-templates/no_such_template", nil).Status).To(Equal(400))
}

func TestTheBuiltInProviderRefusesTemplateCustomizationUntilAProviderIsConfigured(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "custom.emulator.local")
	customizations := map[string]map[string]any{
		"from":    {"from": "support@acme.example"},
		"subject": {"subject": "Reset your Acme password"},
		"body":    {"body": "<p>{{ url }}</p>"},
	}
	for name, fields := range customizations {
		t.Run("built-in refuses "+name, func(t *testing.T) {
			g := NewWithT(t)
			body := map[string]any{"template": "reset_email"}
			for k, v := range fields {
				body[k] = v
			}
			r := a.do("POST", "/api/v2/email-templates", body)
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()["message"]).To(ContainSubstring("built-in email provider"))
		})
	}
	t.Run("lifetime and result URL are not customization", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email", "urlLifetimeInSeconds": 900}).Status).To(Equal(201))
		g.Expect(a.do("PATCH", "/api/v2/email-templates/reset_email", map[string]any{"subject": "x"}).Status).To(Equal(400))
	})
	t.Run("a custom provider lifts the restriction", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(a.do("POST", "/api/v2/emails/provider", map[string]any{"name": "mandrill", "credentials": map[string]any{"api_key": "k"}}).Status).To(Equal(201))
		g.Expect(a.do("PATCH", "/api/v2/email-templates/reset_email", map[string]any{"from": "support@acme.example", "subject": "Reset your Acme password", "body": "<p>Go to {{ url }}</p>"}).Status).To(Equal(200))
	})
}

func TestTheBuiltInProviderSendsFromAFixedAddress(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "builtin.emulator.local")
	a.createDatabase("db", nil)
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "ann@example.com", Password: "Old-passw0rd"})
	// A provider that was set up and then disabled no longer counts.
	a.do("POST", "/api/v2/emails/provider", map[string]any{"name": "sendgrid", "enabled": true, "default_from_address": "team@acme.example", "credentials": map[string]any{"api_key": "k"}})
	a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email", "from": "support@acme.example", "subject": "Custom"})
	a.do("PATCH", "/api/v2/emails/provider", map[string]any{"enabled": false})

	g.Expect(a.requestReset("db", "ann@example.com").Status).To(Equal(200))
	box := e.Outbox(a.domain)
	g.Expect(box).To(HaveLen(1))
	g.Expect(box[0].From).To(Equal(server.BuiltInFrom))
	g.Expect(box[0].Subject).To(Equal("Reset your password"), "the built-in provider ignores customization")
	g.Expect(box[0].Provider).To(Equal("built-in"))
	g.Expect(box[0].Delivery).To(Equal("outbox"))
}

func TestAnSMTPProviderDeliversOverSMTPWithPlainAuth(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	smtp := emulatortest.StartSMTP(t, "mail-pass")
	a := newTenant(t, e, "smtp.emulator.local")
	a.createDatabase("db", nil)
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "bob@example.com", Password: "Old-passw0rd"})
	r := a.do("POST", "/api/v2/emails/provider", map[string]any{"name": "smtp", "default_from_address": "team@acme.example",
		"credentials": map[string]any{"smtp_host": smtp.Host(), "smtp_port": smtp.Port(), "smtp_user": "mailer", "smtp_pass": "mail-pass"}})
	g.Expect(r.Status).To(Equal(201))
	g.Expect(a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email", "from": "Acme <support@acme.example>",
		"subject": "Reset your Acme password", "body": "<p>Hi {{ user.email }}, go to {{ url }}</p>"}).Status).To(Equal(201))

	g.Expect(a.requestReset("db", "bob@example.com").Status).To(Equal(200))
	msgs := smtp.Messages()
	g.Expect(msgs).To(HaveLen(1))
	g.Expect(msgs[0].User).To(Equal("mailer"))
	g.Expect(msgs[0].Password).To(Equal("mail-pass"))
	g.Expect(msgs[0].From).To(Equal("support@acme.example"))
	g.Expect(msgs[0].To).To(Equal([]string{"bob@example.com"}))
	g.Expect(msgs[0].Data).To(ContainSubstring("Subject: Reset your Acme password"))
	link := a.lastLink("bob@example.com")
	g.Expect(msgs[0].Data).To(ContainSubstring("go to " + strings.ReplaceAll(link, "&", "&amp;")))
	box := e.Outbox(a.domain)
	g.Expect(box[0].Delivery).To(Equal("smtp"))
	g.Expect(box[0].Error).To(BeEmpty())

	t.Run("a wrong SMTP password is recorded, and the API answers the same", func(t *testing.T) {
		g := NewWithT(t)
		a.do("PATCH", "/api/v2/emails/provider", map[string]any{"credentials": map[string]any{"smtp_host": smtp.Host(), "smtp_port": smtp.Port(), "smtp_user": "mailer", "smtp_pass": "wrong"}})
		g.Expect(a.requestReset("db", "bob@example.com").Status).To(Equal(200))
		box := e.Outbox(a.domain)
		g.Expect(box[len(box)-1].Error).To(ContainSubstring("535"))
		g.Expect(smtp.Messages()).To(HaveLen(1))
	})
}

func TestOtherProvidersDeliverToTheOutboxWithTheirFromAddress(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "outbox.emulator.local")
	a.createDatabase("db", nil)
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "cy@example.com", Password: "Old-passw0rd"})
	a.do("POST", "/api/v2/emails/provider", map[string]any{"name": "ses", "default_from_address": "team@acme.example",
		"credentials": map[string]any{"accessKeyId": "AK", "secretAccessKey": "SK", "region": "eu-west-1"}})
	g.Expect(a.requestReset("db", "cy@example.com").Status).To(Equal(200))
	box := e.Outbox(a.domain)
	g.Expect(box).To(HaveLen(1))
	g.Expect(box[0].From).To(Equal("team@acme.example"))
	g.Expect(box[0].Provider).To(Equal("ses"))
	g.Expect(box[0].Delivery).To(Equal("outbox"))
	u, _ := url.Parse(box[0].URL)
	g.Expect(u.Host).To(Equal(a.domain))
	g.Expect(u.Path).To(Equal("/u/reset-password"))
	g.Expect(box[0].Body).To(ContainSubstring(strings.ReplaceAll(box[0].URL, "&", "&amp;")))
}
