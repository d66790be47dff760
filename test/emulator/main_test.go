package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTheCommandLineCreatesTenantsAndWritesWhatAScriptNeeds runs the
// command as a script would, then uses only the files in the data directory:
// listen-addr, ca.crt and tenants/<domain>.json.
func TestTheCommandLineCreatesTenantsAndWritesWhatAScriptNeeds(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	stop := make(chan os.Signal)
	done := make(chan error, 1)
	var out, logs syncBuffer
	go func() {
		done <- run([]string{"-listen", "127.0.0.1:0", "-data", dir, "-tenant", "acme.emulator.local",
			"-legacy-tenant", "old.emulator.local", "-rate-limit-burst", "7", "-rate-limit-per-second", "3"}, &out, &logs, stop)
	}()
	g.Eventually(out.String, 10*time.Second, 20*time.Millisecond).Should(ContainSubstring("identity emulator listening on https://127.0.0.1:"))

	addr, err := os.ReadFile(filepath.Join(dir, "listen-addr"))
	g.Expect(err).NotTo(HaveOccurred())
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	g.Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(caPEM)).To(BeTrue())
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, strings.TrimSpace(string(addr)))
		},
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	t.Cleanup(func() { close(stop); g.Expect(<-done).To(Succeed()) })

	for domain, oldFlow := range map[string]bool{"acme.emulator.local": false, "old.emulator.local": true} {
		raw, err := os.ReadFile(filepath.Join(dir, "tenants", domain+".json"))
		g.Expect(err).NotTo(HaveOccurred())
		var creds struct{ ClientID, ClientSecret, Audience, TokenURL string }
		g.Expect(json.Unmarshal(raw, &struct {
			ClientID     *string `json:"client_id"`
			ClientSecret *string `json:"client_secret"`
			Audience     *string `json:"audience"`
			TokenURL     *string `json:"token_url"`
		}{&creds.ClientID, &creds.ClientSecret, &creds.Audience, &creds.TokenURL})).To(Succeed())
		g.Expect(creds.TokenURL).To(Equal("https://" + domain + "/oauth/token"))

		resp, err := client.PostForm(creds.TokenURL, url.Values{"grant_type": {"client_credentials"},
			"client_id": {creds.ClientID}, "client_secret": {creds.ClientSecret}, "audience": {creds.Audience}})
		g.Expect(err).NotTo(HaveOccurred())
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		g.Expect(json.NewDecoder(resp.Body).Decode(&tok)).To(Succeed())
		resp.Body.Close()

		req, _ := http.NewRequest("GET", "https://"+domain+"/api/v2/tenants/settings", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = client.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		var settings struct{ Flags map[string]bool }
		g.Expect(json.NewDecoder(resp.Body).Decode(&settings)).To(Succeed())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(200))
		g.Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("7"))
		g.Expect(settings.Flags["change_pwd_flow_v1"]).To(Equal(oldFlow))
	}
	g.Expect(logs.String()).NotTo(ContainSubstring("client_secret"))
}

func TestTheCommandLineRejectsBadFlags(t *testing.T) {
	g := NewWithT(t)
	var out, logs syncBuffer
	err := run([]string{"-data", t.TempDir(), "-error-rate", "2"}, &out, &logs, make(chan os.Signal))
	g.Expect(err).To(MatchError(ContainSubstring("-error-rate")))
	err = run([]string{"-data", t.TempDir(), "-no-such-flag"}, &out, &logs, make(chan os.Signal))
	g.Expect(err).To(HaveOccurred())
	err = run([]string{"-data", t.TempDir(), "-auth-endpoint-limits", "gold"}, &out, &logs, make(chan os.Signal))
	g.Expect(err).To(MatchError(ContainSubstring("-auth-endpoint-limits must be off, free or paid")))
}
