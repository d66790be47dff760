package emulatortest

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// SMTPMessage is one message an SMTPServer received.
type SMTPMessage struct {
	// User and Password are what the client authenticated with (PLAIN).
	User, Password string
	From           string
	To             []string
	// Data is the raw message, headers and body.
	Data string
}

// SMTPServer is a plain SMTP listener on 127.0.0.1 that accepts every
// message, offers AUTH PLAIN (required when a password is set), and keeps
// what it received, for tests of mail delivery through an `smtp` provider.
type SMTPServer struct {
	ln net.Listener
	// Password, when not empty, is the only password AUTH accepts, and mail
	// is refused without AUTH.
	password string

	mu   sync.Mutex
	msgs []SMTPMessage
}

// StartSMTP starts an SMTP server for t; password "" accepts any.
func StartSMTP(t testing.TB, password string) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emulatortest: smtp listen: %v", err)
	}
	s := &SMTPServer{ln: ln, password: password}
	go s.serve()
	t.Cleanup(func() { _ = ln.Close() })
	return s
}

// Host is the listener's host ("127.0.0.1").
func (s *SMTPServer) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the listener's port.
func (s *SMTPServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Messages returns what was received so far.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

func (s *SMTPServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *SMTPServer) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(line string) { _, _ = w.WriteString(line + "\r\n"); _ = w.Flush() }
	reply("220 test-smtp ready")
	var (
		msg    SMTPMessage
		authed bool
	)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			reply("250-test-smtp")
			reply("250 AUTH PLAIN")
		case "AUTH":
			parts := strings.Fields(line)
			if len(parts) < 2 || strings.ToUpper(parts[1]) != "PLAIN" {
				reply("504 only PLAIN")
				continue
			}
			resp := ""
			if len(parts) == 3 {
				resp = parts[2]
			} else {
				reply("334 ")
				l, _ := r.ReadString('\n')
				resp = strings.TrimSpace(l)
			}
			raw, err := base64.StdEncoding.DecodeString(resp)
			f := strings.Split(string(raw), "\x00")
			if err != nil || len(f) != 3 || (s.password != "" && f[2] != s.password) {
				reply("535 authentication failed")
				continue
			}
			msg.User, msg.Password, authed = f[1], f[2], true
			reply("235 ok")
		case "MAIL":
			if s.password != "" && !authed {
				reply("530 authentication required")
				continue
			}
			msg.From = strings.Trim(strings.TrimPrefix(strings.SplitN(line, ":", 2)[1], " "), "<>")
			reply("250 ok")
		case "RCPT":
			msg.To = append(msg.To, strings.Trim(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), "<>"))
			reply("250 ok")
		case "DATA":
			reply("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			msg.Data = b.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, msg)
			s.mu.Unlock()
			msg = SMTPMessage{User: msg.User, Password: msg.Password}
			reply("250 queued")
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}
