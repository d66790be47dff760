// Package emulatortest starts the identity API emulator inside a Go test,
// over real HTTPS on 127.0.0.1 with a random port, and gives the test ways to
// look at and change the platform's state behind the API's back.
//
// Tenants are addressed by domain: a client connects to Addr() and keeps the
// domain for the Host header, SNI and certificate checks (like curl's
// --resolve). HTTPClient() does exactly that for any domain.
//
//	e := emulatortest.Start(t)
//	creds := e.CreateTenant("acme.emulator.local")
//	// point the code under test at https://acme.emulator.local/ dialing
//	// e.Addr() and trusting e.CACertPEM(), with creds.ClientID/ClientSecret.
package emulatortest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/jwt"
	"github.com/tenantops/identity-operator/test/emulator/server"
)

// Credentials are a client's credentials for one tenant.
type Credentials = server.Credentials

// Mail is one message a tenant sent.
type Mail = server.Mail

// UserSeed describes a user to put straight into a tenant's store.
type UserSeed = server.UserSeed

// Option configures Start.
type Option func(*server.Config)

// WithDataDir keeps the emulator's files in dir instead of a t.TempDir().
func WithDataDir(dir string) Option { return func(c *server.Config) { c.DataDir = dir } }

// WithRateLimit turns per-tenant rate limiting on (it is off by default in
// tests): burst requests at once, refilled at perSecond.
func WithRateLimit(burst int, perSecond float64) Option {
	return func(c *server.Config) { c.RateLimit = server.RateLimit{Burst: burst, PerSecond: perSecond} }
}

// WithAuthEndpointLimits turns the Authentication API's per-endpoint limits
// on (they are off by default in tests), e.g. server.FreePlanAuthLimits.
func WithAuthEndpointLimits(l server.AuthEndpointLimits) Option {
	return func(c *server.Config) { c.AuthEndpointLimits = l }
}

// WithFaults injects errorRate (0..1) 5xx answers and latency into every
// tenant request.
func WithFaults(errorRate float64, latency time.Duration) Option {
	return func(c *server.Config) { c.Faults = server.Faults{ErrorRate: errorRate, Latency: latency} }
}

// WithScriptTimeout sets the time limit of one custom database script run.
func WithScriptTimeout(d time.Duration) Option { return func(c *server.Config) { c.ScriptTimeout = d } }

// Emulator is a running emulator owned by one test.
type Emulator struct {
	t   testing.TB
	cfg server.Config
	srv *server.Server
}

// Start starts an emulator for t and stops it when t ends. Rate limiting is
// off and no fault is injected unless options say otherwise.
func Start(t testing.TB, opts ...Option) *Emulator {
	t.Helper()
	cfg := server.Config{Listen: "127.0.0.1:0", ScriptTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if err := seedSigningKey(cfg.DataDir); err != nil {
		t.Fatalf("emulatortest: %v", err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("emulatortest: start: %v", err)
	}
	e := &Emulator{t: t, cfg: cfg, srv: srv}
	t.Cleanup(func() { _ = e.srv.Close() })
	return e
}

var (
	keyOnce sync.Once
	keyPEM  []byte
	keyErr  error
)

// seedSigningKey puts the process's shared signing key into a new data
// directory, so that each test does not pay for an RSA key generation.
func seedSigningKey(dir string) error {
	path := filepath.Join(dir, jwt.KeyFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	keyOnce.Do(func() { keyPEM, keyErr = jwt.GenerateKeyPEM() })
	if keyErr != nil {
		return keyErr
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, keyPEM, 0o600)
}

// Server is the running server, for what this package does not wrap.
func (e *Emulator) Server() *server.Server { return e.srv }

// Addr is "127.0.0.1:PORT", where every tenant is served.
func (e *Emulator) Addr() string { return e.srv.Addr() }

// DataDir is the emulator's data directory.
func (e *Emulator) DataDir() string { return e.cfg.DataDir }

// CACertPEM is the PEM certificate of the CA that signs every tenant's
// certificate.
func (e *Emulator) CACertPEM() []byte { return e.srv.CACertPEM() }

// CertPool is a pool holding only the emulator's CA.
func (e *Emulator) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(e.CACertPEM())
	return p
}

// BaseURL is a tenant's base URL, "https://DOMAIN".
func (e *Emulator) BaseURL(domain string) string { return "https://" + domain }

// HTTPClient is a client that sends every request to Addr() whatever the
// URL's host, verifies the tenant's certificate against the emulator's CA,
// and does not follow redirects (tests look at them).
func (e *Emulator) HTTPClient() *http.Client {
	addr := e.Addr()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: e.CertPool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TenantOption shapes a tenant created by CreateTenant.
type TenantOption func(settings map[string]any)

// Legacy makes the tenant one that has not opted into the password-flow and
// profile migrations: change_pwd_flow_v1 and enable_legacy_profile are true.
func Legacy() TenantOption {
	return func(s map[string]any) {
		f, _ := s["flags"].(map[string]any)
		if f == nil {
			f = map[string]any{}
		}
		f["change_pwd_flow_v1"], f["enable_legacy_profile"] = true, true
		s["flags"] = f
	}
}

// WithSettings sets initial settings (merged like a PATCH).
func WithSettings(patch map[string]any) TenantOption {
	return func(s map[string]any) {
		for k, v := range patch {
			if k == "flags" {
				f, _ := s["flags"].(map[string]any)
				if f == nil {
					f = map[string]any{}
				}
				for fk, fv := range v.(map[string]any) {
					f[fk] = fv
				}
				s["flags"] = f
				continue
			}
			s[k] = v
		}
	}
}

// CreateTenant creates a tenant and returns the credentials of its client
// with every Management API scope.
func (e *Emulator) CreateTenant(domain string, opts ...TenantOption) Credentials {
	e.t.Helper()
	settings := map[string]any{}
	for _, o := range opts {
		o(settings)
	}
	c, err := e.srv.CreateTenant(domain, settings)
	if err != nil {
		e.t.Fatalf("emulatortest: create tenant %s: %v", domain, err)
	}
	return c
}

// MintClient creates a client on a tenant with just the given scopes (none:
// the client has no grant for the Management API).
func (e *Emulator) MintClient(domain string, scopes ...string) Credentials {
	e.t.Helper()
	c, err := e.srv.MintClient(domain, "", scopes, nil)
	if err != nil {
		e.t.Fatalf("emulatortest: mint client: %v", err)
	}
	return c
}

// MintClientWithGrants is MintClient with explicit grant types.
func (e *Emulator) MintClientWithGrants(domain string, grants []string, scopes ...string) Credentials {
	e.t.Helper()
	c, err := e.srv.MintClient(domain, "", scopes, grants)
	if err != nil {
		e.t.Fatalf("emulatortest: mint client: %v", err)
	}
	return c
}

// ActionSeed describes an action SeedAction puts into a tenant.
type ActionSeed = server.ActionSeed

// SeedAction creates an action on a tenant behind the API's back
// (optionally deployed, and bound to its trigger) and returns its id.
func (e *Emulator) SeedAction(domain string, seed ActionSeed) string {
	e.t.Helper()
	id, err := e.srv.SeedAction(domain, seed)
	if err != nil {
		e.t.Fatalf("emulatortest: seed action: %v", err)
	}
	return id
}

// Token gets a Management API access token for creds over HTTPS.
func (e *Emulator) Token(creds Credentials) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {creds.ClientID},
		"client_secret": {creds.ClientSecret}, "audience": {creds.Audience}}
	resp, err := e.HTTPClient().Post(e.BaseURL(creds.Domain)+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatalf("emulatortest: token: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("emulatortest: token: %d %s", resp.StatusCode, out.Error)
	}
	return out.AccessToken
}

// Settings returns a tenant's settings.
func (e *Emulator) Settings(domain string) map[string]any {
	e.t.Helper()
	s, err := e.srv.Settings(domain)
	if err != nil {
		e.t.Fatalf("emulatortest: settings: %v", err)
	}
	return s
}

// Flags returns a tenant's flags.
func (e *Emulator) Flags(domain string) map[string]any {
	e.t.Helper()
	f, _ := e.Settings(domain)["flags"].(map[string]any)
	return f
}

// PatchSettings edits a tenant's settings behind the API's back (merge
// rules apply, refused flags do not, nothing is counted) and returns them.
func (e *Emulator) PatchSettings(domain string, patch map[string]any) map[string]any {
	e.t.Helper()
	s, err := e.srv.PatchSettings(domain, patch)
	if err != nil {
		e.t.Fatalf("emulatortest: patch settings: %v", err)
	}
	return s
}

// RefuseFlags makes the tenant's settings PATCH answer 400 "You are not
// allowed to set flag ..." for these flags (replacing the refused list,
// which starts as disable_impersonation).
func (e *Emulator) RefuseFlags(domain string, flags ...string) {
	e.t.Helper()
	if err := e.srv.SetRefusedFlags(domain, flags); err != nil {
		e.t.Fatalf("emulatortest: refuse flags: %v", err)
	}
}

func found[T any](e *Emulator, v T, err error) (T, bool) {
	e.t.Helper()
	if err != nil && !strings.Contains(err.Error(), "not found") {
		e.t.Fatalf("emulatortest: %v", err)
	}
	return v, err == nil
}

// Connection returns a connection by name with its configuration in plain
// text, and whether it exists.
func (e *Emulator) Connection(domain, name string) (map[string]any, bool) {
	e.t.Helper()
	v, err := e.srv.Connection(domain, name)
	return found(e, v, err)
}

// EmailProvider returns the tenant's email provider with its credentials,
// and whether one is configured.
func (e *Emulator) EmailProvider(domain string) (map[string]any, bool) {
	e.t.Helper()
	v, err := e.srv.EmailProvider(domain)
	return found(e, v, err)
}

// EmailTemplate returns a stored email template and whether it exists.
func (e *Emulator) EmailTemplate(domain, name string) (map[string]any, bool) {
	e.t.Helper()
	v, err := e.srv.EmailTemplate(domain, name)
	return found(e, v, err)
}

// User returns a stored user, identity-provider tokens included.
func (e *Emulator) User(domain, userID string) (map[string]any, bool) {
	e.t.Helper()
	v, err := e.srv.User(domain, userID)
	return found(e, v, err)
}

// CreateUser puts a user into a connection's store and returns its user_id.
func (e *Emulator) CreateUser(domain string, seed UserSeed) string {
	e.t.Helper()
	id, err := e.srv.CreateUser(domain, seed)
	if err != nil {
		e.t.Fatalf("emulatortest: create user: %v", err)
	}
	return id
}

// CountUsers counts a connection's users in the platform's store.
func (e *Emulator) CountUsers(domain, connection string) int {
	e.t.Helper()
	n, err := e.srv.CountUsers(domain, connection)
	if err != nil {
		e.t.Fatalf("emulatortest: count users: %v", err)
	}
	return n
}

// Outbox lists the mail a tenant sent, oldest first (SMTP deliveries too,
// with Delivery "smtp").
func (e *Emulator) Outbox(domain string) []Mail {
	e.t.Helper()
	m, err := e.srv.Outbox(domain)
	if err != nil {
		e.t.Fatalf("emulatortest: outbox: %v", err)
	}
	return m
}

// SetRateLimit sets one tenant's limit, or every tenant's default when
// domain is "". burst or perSecond 0 turns limiting off.
func (e *Emulator) SetRateLimit(domain string, burst int, perSecond float64) {
	e.t.Helper()
	if err := e.srv.SetRateLimit(domain, &server.RateLimit{Burst: burst, PerSecond: perSecond}); err != nil {
		e.t.Fatalf("emulatortest: rate limit: %v", err)
	}
}

// SetAuthEndpointLimits replaces the Authentication API's per-endpoint
// limits of every tenant (the zero value turns them off).
func (e *Emulator) SetAuthEndpointLimits(l server.AuthEndpointLimits) { e.srv.SetAuthEndpointLimits(l) }

// SetFaults sets the share of injected 5xx answers and the added latency.
func (e *Emulator) SetFaults(errorRate float64, latency time.Duration) {
	f := e.srv.Faults()
	f.ErrorRate, f.Latency = errorRate, latency
	e.srv.SetFaults(f)
}

// SetLostReplies sets the share of requests that are carried out and then
// answered with a 503 anyway (a lost reply), for idempotency tests.
func (e *Emulator) SetLostReplies(rate float64) {
	f := e.srv.Faults()
	f.LostReplyRate = rate
	e.srv.SetFaults(f)
}

// SetTenantDown takes one tenant down (every request answered 503, without
// rate-limit headers) or brings it back; the other tenants are served.
func (e *Emulator) SetTenantDown(domain string, down bool) {
	f := e.srv.Faults()
	rest := slices.DeleteFunc(slices.Clone(f.Down), func(d string) bool { return d == domain })
	if down {
		rest = append(rest, domain)
	}
	f.Down = rest
	e.srv.SetFaults(f)
}

// AdvanceClock moves the platform's clock forward: tokens, reset links and
// tickets expire by it.
func (e *Emulator) AdvanceClock(d time.Duration) { e.srv.AdvanceClock(d) }

// Requests counts the requests a tenant received, keyed by
// "METHOD /route/pattern" such as "GET /api/v2/tenants/settings".
type Requests = server.RequestCounts

// Requests returns a tenant's request counters.
func (e *Emulator) Requests(domain string) Requests { return e.srv.Requests(domain) }

// Write is one Management API write with its body.
type Write = server.Write

// Writes returns the Management API writes a tenant received (the last
// 256), bodies included: compare them, never print them (they may hold
// secrets).
func (e *Emulator) Writes(domain string) []Write { return e.srv.Writes(domain) }

// ResetRequests zeroes a tenant's request counters and forgets its writes.
func (e *Emulator) ResetRequests(domain string) { e.srv.ResetRequests(domain) }

// Restart stops the emulator and starts it again on the same address and
// data directory, proving what survives. Counters and rate-limit buckets
// start afresh; the clock keeps its advance.
func (e *Emulator) Restart() {
	e.t.Helper()
	addr, offset := e.Addr(), e.srv.ClockOffset()
	if err := e.srv.Close(); err != nil {
		e.t.Fatalf("emulatortest: stop: %v", err)
	}
	cfg := e.cfg
	cfg.Listen = addr
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to be free again
		if e.srv, err = server.New(cfg); err == nil || !errors.Is(err, syscallAddrInUse) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("emulatortest: restart: %v", err)
	}
	e.srv.AdvanceClock(offset)
}
