package mail

import (
	"net/smtp"
	"strings"
	"testing"
)

func TestPlainAuthGoesInTheClearOnlyToLoopback(t *testing.T) {
	info := &smtp.ServerInfo{Name: "mail.example.com", Auth: []string{"PLAIN"}}
	if _, _, err := (&plainAuth{user: "u", pass: "p"}).Start(info); err == nil {
		t.Error("PLAIN without TLS to a remote server must be refused")
	}
	for _, a := range []*plainAuth{{user: "u", pass: "p", loopback: true}, {user: "u", pass: "p", tlsOn: true}} {
		mech, resp, err := a.Start(info)
		if err != nil || mech != "PLAIN" || string(resp) != "\x00u\x00p" {
			t.Errorf("%+v: %s %q %v", *a, mech, resp, err)
		}
	}
}

func TestFormatWritesHeadersAndCRLFBody(t *testing.T) {
	got := string(Format(Message{From: "a@x", To: "b@y", Subject: "Hi", Body: "line1\nline2"}))
	for _, want := range []string{"From: a@x\r\n", "To: b@y\r\n", "Subject: Hi\r\n", "Content-Type: text/html; charset=utf-8\r\n", "\r\n\r\nline1\r\nline2\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
}
