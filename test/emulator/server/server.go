// Package server is the identity API emulator: many tenants of an
// Auth0-compatible platform on one HTTPS port, addressed by domain (Host
// header and SNI), with state in SQLite, RS256 tokens, custom database
// scripts, mail, rate limits, fault injection and an admin API.
//
// main.go runs it as a binary; emulatortest runs it inside Go tests.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/jwt"
	"github.com/tenantops/identity-operator/test/emulator/internal/pki"
	"github.com/tenantops/identity-operator/test/emulator/internal/ratelimit"
	"github.com/tenantops/identity-operator/test/emulator/internal/scripts"
	"github.com/tenantops/identity-operator/test/emulator/internal/secretbox"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// Files the emulator keeps in its data directory besides the CA, the
// signing key and the database.
const (
	AdminTokenFile = "admin-token"
	AddrFile       = "listen-addr"
	TenantsDir     = "tenants"
)

// DefaultRateLimit is an Auth0-like Management API limit for a small paid
// plan: a burst of 50, refilled at 15 requests per second.
var DefaultRateLimit = ratelimit.Limit{Burst: 50, PerSecond: 15}

// Config configures a Server.
type Config struct {
	// Listen is the TCP address, e.g. "127.0.0.1:8443" or "127.0.0.1:0".
	Listen string
	// DataDir holds the CA, the signing key, the database and the
	// credentials files. It is created when missing.
	DataDir string
	// RateLimit applies per tenant to the Management API and, as a separate
	// bucket, to the Authentication API. The zero value turns limits off.
	RateLimit ratelimit.Limit
	// Faults are injected into tenant requests (never into the admin API).
	Faults Faults
	// AuthEndpointLimits are the Authentication API's per-endpoint limits on
	// top of RateLimit (per IP, per user, ...); the zero value is off.
	AuthEndpointLimits AuthEndpointLimits
	// ScriptTimeout limits one run of a custom database script
	// (default scripts.DefaultTimeout).
	ScriptTimeout time.Duration
	// ScriptHTTPClient is what scripts' require('request') uses; nil means a
	// client that reaches loopback addresses only.
	ScriptHTTPClient *http.Client
	// Logger receives one line per request (method, path kind, status,
	// tenant) and never a secret. Nil discards.
	Logger *slog.Logger
}

// Faults is the fault injection setting.
type Faults struct {
	// ErrorRate is the share (0..1) of tenant requests answered with a 5xx
	// before they reach the handler, so nothing is changed.
	ErrorRate float64 `json:"error_rate"`
	// LostReplyRate is the share (0..1) of tenant requests that are carried
	// out and then answered with a 5xx anyway, as when a reply is lost on
	// the way back: a client that retries a create then meets a 409.
	LostReplyRate float64 `json:"lost_reply_rate"`
	// Latency is added to every tenant request.
	Latency time.Duration `json:"latency"`
	// Down lists tenants (by domain) that are down: every request to one is
	// answered 503 before anything else, without rate-limit headers, as a
	// load balancer in front of a failed tenant would. The others are served.
	Down []string `json:"down"`
}

// isDown reports whether the tenant with this domain is down.
func (f Faults) isDown(domain string) bool {
	return slices.Contains(f.Down, domain)
}

// Server is a running emulator.
type Server struct {
	cfg        Config
	store      *store.Store
	ca         *pki.Authority
	signer     *jwt.Signer
	box        *secretbox.Box
	scripts    *scripts.Runner
	adminToken string
	log        *slog.Logger

	ln    net.Listener
	http  *http.Server
	mux   *http.ServeMux
	admin *http.ServeMux

	tenants     sync.Map // domain -> *tenantState
	mu          sync.Mutex
	defaultRL   ratelimit.Limit
	authLimits  AuthEndpointLimits
	faults      Faults
	clockOffset atomic.Int64
	loginFails  sync.Map // domain|connection|login -> *atomic.Int32

	// Universal Login state (authorize.go), in memory.
	logins   sync.Map // transaction id -> *loginTxn
	sessions sync.Map // session cookie -> *loginSession
	codes    sync.Map // authorization code -> *authCode
	// lastSweep is when expired login state was last forgotten (ns).
	lastSweep atomic.Int64
	// actionHTTP is post-login actions' fetch (postlogin.go).
	actionHTTP *http.Client
}

// tenantState is what the server keeps in memory per tenant.
type tenantState struct {
	mgmt, auth *ratelimit.Bucket
	override   *ratelimit.Limit
	endpoints  atomic.Pointer[endpointLimiters]

	mu     sync.Mutex
	counts map[string]int
	writes []Write
}

// New opens (or initialises) the data directory, starts listening and
// serving, and returns the running server.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: DataDir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, TenantsDir), 0o700); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, defaultRL: cfg.RateLimit, authLimits: cfg.AuthEndpointLimits, faults: cfg.Faults}
	var err error
	if s.ca, err = pki.LoadOrCreate(cfg.DataDir); err != nil {
		return nil, err
	}
	s.ca.Allowed = func(name string) bool { _, ok := s.tenants.Load(name); return ok }
	if s.signer, err = jwt.LoadOrCreate(filepath.Join(cfg.DataDir, jwt.KeyFile)); err != nil {
		return nil, err
	}
	if s.adminToken, err = loadOrCreateSecret(filepath.Join(cfg.DataDir, AdminTokenFile)); err != nil {
		return nil, err
	}
	if s.store, err = store.Open(filepath.Join(cfg.DataDir, store.FileName)); err != nil {
		return nil, err
	}
	if err := s.initState(); err != nil {
		s.store.Close()
		return nil, err
	}
	s.scripts = scripts.New(cfg.ScriptTimeout, cfg.ScriptHTTPClient)
	s.actionHTTP = s.actionHTTPClient()
	s.routes()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.store.Close()
		return nil, err
	}
	s.ln = ln
	if err := os.WriteFile(filepath.Join(cfg.DataDir, AddrFile), []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
		ln.Close()
		s.store.Close()
		return nil, err
	}
	s.http = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{GetCertificate: s.ca.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() { _ = s.http.ServeTLS(ln, "", "") }()
	return s, nil
}

// initState loads the tenants and the configuration-sealing key.
func (s *Server) initState() error {
	key, err := s.store.Q().Meta("sealing-key")
	if errors.Is(err, store.ErrNotFound) {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		err = s.store.Q().PutMeta("sealing-key", key)
	}
	if err != nil {
		return err
	}
	if s.box, err = secretbox.New(key); err != nil {
		return err
	}
	ts, err := s.store.Q().Tenants()
	if err != nil {
		return err
	}
	for _, t := range ts {
		s.addTenantState(t)
	}
	return s.migrateClients()
}

// migrateClients turns the Management API scopes that an older emulator kept
// on a client into a client grant, so that the token endpoint and
// /api/v2/client-grants see one truth.
func (s *Server) migrateClients() error {
	return s.store.Tx(func(q store.Q) error {
		cs, err := q.AllClients()
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Scopes == nil && c.Doc != nil {
				continue
			}
			if len(c.Scopes) > 0 {
				g := managementGrant(c.Domain, c.ClientID, c.Scopes)
				if err := q.CreateClientGrant(&g); err != nil && !errors.Is(err, store.ErrConflict) {
					return err
				}
			}
			c.Scopes = nil
			if c.Doc == nil {
				c.Doc = map[string]any{"app_type": "non_interactive"}
			}
			if err := q.PutClient(c); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Server) addTenantState(t store.Tenant) *tenantState {
	l := s.limitFor(t.RateLimit)
	now := time.Now()
	st := &tenantState{mgmt: ratelimit.NewBucket(l, now), auth: ratelimit.NewBucket(l, now), override: t.RateLimit, counts: map[string]int{}}
	st.endpoints.Store(newEndpointLimiters(s.AuthEndpointLimits()))
	s.tenants.Store(t.Domain, st)
	return st
}

func (s *Server) limitFor(override *ratelimit.Limit) ratelimit.Limit {
	if override != nil {
		return *override
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.defaultRL
}

// Addr is the address the server listens on ("127.0.0.1:PORT").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CACertPEM is the CA certificate that signs every tenant's certificate.
func (s *Server) CACertPEM() []byte { return s.ca.CACertPEM() }

// AdminToken is the bearer token of the admin API.
func (s *Server) AdminToken() string { return s.adminToken }

// Close stops serving at once (open connections are closed, which is what
// tests of a restart want) and closes the database.
func (s *Server) Close() error {
	err := s.http.Close()
	return errors.Join(err, s.store.Close())
}

// now is the platform's clock: real time plus what the admin API advanced.
func (s *Server) now() time.Time {
	return time.Now().Add(time.Duration(s.clockOffset.Load())).UTC().Truncate(time.Millisecond)
}

// AdvanceClock moves the platform's clock forward (tokens, tickets and
// links expire by it); rate limits keep real time.
func (s *Server) AdvanceClock(d time.Duration) { s.clockOffset.Add(int64(d)) }

type ctxKey struct{}

// tenantOf returns the domain of the tenant a request addresses.
func tenantOf(r *http.Request) string { d, _ := r.Context().Value(ctxKey{}).(string); return d }

// requestHost is the host a request addresses, without port, lower-case.
func requestHost(r *http.Request) string {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

func isAdminHost(h string) bool { return h == "127.0.0.1" || h == "::1" || h == "localhost" }

// ServeHTTP dispatches to the admin API or to a tenant.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := requestHost(r)
	if r.TLS != nil && r.TLS.ServerName != "" && !strings.EqualFold(strings.TrimSuffix(r.TLS.ServerName, "."), host) {
		mgmtError(w, http.StatusMisdirectedRequest, "", "The TLS server name does not match the Host header")
		return
	}
	if isAdminHost(host) {
		s.admin.ServeHTTP(w, r)
		return
	}
	v, ok := s.tenants.Load(host)
	if !ok {
		mgmtError(w, http.StatusNotFound, "", "There is no tenant with this domain")
		return
	}
	st := v.(*tenantState)
	_, pattern := s.mux.Handler(r)
	write := recordedWrite(r, pattern)
	st.mu.Lock()
	st.counts[pattern]++
	if write != nil {
		st.writes = append(st.writes, *write)
		if len(st.writes) > maxWrites {
			st.writes = slices.Delete(st.writes, 0, len(st.writes)-maxWrites)
		}
	}
	st.mu.Unlock()

	if s.Faults().isDown(host) {
		mgmtError(w, http.StatusServiceUnavailable, "", "Injected outage: the tenant is down")
		s.log.Info("request", "tenant", host, "route", pattern, "status", http.StatusServiceUnavailable, "fault", true)
		return
	}

	if !s.withinRateLimit(w, r, st) {
		s.log.Info("request", "tenant", host, "route", pattern, "status", 429)
		return
	}
	withTenant := r.WithContext(context.WithValue(r.Context(), ctxKey{}, host))
	if code, injected := s.injectFault(w, withTenant); injected {
		s.log.Info("request", "tenant", host, "route", pattern, "status", code, "fault", true)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() {
		// A bug must show as a 500 the client can read, not a torn stream.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panic", "tenant", host, "route", pattern, "panic", fmt.Sprint(p))
			if !rec.wrote {
				mgmtError(w, http.StatusInternalServerError, "", "Internal error")
			}
		}
	}()
	s.mux.ServeHTTP(rec, withTenant)
	s.log.Info("request", "tenant", host, "route", pattern, "status", rec.status)
}

// withinRateLimit takes a token from the tenant's bucket for the API the
// request is for, sets the X-RateLimit-* headers, and answers 429 when the
// bucket is empty.
func (s *Server) withinRateLimit(w http.ResponseWriter, r *http.Request, st *tenantState) bool {
	bucket := st.auth
	if strings.HasPrefix(r.URL.Path, "/api/v2/") {
		bucket = st.mgmt
	}
	d := bucket.Take(time.Now())
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix()+boolInt(d.Reset.Nanosecond() > 0), 10))
	if d.Allowed {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
	writeJSON(w, http.StatusTooManyRequests, apiError{StatusCode: 429, Error: "Too Many Requests", Message: "Global limit has been reached", ErrorCode: "too_many_requests"})
	return false
}

// injectFault adds the configured latency and, for the configured shares of
// requests, answers a 5xx before the handler runs or after it ran (a lost
// reply). It reports the status it answered.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) (int, bool) {
	f := s.Faults()
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return 0, true
		}
	}
	if f.ErrorRate > 0 && mrand.Float64() < f.ErrorRate {
		codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		code := codes[mrand.IntN(len(codes))]
		mgmtError(w, code, "", "Injected fault")
		return code, true
	}
	if f.LostReplyRate > 0 && mrand.Float64() < f.LostReplyRate {
		s.mux.ServeHTTP(&droppedReply{header: http.Header{}}, r)
		mgmtError(w, http.StatusServiceUnavailable, "", "Injected fault after the request was carried out")
		return http.StatusServiceUnavailable, true
	}
	return 0, false
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// droppedReply is a ResponseWriter that throws the answer away.
type droppedReply struct{ header http.Header }

func (d *droppedReply) Header() http.Header         { return d.header }
func (d *droppedReply) Write(b []byte) (int, error) { return len(b), nil }
func (d *droppedReply) WriteHeader(int)             {}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status, r.wrote = code, true
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// routes registers the tenant endpoints. Patterns match the escaped path
// segment by segment, so `auth0%7Cabc` routes as one {id}.
func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /oauth/token", s.token)
	m.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	m.HandleFunc("GET /userinfo", s.userinfo)
	m.HandleFunc("POST /dbconnections/change_password", s.changePassword)
	m.HandleFunc("POST /dbconnections/signup", s.signup)
	m.HandleFunc("POST /co/authenticate", s.crossOriginAuthenticate)
	m.HandleFunc("GET /u/reset-password", s.resetPage)
	m.HandleFunc("POST /u/reset-password", s.resetSubmit)
	m.HandleFunc("GET /lo/reset", s.confirmPasswordChange)
	m.HandleFunc("GET /authorize", s.authorizeEndpoint)
	m.HandleFunc("GET /u/login", s.loginForm)
	m.HandleFunc("POST /u/login", s.loginSubmit)
	m.HandleFunc("GET /continue", s.continueLogin)

	m.HandleFunc("GET /api/v2/tenants/settings", s.getSettings)
	m.HandleFunc("PATCH /api/v2/tenants/settings", s.patchSettings)
	m.HandleFunc("GET /api/v2/connections", s.listConnections)
	m.HandleFunc("POST /api/v2/connections", s.createConnection)
	m.HandleFunc("GET /api/v2/connections/{id}", s.getConnection)
	m.HandleFunc("PATCH /api/v2/connections/{id}", s.patchConnection)
	m.HandleFunc("DELETE /api/v2/connections/{id}", s.deleteConnection)
	m.HandleFunc("GET /api/v2/connections/{id}/clients", s.getConnectionClients)
	m.HandleFunc("PATCH /api/v2/connections/{id}/clients", s.patchConnectionClients)
	m.HandleFunc("GET /api/v2/clients", s.listClients)
	m.HandleFunc("POST /api/v2/clients", s.createClient)
	m.HandleFunc("GET /api/v2/clients/{id}", s.getClient)
	m.HandleFunc("PATCH /api/v2/clients/{id}", s.patchClient)
	m.HandleFunc("DELETE /api/v2/clients/{id}", s.deleteClient)
	m.HandleFunc("POST /api/v2/clients/{id}/rotate-secret", s.rotateClientSecret)
	m.HandleFunc("GET /api/v2/client-grants", s.listClientGrants)
	m.HandleFunc("POST /api/v2/client-grants", s.createClientGrant)
	m.HandleFunc("GET /api/v2/client-grants/{id}", s.getClientGrant)
	m.HandleFunc("PATCH /api/v2/client-grants/{id}", s.patchClientGrant)
	m.HandleFunc("DELETE /api/v2/client-grants/{id}", s.deleteClientGrant)
	m.HandleFunc("GET /api/v2/actions/actions", s.listActions)
	m.HandleFunc("POST /api/v2/actions/actions", s.createAction)
	m.HandleFunc("GET /api/v2/actions/actions/{id}", s.getAction)
	m.HandleFunc("PATCH /api/v2/actions/actions/{id}", s.patchAction)
	m.HandleFunc("DELETE /api/v2/actions/actions/{id}", s.deleteAction)
	m.HandleFunc("POST /api/v2/actions/actions/{id}/deploy", s.deployAction)
	m.HandleFunc("GET /api/v2/actions/actions/{id}/versions", s.listActionVersions)
	m.HandleFunc("GET /api/v2/actions/actions/{id}/versions/{versionId}", s.getActionVersion)
	m.HandleFunc("GET /api/v2/actions/triggers", s.listTriggers)
	m.HandleFunc("GET /api/v2/actions/triggers/{triggerId}/bindings", s.listBindings)
	m.HandleFunc("PATCH /api/v2/actions/triggers/{triggerId}/bindings", s.patchBindings)
	m.HandleFunc("GET /api/v2/emails/provider", s.getEmailProvider)
	m.HandleFunc("POST /api/v2/emails/provider", s.createEmailProvider)
	m.HandleFunc("PATCH /api/v2/emails/provider", s.patchEmailProvider)
	m.HandleFunc("DELETE /api/v2/emails/provider", s.deleteEmailProvider)
	m.HandleFunc("POST /api/v2/email-templates", s.createEmailTemplate)
	m.HandleFunc("GET /api/v2/email-templates/{name}", s.getEmailTemplate)
	m.HandleFunc("PATCH /api/v2/email-templates/{name}", s.patchEmailTemplate)
	m.HandleFunc("PUT /api/v2/email-templates/{name}", s.putEmailTemplate)
	m.HandleFunc("POST /api/v2/tickets/password-change", s.passwordChangeTicket)
	m.HandleFunc("GET /api/v2/users", s.listUsers)
	m.HandleFunc("GET /api/v2/users/{id}", s.getUser)
	m.HandleFunc("PATCH /api/v2/users/{id}", s.patchUser)
	m.HandleFunc("DELETE /api/v2/users/{id}", s.deleteUser)
	m.HandleFunc("GET /api/v2/users-by-email", s.usersByEmail)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mgmtError(w, http.StatusNotFound, "", "Not Found")
	})
	s.mux = m
	s.admin = s.adminRoutes()
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	if !s.withinEndpointLimit(w, r, epJWKS, "") {
		return
	}
	writeJSON(w, http.StatusOK, s.signer.JWKS())
}

// randomID returns n random bytes as lower-case hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomAlnum returns n random letters and digits.
func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func loadOrCreateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	tok := randomID(24)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("server: write %s: %w", path, err)
	}
	return tok, nil
}

// ClockOffset is how far AdvanceClock has moved the platform's clock.
func (s *Server) ClockOffset() time.Duration { return time.Duration(s.clockOffset.Load()) }
