// Package reminder sends the reminders of pending migrations to a tenant's
// administrators by email, through the SMTP relay the operator is
// configured with.
package reminder

import (
	"context"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// Mailer sends one message.
type Mailer interface {
	Send(ctx context.Context, to []string, subject, body string) error
}

// SMTPRelay is an SMTP server the operator relays reminders through. It uses
// STARTTLS when the server offers it, and PLAIN authentication when a user
// is set (net/smtp sends credentials only over TLS or to localhost).
type SMTPRelay struct {
	// Address is host:port.
	Address string
	// From is the sender address.
	From string
	// Username and Password authenticate, when Username is set.
	Username, Password string
	// Timeout bounds one delivery.
	Timeout time.Duration
}

// String describes the relay without its password.
func (r *SMTPRelay) String() string { return fmt.Sprintf("smtp://%s (from %s)", r.Address, r.From) }

// Send delivers one plain-text message.
func (r *SMTPRelay) Send(ctx context.Context, to []string, subject, body string) error {
	host, _, err := net.SplitHostPort(r.Address)
	if err != nil {
		return fmt.Errorf("smtp relay address %q: %w", r.Address, err)
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var auth smtp.Auth
	if r.Username != "" {
		auth = smtp.PlainAuth("", r.Username, r.Password, host)
	}
	msg := strings.Join([]string{
		"From: " + r.From,
		"To: " + strings.Join(to, ", "),
		"Subject: " + subject,
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"",
		body,
	}, "\r\n")

	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(r.Address, auth, r.From, to, []byte(msg)) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("sending a reminder through %s: %w", r.Address, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("sending a reminder through %s: timed out after %s", r.Address, timeout)
	}
}
