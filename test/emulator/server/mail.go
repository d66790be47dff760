package server

import (
	"html"
	"regexp"

	"github.com/tenantops/identity-operator/test/emulator/internal/mail"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// BuiltInFrom is the fixed sender of the built-in email provider (the
// "Email From address" migration is past its mandatory date).
const BuiltInFrom = "no-reply@auth0user.net"

// defaultTemplates are the platform's default subject and body per template.
var defaultTemplates = map[string]struct{ subject, body string }{
	"reset_email": {"Reset your password",
		`<html><body><p>Hello {{ user.email }},</p><p>We received a request to reset the password of your {{ friendly_name }} account. Follow this link to choose a new one:</p><p><a href="{{ url }}">{{ url }}</a></p><p>If you did not ask for this, ignore this message.</p></body></html>`},
	"change_password": {"Confirm your password change",
		`<html><body><p>Hello {{ user.email }},</p><p>Someone asked to change the password of your {{ friendly_name }} account. Follow this link to confirm the change:</p><p><a href="{{ url }}">{{ url }}</a></p></body></html>`},
}

var liquidVar = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}`)

// render substitutes {{ name }} variables (the subset of liquid the
// emulator supports); unknown variables render empty.
func render(tmpl string, vars map[string]string, escape bool) string {
	return liquidVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		v := vars[liquidVar.FindStringSubmatch(m)[1]]
		if escape {
			return html.EscapeString(v)
		}
		return v
	})
}

// sendMail renders template name for to and delivers it through the
// tenant's provider: SMTP for real for `smtp`, the outbox for the others and
// for the built-in provider. Every message is also recorded in the outbox
// with how it was delivered. Delivery errors are recorded, never answered:
// the platform answers the same whatever happens to the mail.
func (s *Server) sendMail(domain, name, to string, vars map[string]string) {
	q := s.store.Q()
	provider, custom, err := customProvider(q, domain)
	if err != nil {
		s.log.Error("mail: provider lookup failed", "tenant", domain, "err", err)
		return
	}
	def := defaultTemplates[name]
	subject, body, from := def.subject, def.body, BuiltInFrom
	t, _ := q.EmailTemplate(domain, name)
	if custom {
		if d := strOf(provider, "default_from_address"); d != "" {
			from = d
		}
		if en, ok := t["enabled"].(bool); !ok || en {
			if v := strOf(t, "from"); v != "" {
				from = v
			}
			if v := strOf(t, "subject"); v != "" {
				subject = v
			}
			if v := strOf(t, "body"); v != "" {
				body = v
			}
		}
	}
	m := store.Mail{
		Domain: domain, Template: name, To: to,
		From: render(from, vars, false), Subject: render(subject, vars, false), Body: render(body, vars, true),
		URL: vars["url"], Provider: "built-in", Delivery: "outbox", CreatedAt: s.now(),
	}
	if custom {
		m.Provider = strOf(provider, "name")
	}
	if custom && m.Provider == "smtp" {
		m.Delivery = "smtp"
		creds, _ := provider["credentials"].(map[string]any)
		err := mail.Send(mail.SMTPServer{
			Host: strOf(creds, "smtp_host"), Port: toInt(creds["smtp_port"]),
			User: strOf(creds, "smtp_user"), Password: strOf(creds, "smtp_pass"),
		}, mail.Message{From: m.From, To: m.To, Subject: m.Subject, Body: m.Body})
		if err != nil {
			m.Error = err.Error()
			s.log.Warn("mail: SMTP delivery failed", "tenant", domain, "template", name, "err", err)
		}
	}
	if _, err := q.AddMail(m); err != nil {
		s.log.Error("mail: outbox write failed", "tenant", domain, "err", err)
	}
}
