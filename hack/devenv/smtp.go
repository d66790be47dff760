package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/mail"
	"strings"
)

// startSMTPSink accepts mail on addr (AUTH PLAIN with any password) and
// prints one line per message, so `make run` shows the reset emails and
// migration reminders that would have been sent.
func startSMTPSink(addr string, out io.Writer) (io.Closer, error) {
	ln, err := listenLoopback(addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go smtpSession(conn, out)
		}
	}()
	return ln, nil
}

func smtpSession(conn net.Conn, out io.Writer) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	reply := func(s string) { _, _ = fmt.Fprintf(conn, "%s\r\n", s) }
	reply("220 make-run SMTP sink")
	var to []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			reply("250-make-run")
			reply("250 AUTH PLAIN")
		case strings.HasPrefix(cmd, "AUTH"):
			reply("235 accepted")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			to = nil
			reply("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO"):
			to = append(to, strings.Trim(strings.TrimSpace(line)[8:], " <>"))
			reply("250 ok")
		case cmd == "DATA":
			reply("354 end with .")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimRight(l, "\r\n") == "." {
					break
				}
				data.WriteString(l)
			}
			subject := "(no subject)"
			if msg, err := mail.ReadMessage(strings.NewReader(data.String())); err == nil {
				subject = msg.Header.Get("Subject")
			}
			_, _ = fmt.Fprintf(out, "[smtp sink] mail to %s: %s\n", strings.Join(to, ", "), subject)
			reply("250 queued")
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}
