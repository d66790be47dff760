// Package reminder sends the reminders of pending migrations to a tenant's
// administrators by email, through the SMTP relay the operator is
// configured with.
package reminder

import (
	"context"
	"crypto/tls"
	"errors"
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
	// Timeout bounds one whole delivery, from the dial to the end of the
	// data (30 s when zero); an earlier deadline of the context wins.
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

	// The whole delivery (dial, TLS, every command, the data) is bounded by
	// one deadline on the connection, and the connection is closed when ctx
	// ends first: a relay that hangs mid-conversation costs nothing after
	// the deadline, and no goroutine outlives the call.
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := r.deliver(ctx, deadline, host, auth, to, []byte(msg)); err != nil {
		var netErr net.Error
		if ctx.Err() != nil || (errors.As(err, &netErr) && netErr.Timeout()) {
			return fmt.Errorf("sending a reminder through %s: timed out (deadline %s): %w", r.Address, timeout, err)
		}
		return fmt.Errorf("sending a reminder through %s: %w", r.Address, err)
	}
	return nil
}

// deliver is smtp.SendMail over a connection that honours ctx and deadline.
func (r *SMTPRelay) deliver(ctx context.Context, deadline time.Time, host string, auth smtp.Auth, to []string, msg []byte) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", r.Address)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if auth != nil {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("the relay does not support authentication")
		}
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(r.From); err != nil {
		return err
	}
	for _, addr := range to {
		if err := c.Rcpt(addr); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
