// Package mail delivers the platform's messages over SMTP.
package mail

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// Message is one email.
type Message struct {
	From, To, Subject, Body string
}

// SMTPServer is where and as whom to deliver: the credentials of an `smtp`
// email provider.
type SMTPServer struct {
	Host     string
	Port     int
	User     string
	Password string
}

// Send delivers m through s. It upgrades with STARTTLS when the server
// offers it and authenticates with PLAIN when the server offers AUTH. PLAIN
// goes over an unencrypted connection only to a loopback server, where test
// SMTP listeners live; anywhere else it needs TLS.
func Send(s SMTPServer, m Message) error {
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("identity-emulator.local"); err != nil {
		return err
	}
	tlsOn := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: s.Host}); err != nil {
			return err
		}
		tlsOn = true
	}
	if ok, _ := c.Extension("AUTH"); ok && s.User != "" {
		if err := c.Auth(&plainAuth{user: s.User, pass: s.Password, tlsOn: tlsOn, loopback: isLoopback(conn.RemoteAddr())}); err != nil {
			return err
		}
	}
	if err := c.Mail(address(m.From)); err != nil {
		return err
	}
	if err := c.Rcpt(address(m.To)); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(Format(m)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Format renders m as an RFC 5322 message.
func Format(m Message) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n",
		m.From, m.To, m.Subject, time.Now().UTC().Format(time.RFC1123Z))
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// address takes "Name <a@b>" or "a@b" and returns the bare address.
func address(s string) string {
	if i := strings.LastIndex(s, "<"); i >= 0 {
		return strings.TrimSuffix(s[i+1:], ">")
	}
	return strings.TrimSpace(s)
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// plainAuth is smtp.PlainAuth without its host-name check: the standard one
// accepts only the literal names localhost/127.0.0.1/::1, while we decide on
// the address actually connected to.
type plainAuth struct {
	user, pass      string
	tlsOn, loopback bool
}

func (a *plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !a.tlsOn && !a.loopback {
		return "", nil, errors.New("mail: refusing PLAIN auth over an unencrypted connection to a remote server")
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("mail: unexpected server challenge")
	}
	return nil, nil
}
