package reminder

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// hungRelay accepts connections, greets, answers EHLO, and then never
// answers again: a relay stuck mid-conversation.
func hungRelay(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = conn.Write([]byte("220 hung.example ESMTP\r\n"))
				r := bufio.NewReader(conn)
				line, _ := r.ReadString('\n')
				if strings.HasPrefix(strings.ToUpper(line), "EHLO") {
					_, _ = conn.Write([]byte("250 hung.example\r\n"))
				}
				_, _ = drain(r) // read and never answer
			}()
		}
	}()
	return l.Addr().String()
}

func drain(r *bufio.Reader) (int, error) {
	buf := make([]byte, 1024)
	n := 0
	for {
		m, err := r.Read(buf)
		n += m
		if err != nil {
			return n, err
		}
	}
}

func TestSendIsBoundedByTheTimeoutAndLeavesNothingBehind(t *testing.T) {
	g := NewWithT(t)
	relay := &SMTPRelay{Address: hungRelay(t), From: "op@platform.example", Timeout: 300 * time.Millisecond}
	before := runtime.NumGoroutine()
	start := time.Now()
	for range 5 {
		err := relay.Send(context.Background(), []string{"admin@acme.example"}, "s", "b")
		g.Expect(err).To(MatchError(ContainSubstring("timed out")))
	}
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	// Each Send returned only once its delivery was over: no goroutine is
	// left sending into the hung relay.
	g.Eventually(runtime.NumGoroutine, 2*time.Second, 50*time.Millisecond).Should(BeNumerically("<=", before+1))
}

func TestSendIsBoundedByTheContext(t *testing.T) {
	g := NewWithT(t)
	relay := &SMTPRelay{Address: hungRelay(t), From: "op@platform.example", Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := relay.Send(ctx, []string{"admin@acme.example"}, "s", "b")
	g.Expect(err).To(HaveOccurred())
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
}
