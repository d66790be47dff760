package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

func TestDialAddressKeepsDomainForHostSNIAndCertificate(t *testing.T) {
	var host, sni string
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		host, sni = r.Host, r.TLS.ServerName
		writeJSON(w, http.StatusOK, map[string]any{"friendly_name": "Acme"})
	})
	c := f.client(t, fastOptions())
	s, err := c.GetTenantSettings(context.Background())
	if err != nil {
		t.Fatalf("GetTenantSettings: %v", err)
	}
	if s.FriendlyName != "Acme" {
		t.Errorf("friendly name = %q", s.FriendlyName)
	}
	if host != "tenant.example.com" || sni != "tenant.example.com" {
		t.Errorf("Host %q, SNI %q: want the domain for both", host, sni)
	}
	f.mu.Lock()
	form := f.tokenForms[0]
	f.mu.Unlock()
	want := map[string]string{
		"grant_type":    "client_credentials",
		"client_id":     testClientID,
		"client_secret": testClientSecret,
		"audience":      "https://tenant.example.com/api/v2/",
	}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("token form %s = %q, want %q", k, form.Get(k), v)
		}
	}
}

func TestCertificateForAnotherDomainOrCAIsRefusedWithoutRetry(t *testing.T) {
	var hits atomic.Int32
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	tests := map[string]Config{
		"domain not in the certificate": func() Config { c := f.config("tenant.example.org"); return c }(),
		"no CA bundle":                  func() Config { c := f.config("tenant.example.com"); c.CABundle = nil; return c }(),
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := newClient(cfg, fastOptions(), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetTenantSettings(context.Background())
			var ae *APIError
			if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ae) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if ae.Attempts != 1 {
				t.Errorf("attempts = %d: a certificate error must not be retried", ae.Attempts)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("the API was reached %d times through an unverified connection", hits.Load())
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{Domain: "t.example.com", ClientID: "id", ClientSecret: "secret"}
	bad := map[string]func(*Config){
		"empty domain":        func(c *Config) { c.Domain = "" },
		"scheme in domain":    func(c *Config) { c.Domain = "https://t.example.com" },
		"path in domain":      func(c *Config) { c.Domain = "t.example.com/api" },
		"dial without port":   func(c *Config) { c.DialAddress = "127.0.0.1" },
		"no client secret":    func(c *Config) { c.ClientSecret = "" },
		"CA bundle is no PEM": func(c *Config) { c.CABundle = []byte("not a certificate") },
	}
	if _, err := New(good, fastOptions()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mutate(&cfg)
			_, err := New(cfg, fastOptions())
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret") && strings.Contains(err.Error(), cfg.ClientSecret) && cfg.ClientSecret != "" {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestTokenIsSharedByConcurrentCalls(t *testing.T) {
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	c := f.client(t, fastOptions())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.GetTenantSettings(context.Background())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.issued(); n != 1 {
		t.Errorf("%d tokens fetched for 20 concurrent calls, want 1", n)
	}
}

func TestTokenRenewedShortlyBeforeExpiry(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, bearer(r))
		mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	f.tokenExpiresIn = 3600
	clk := clocktesting.NewFakeClock(time.Now())
	opts := fastOptions()
	opts.Clock = clk
	c := f.client(t, opts)
	ctx := context.Background()
	get := func() {
		t.Helper()
		if _, err := c.GetTenantSettings(ctx); err != nil {
			t.Fatal(err)
		}
	}
	get()
	clk.Step(3600*time.Second - 6*time.Minute) // within the lifetime, before the margin
	get()
	clk.Step(2 * time.Minute) // 4 minutes left: inside the 5-minute margin
	get()
	want := []string{"tok-1", "tok-1", "tok-2"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("tokens used = %v, want %v", seen, want)
	}
}

func TestUnauthorizedRefreshesTheTokenOnce(t *testing.T) {
	var calls atomic.Int32
	revoked := "tok-1"
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if bearer(r) == revoked {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeAPIError(w, http.StatusUnauthorized, "", "Invalid token")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"friendly_name": "ok"})
	})
	c := f.client(t, fastOptions())
	if _, err := c.GetTenantSettings(context.Background()); err != nil {
		t.Fatalf("after one refresh the call should succeed: %v", err)
	}
	if calls.Load() != 2 || f.issued() != 2 {
		t.Errorf("calls %d, tokens %d: want 2 and 2", calls.Load(), f.issued())
	}

	// A token refused even when fresh is bad credentials: no loop.
	always := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusUnauthorized, "", "Invalid token")
	})
	c2 := always.client(t, fastOptions())
	_, err := c2.GetTenantSettings(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if always.issued() != 2 {
		t.Errorf("tokens fetched = %d, want 2 (one refresh)", always.issued())
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   map[string]any
		want   error
	}{
		{"bad client", http.StatusUnauthorized, map[string]any{"error": "access_denied", "error_description": "Unauthorized"}, ErrUnauthorized},
		{"no grant for the API", http.StatusForbidden, map[string]any{"error": "access_denied", "error_description": "Client has not been granted scopes"}, ErrUnauthorized},
		{"grant type not allowed", http.StatusForbidden, map[string]any{"error": "unauthorized_client", "error_description": "Grant type not allowed"}, ErrUnauthorized},
		{"bad request", http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "Missing audience"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var apiCalls atomic.Int32
			f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) { apiCalls.Add(1) })
			f.tokenReject = func(w http.ResponseWriter) bool { writeJSON(w, tt.status, tt.body); return true }
			c := f.client(t, fastOptions())
			_, err := c.GetTenantSettings(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Message != tt.body["error_description"] || ae.Operation != opToken {
				t.Errorf("APIError = %+v", ae)
			}
			if strings.Contains(err.Error(), testClientSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if apiCalls.Load() != 0 {
				t.Errorf("the API was called without a token")
			}
		})
	}
}

func TestErrorsAreTyped(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(w http.ResponseWriter)
		want      error
		wantCode  string
		wantMsg   string
		wantFlag  string
		attempts  int
		notWanted []error
	}{
		{
			name: "not found",
			respond: func(w http.ResponseWriter) {
				writeAPIError(w, 404, "inexistent_connection", "The connection does not exist")
			},
			want:     ErrNotFound,
			wantCode: "inexistent_connection", wantMsg: "The connection does not exist", attempts: 1,
		},
		{
			name: "conflict",
			respond: func(w http.ResponseWriter) {
				writeAPIError(w, 409, "", "A connection with the same name already exists")
			},
			want: ErrConflict, wantMsg: "A connection with the same name already exists", attempts: 1,
		},
		{
			name: "invalid body",
			respond: func(w http.ResponseWriter) {
				writeAPIError(w, 400, "invalid_body", "Payload validation error: 'Too short' on property name")
			},
			want:     ErrInvalid,
			wantCode: "invalid_body", wantMsg: "Payload validation error: 'Too short' on property name", attempts: 1,
			notWanted: []error{ErrForbiddenFlag},
		},
		{
			name: "forbidden flag",
			respond: func(w http.ResponseWriter) {
				writeAPIError(w, 400, "", "You are not allowed to set flag 'disable_impersonation'")
			},
			want:     ErrForbiddenFlag,
			wantFlag: "disable_impersonation", wantMsg: "You are not allowed to set flag 'disable_impersonation'", attempts: 1,
		},
		{
			name: "forbidden flag, bare name",
			respond: func(w http.ResponseWriter) {
				writeAPIError(w, 400, "invalid_body", "You are not allowed to set flag enable_sso.")
			},
			want:     ErrForbiddenFlag,
			wantFlag: "enable_sso", wantCode: "invalid_body", wantMsg: "You are not allowed to set flag enable_sso.", attempts: 1,
		},
		{
			name: "insufficient scope",
			respond: func(w http.ResponseWriter) {
				writeAPIError(w, 403, "insufficient_scope", "Insufficient scope, expected any of: update:tenant_settings")
			},
			want: ErrInsufficientScope, wantCode: "insufficient_scope",
			wantMsg: "Insufficient scope, expected any of: update:tenant_settings", attempts: 1,
		},
		{
			name:    "server error retried then unavailable",
			respond: func(w http.ResponseWriter) { writeAPIError(w, 503, "", "Service Unavailable") },
			want:    ErrUnavailable, wantMsg: "Service Unavailable", attempts: 6,
		},
		{
			name: "a body that is not JSON",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				_, _ = io.WriteString(w, "<html><body>Bad Gateway</body></html>")
			},
			want: ErrUnavailable, wantMsg: "the response is not JSON", attempts: 6,
		},
		{
			name: "a 200 body that is not JSON",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, "<html>Sign in to the network</html>")
			},
			want: ErrUnavailable, wantMsg: "the response is not JSON", attempts: 1,
		},
		{
			name: "a 4xx body that is not JSON",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(400)
				_, _ = io.WriteString(w, "bad request")
			},
			want: ErrInvalid, wantMsg: "the response is not JSON", attempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				tt.respond(w)
			})
			c := f.client(t, fastOptions())
			patch := SettingsPatch{}
			patch.SetFlag("disable_impersonation", true)
			_, err := c.PatchTenantSettings(context.Background(), patch)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, nw := range tt.notWanted {
				if errors.Is(err, nw) {
					t.Errorf("err also matches %v", nw)
				}
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %T is not an *APIError", err)
			}
			if ae.ErrorCode != tt.wantCode || ae.Message != tt.wantMsg || ae.Operation != opPatchTenantSettings {
				t.Errorf("APIError = %+v", ae)
			}
			if ae.Attempts != tt.attempts || int(calls.Load()) != tt.attempts {
				t.Errorf("attempts = %d, server calls = %d, want %d", ae.Attempts, calls.Load(), tt.attempts)
			}
			var ffe *ForbiddenFlagError
			if errors.As(err, &ffe) != (tt.wantFlag != "") || (ffe != nil && ffe.Flag != tt.wantFlag) {
				t.Errorf("ForbiddenFlagError = %+v, want flag %q", ffe, tt.wantFlag)
			}
			if tt.wantFlag != "" && !errors.Is(err, ErrInvalid) {
				t.Errorf("a forbidden flag should also match ErrInvalid")
			}
			if !strings.Contains(err.Error(), opPatchTenantSettings) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q should name the operation and the platform's message", err.Error())
			}
		})
	}
}

func TestErrorsNeverEchoSecrets(t *testing.T) {
	const smtpPass = "smtp-pass-do-not-print"
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, 400, "invalid_body", "Payload validation error: 'Expected type integer' on property credentials.smtp_port")
	})
	c := f.client(t, fastOptions())
	_, err := c.CreateEmailProvider(context.Background(), EmailProviderCreate{
		Name:        EmailProviderSMTP,
		Credentials: EmailCredentials{SMTPHost: "smtp.example.com", SMTPPort: 25, SMTPUser: "u", SMTPPass: smtpPass},
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{err.Error(), fmtAll(err)} {
		for _, secret := range []string{smtpPass, testClientSecret, "tok-1"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q contains a secret", s)
			}
		}
	}
	// Values printed by mistake do not leak either.
	cfg := f.config("tenant.example.com")
	creds := EmailCredentials{SMTPPass: smtpPass}
	opts := ConnectionOptions{Configuration: map[string]string{"db_password": "pw-do-not-print"},
		CustomScripts: map[string]string{"login": "function login(){ /* pw-do-not-print */ }"}}
	create := EmailProviderCreate{Name: "smtp", Credentials: creds}
	update := ConnectionUpdate{Options: &opts}
	for _, s := range []string{cfg.String(), fmtAll(cfg), fmtAll(creds), fmtAll(opts), fmtAll(&opts), fmtAll(create), fmtAll(update)} {
		for _, secret := range []string{smtpPass, testClientSecret, "pw-do-not-print"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q contains a secret", s)
			}
		}
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	var calls atomic.Int32
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"friendly_name": "third time"})
	})
	c := f.client(t, fastOptions())
	s, err := c.GetTenantSettings(context.Background())
	if err != nil {
		t.Fatalf("GetTenantSettings: %v", err)
	}
	if s.FriendlyName != "third time" || calls.Load() != 3 {
		t.Errorf("got %q after %d calls", s.FriendlyName, calls.Load())
	}
}

func TestUnreachablePlatformIsUnavailableWithinTheContext(t *testing.T) {
	// A port nothing listens on: take one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := Config{Domain: "tenant.example.com", DialAddress: addr, ClientID: "id", ClientSecret: testClientSecret}
	opts := fastOptions()
	c, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetTenantSettings(context.Background())
	var ae *APIError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ae) || ae.Attempts != 6 {
		t.Fatalf("err = %v, want ErrUnavailable after 6 attempts", err)
	}

	slow := opts
	slow.BackoffBase, slow.BackoffCap = time.Hour, time.Hour
	c, _ = New(cfg, slow)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.GetTenantSettings(ctx)
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v: the context must bound the backoff", err, time.Since(start))
	}
}

func TestRetriedCreateSurfacesConflictForAdoption(t *testing.T) {
	var calls atomic.Int32
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/connections" {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		if calls.Add(1) == 1 {
			// The platform created it but the answer was lost.
			writeAPIError(w, 503, "", "upstream timeout")
			return
		}
		writeAPIError(w, 409, "", "A connection with the same name already exists")
	})
	c := f.client(t, fastOptions())
	_, err := c.CreateConnection(context.Background(), ConnectionCreate{Name: "legacy-db"})
	var ae *APIError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ae) || ae.Attempts != 2 {
		t.Fatalf("err = %v, want ErrConflict after 2 attempts", err)
	}
}

func TestRateLimitedWaitsAndRetries(t *testing.T) {
	tests := []struct {
		name    string
		headers func(now time.Time) map[string]string
		minWait time.Duration
		maxWait time.Duration
	}{
		{
			name:    "Retry-After in seconds",
			headers: func(time.Time) map[string]string { return map[string]string{"Retry-After": "1"} },
			minWait: 900 * time.Millisecond, maxWait: 3 * time.Second,
		},
		{
			name: "Retry-After as an HTTP date",
			headers: func(now time.Time) map[string]string {
				return map[string]string{"Retry-After": now.Add(2 * time.Second).UTC().Format(http.TimeFormat)}
			},
			// Whole-second resolution: between 1 and 2 seconds.
			minWait: 900 * time.Millisecond, maxWait: 3 * time.Second,
		},
		{
			name: "X-RateLimit-Reset when no Retry-After",
			headers: func(now time.Time) map[string]string {
				return map[string]string{"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
					"X-RateLimit-Reset": itoa(now.Add(2 * time.Second).Unix())}
			},
			minWait: 900 * time.Millisecond, maxWait: 3 * time.Second,
		},
		{
			name: "a reset in the past",
			headers: func(now time.Time) map[string]string {
				return map[string]string{"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
					"X-RateLimit-Reset": itoa(now.Add(-30 * time.Second).Unix())}
			},
			// Not a tight loop, not a failure: a short backoff of at least a second.
			minWait: 900 * time.Millisecond, maxWait: 3 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var times []time.Time
			f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				times = append(times, time.Now())
				n := len(times)
				mu.Unlock()
				if n == 1 {
					for k, v := range tt.headers(time.Now()) {
						w.Header().Set(k, v)
					}
					writeAPIError(w, 429, "too_many_requests", "Global limit has been reached")
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"friendly_name": "ok"})
			})
			opts := fastOptions()
			c := f.client(t, opts)
			if _, err := c.GetTenantSettings(context.Background()); err != nil {
				t.Fatalf("GetTenantSettings: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(times) != 2 {
				t.Fatalf("%d requests, want 2", len(times))
			}
			if wait := times[1].Sub(times[0]); wait < tt.minWait || wait > tt.maxWait {
				t.Errorf("waited %v, want between %v and %v", wait, tt.minWait, tt.maxWait)
			}
			if got := testutil.ToFloat64(opts.Metrics.RateLimited.WithLabelValues(opGetTenantSettings)); got != 1 {
				t.Errorf("429 counter = %v, want 1", got)
			}
		})
	}
}

func TestRateLimitedGivesUpWhenTheContextCannotWait(t *testing.T) {
	var calls atomic.Int32
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		writeAPIError(w, 429, "too_many_requests", "Global limit has been reached")
	})
	c := f.client(t, fastOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetTenantSettings(ctx)
	var ae *APIError
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &ae) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if ae.RetryAfter != 30*time.Second {
		t.Errorf("RetryAfter = %v, want 30s", ae.RetryAfter)
	}
	if time.Since(start) > time.Second || calls.Load() != 1 {
		t.Errorf("took %v and %d calls: should give up at once", time.Since(start), calls.Load())
	}
	// The next call of the tenant waits for the block too, bounded by its context.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	_, err = c.GetTenantSettings(ctx2)
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, context.DeadlineExceeded) || calls.Load() != 1 {
		t.Errorf("err = %v, calls %d: the tenant is blocked for 30s", err, calls.Load())
	}
}

func TestMetricsCountRequestsAndBudget(t *testing.T) {
	var calls atomic.Int32
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("X-RateLimit-Limit", "50")
		w.Header().Set("X-RateLimit-Remaining", itoa(int64(50-n)))
		w.Header().Set("X-RateLimit-Reset", itoa(time.Now().Add(10*time.Second).Unix()))
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		writeAPIError(w, 404, "inexistent_email_provider", "There is not a configured email provider")
	})
	opts := fastOptions()
	c := f.client(t, opts)
	ctx := context.Background()
	if _, ok := c.RateLimit(); ok {
		t.Error("a budget before any response")
	}
	_, _ = c.GetTenantSettings(ctx)
	_, _ = c.GetTenantSettings(ctx)
	_, _ = c.UpdateEmailProvider(ctx, EmailProviderUpdate{})
	m := opts.Metrics
	if got := testutil.ToFloat64(m.Requests.WithLabelValues(opGetTenantSettings, "2xx")); got != 2 {
		t.Errorf("2xx settings requests = %v", got)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues(opUpdateEmailProvider, "4xx")); got != 1 {
		t.Errorf("4xx provider requests = %v", got)
	}
	if got := testutil.ToFloat64(m.RateLimitRemaining.WithLabelValues("tenant.example.com")); got != 47 {
		t.Errorf("remaining gauge = %v, want 47", got)
	}
	st, ok := c.RateLimit()
	if !ok || st.Limit != 50 || st.Remaining != 47 || st.Reset.Before(time.Now()) {
		t.Errorf("RateLimit() = %+v, %v", st, ok)
	}
}

func TestDefaultMetricsAreOnTheControllerRuntimeRegistry(t *testing.T) {
	m := DefaultMetrics()
	if DefaultMetrics() != m {
		t.Fatal("DefaultMetrics is not a singleton")
	}
	m.Requests.WithLabelValues("TestOperation", "2xx").Inc()
	n, err := testutil.GatherAndCount(ctrlmetrics.Registry, "identity_client_requests_total")
	if err != nil || n == 0 {
		t.Errorf("identity_client_requests_total on the controller-runtime registry: %d series, %v", n, err)
	}
}

// fmtAll prints v every way a log line might.
func fmtAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTokenEndpointRateLimitIsWaitedOutWithoutBlockingTheAPI(t *testing.T) {
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"friendly_name": "ok"})
	})
	refused := 0
	f.tokenReject = func(w http.ResponseWriter) bool {
		if refused > 0 {
			return false
		}
		refused++
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "too_many_requests", "error_description": "Rate limit exceeded"})
		return true
	}
	c := f.client(t, fastOptions())
	start := time.Now()
	if _, err := c.GetTenantSettings(context.Background()); err != nil {
		t.Fatalf("GetTenantSettings: %v", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("retried the token after %v, before Retry-After", waited)
	}
	c.pacer.mu.Lock()
	blocked := c.pacer.blockedUntil
	c.pacer.mu.Unlock()
	if !blocked.IsZero() {
		t.Errorf("the token endpoint's 429 blocked the Management API until %v", blocked)
	}
}
