package identity

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// These helpers stand in for the platform in unit tests of single behaviours (edges the
// emulator does not make easy). The emulator tests are the proof that the client works
// against the real wire formats.

const (
	testClientID     = "m2m-client"
	testClientSecret = "s3cr3t-never-printed"
)

// fakePlatform is an HTTPS server answering /oauth/token itself and handing every other
// request to api. Its certificate is valid for example.com and *.example.com, so clients
// use a tenant domain under example.com with the server's address as dial address.
type fakePlatform struct {
	srv *httptest.Server

	mu             sync.Mutex
	tokensIssued   int
	tokenExpiresIn int
	tokenForms     []url.Values
	tokenReject    func(w http.ResponseWriter) bool
	api            http.HandlerFunc
}

func newFakePlatform(t *testing.T, api http.HandlerFunc) *fakePlatform {
	t.Helper()
	f := &fakePlatform{api: api, tokenExpiresIn: 86400}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	// Refused handshakes are what some tests want: keep them out of the output.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePlatform) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		f.serveToken(w, r)
		return
	}
	f.api(w, r)
}

func (f *fakePlatform) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenForms = append(f.tokenForms, r.PostForm)
	if f.tokenReject != nil && f.tokenReject(w) {
		return
	}
	f.tokensIssued++
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": fmt.Sprintf("tok-%d", f.tokensIssued),
		"token_type":   "Bearer",
		"expires_in":   f.tokenExpiresIn,
		"scope":        "read:tenant_settings",
	})
}

// currentToken is the newest token issued.
func (f *fakePlatform) currentToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("tok-%d", f.tokensIssued)
}

func (f *fakePlatform) issued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokensIssued
}

// caPEM is the server's certificate, which is its own CA.
func (f *fakePlatform) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
}

func (f *fakePlatform) config(domain string) Config {
	return Config{
		Domain:       domain,
		DialAddress:  f.srv.Listener.Addr().String(),
		CABundle:     f.caPEM(),
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
	}
}

// fastOptions keep backoff short so retry tests take milliseconds, and metrics private.
func fastOptions() Options {
	return Options{
		BackoffBase: 5 * time.Millisecond,
		BackoffCap:  20 * time.Millisecond,
		Metrics:     NewMetrics(prometheus.NewRegistry()),
	}
}

func (f *fakePlatform) client(t *testing.T, opts Options) *client {
	t.Helper()
	c, err := newClient(f.config("tenant.example.com"), opts, nil)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	t.Cleanup(c.close)
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	body := map[string]any{"statusCode": status, "error": http.StatusText(status), "message": message}
	if code != "" {
		body["errorCode"] = code
	}
	writeJSON(w, status, body)
}

// bearer is the token a request carries.
func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}
