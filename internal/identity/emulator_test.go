package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// These tests run the client against the emulator over real HTTPS: the emulator's own
// CA, the tenant's domain for Host, SNI and certificate checks, and the dial address
// pointing at the emulator's port, as a Tenant with a private route would.

type tenant struct {
	e       *emulatortest.Emulator
	domain  string
	creds   emulatortest.Credentials
	metrics *identity.Metrics
	client  identity.Client
}

func newTenant(t *testing.T, e *emulatortest.Emulator, domain string, opts ...emulatortest.TenantOption) *tenant {
	t.Helper()
	creds := e.CreateTenant(domain, opts...)
	tn := &tenant{e: e, domain: domain, creds: creds, metrics: identity.NewMetrics(prometheus.NewRegistry())}
	tn.client = tn.clientFor(t, creds)
	return tn
}

func (tn *tenant) config(creds emulatortest.Credentials) identity.Config {
	return identity.Config{
		Domain:       tn.domain,
		DialAddress:  tn.e.Addr(),
		CABundle:     tn.e.CACertPEM(),
		ClientID:     creds.ClientID,
		ClientSecret: creds.ClientSecret,
	}
}

func (tn *tenant) clientFor(t *testing.T, creds emulatortest.Credentials) identity.Client {
	t.Helper()
	c, err := identity.New(tn.config(creds), identity.Options{
		Metrics:     tn.metrics,
		BackoffBase: 10 * time.Millisecond,
		BackoffCap:  100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("identity.New: %v", err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

func TestEmulatorTenantSettings(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "settings.emulator.local", emulatortest.Legacy(),
		emulatortest.WithSettings(map[string]any{"flags": map[string]any{"enable_sso": true}}))
	ctx := ctxT(t)

	s, err := tn.client.GetTenantSettings(ctx)
	if err != nil {
		t.Fatalf("GetTenantSettings: %v", err)
	}
	if !s.Flags["change_pwd_flow_v1"] || !s.Flags["enable_sso"] {
		t.Fatalf("flags = %v, want the legacy flags and enable_sso", s.Flags)
	}

	// Several flags, a setting and a removal: one PATCH that touches only those.
	e.ResetRequests(tn.domain)
	var patch identity.SettingsPatch
	patch.SetFlag("change_pwd_flow_v1", false)
	patch.SetFlag("enable_legacy_profile", false)
	patch.RemoveFlag("enable_sso")
	patch.FriendlyName = ptr("Acme Identity")
	patch.SessionLifetime = ptr(72.0)
	patch.EnabledLocales = ptr([]string{"en", "fr"})
	patch.ErrorPage = &identity.ErrorPage{URL: ptr("https://acme.example/error"), ShowLogLink: ptr(false)}
	after, err := tn.client.PatchTenantSettings(ctx, patch)
	if err != nil {
		t.Fatalf("PatchTenantSettings: %v", err)
	}
	if n := e.Requests(tn.domain).Count("PATCH", "/api/v2/tenants/settings"); n != 1 {
		t.Errorf("%d PATCH requests, want 1", n)
	}
	if after.FriendlyName != "Acme Identity" || after.SessionLifetime == nil || *after.SessionLifetime != 72 ||
		strings.Join(after.EnabledLocales, ",") != "en,fr" || after.ErrorPage == nil || *after.ErrorPage.URL != "https://acme.example/error" {
		t.Errorf("settings after the patch = %+v", after)
	}
	flags := e.Flags(tn.domain)
	if flags["change_pwd_flow_v1"] != false || flags["enable_legacy_profile"] != false {
		t.Errorf("flags = %v, want both legacy flags false", flags)
	}
	if _, still := flags["enable_sso"]; still {
		t.Errorf("enable_sso still set after null: %v", flags)
	}
	// Keys the patch did not name are left alone.
	if got := e.Settings(tn.domain)["support_email"]; got != s.SupportEmail && !(got == nil && s.SupportEmail == "") {
		t.Errorf("support_email changed from %q to %v", s.SupportEmail, got)
	}

	// Removing a top-level key.
	if _, err := tn.client.PatchTenantSettings(ctx, identity.SettingsPatch{Remove: []string{identity.SettingFriendlyName}}); err != nil {
		t.Fatalf("remove friendly_name: %v", err)
	}
	if v, ok := e.Settings(tn.domain)["friendly_name"]; ok && v != nil {
		t.Errorf("friendly_name = %v after removal", v)
	}

	// A refused flag is terminal and names the flag.
	var refused identity.SettingsPatch
	refused.SetFlag("disable_impersonation", true)
	_, err = tn.client.PatchTenantSettings(ctx, refused)
	var ffe *identity.ForbiddenFlagError
	if !errors.Is(err, identity.ErrForbiddenFlag) || !errors.As(err, &ffe) || ffe.Flag != "disable_impersonation" {
		t.Fatalf("err = %v, want a forbidden flag disable_impersonation", err)
	}
	if ffe.APIError.StatusCode != 400 || ffe.APIError.Attempts != 1 {
		t.Errorf("APIError = %+v", ffe.APIError)
	}
}

func TestEmulatorConnectionLifecycle(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "connections.emulator.local")
	ctx := ctxT(t)
	const name = "legacy-users"

	if _, err := tn.client.FindConnectionByName(ctx, name); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("FindConnectionByName before create: %v, want ErrNotFound", err)
	}
	plain := map[string]string{"db_url": "https://legacy.example/api", "db_password": "pw-never-printed"}
	scripts := map[string]string{
		"login":    "function login(email, password, callback) { callback(null, null); }",
		"get_user": "function getByEmail(email, callback) { callback(null, null); }",
	}
	created, err := tn.client.CreateConnection(ctx, identity.ConnectionCreate{
		Name:        name,
		DisplayName: "Legacy users",
		Options: &identity.ConnectionOptions{
			EnabledDatabaseCustomization: ptr(true),
			ImportMode:                   ptr(true),
			CustomScripts:                scripts,
			Configuration:                plain,
			StrategyVersion:              ptr(2),
			PasswordPolicy:               ptr("good"),
			PasswordHistory:              json.RawMessage(`{"enable":true,"size":5}`),
			// An option this client does not model, as another tool may have set it.
			Extra: map[string]json.RawMessage{"x_tool_marker": json.RawMessage(`{"owner":"someone-else"}`)},
		},
	})
	if err != nil {
		t.Fatalf("CreateConnection: %v", err)
	}
	if created.ID == "" || created.Name != name || created.Strategy != identity.StrategyAuth0 {
		t.Fatalf("created = %+v", created)
	}
	if strings.Join(created.Realms, ",") != name {
		t.Errorf("realms = %v, want the default [%s]", created.Realms, name)
	}

	_, err = tn.client.CreateConnection(ctx, identity.ConnectionCreate{Name: name})
	if !errors.Is(err, identity.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}

	found, err := tn.client.FindConnectionByName(ctx, name)
	if err != nil || found.ID != created.ID {
		t.Fatalf("FindConnectionByName = %+v, %v", found, err)
	}
	got, err := tn.client.GetConnection(ctx, created.ID)
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	if got.Options.Configuration["db_password"] == "" || got.Options.Configuration["db_password"] == plain["db_password"] {
		t.Errorf("configuration should come back as ciphertext, got %q", got.Options.Configuration["db_password"])
	}
	if string(got.Options.Extra["x_tool_marker"]) != `{"owner":"someone-else"}` {
		t.Errorf("unknown option not kept: %v", got.Options.Extra)
	}

	// Change one option: send all of them back, with the plain configuration.
	opts := got.Options
	opts.Configuration = plain
	opts.DisableSignup = ptr(true)
	updated, err := tn.client.UpdateConnection(ctx, created.ID, identity.ConnectionUpdate{
		DisplayName: ptr("Legacy users (migrating)"),
		Options:     &opts,
	})
	if err != nil {
		t.Fatalf("UpdateConnection: %v", err)
	}
	if updated.DisplayName != "Legacy users (migrating)" || updated.Options.DisableSignup == nil || !*updated.Options.DisableSignup {
		t.Errorf("updated = %+v", updated)
	}
	stored, _ := e.Connection(tn.domain, name)
	storedOpts, _ := stored["options"].(map[string]any)
	cfg, _ := storedOpts["configuration"].(map[string]any)
	if cfg["db_password"] != plain["db_password"] || cfg["db_url"] != plain["db_url"] {
		t.Errorf("configuration lost on PATCH: %v", cfg)
	}
	if storedOpts["import_mode"] != true || storedOpts["x_tool_marker"] == nil || storedOpts["password_history"] == nil {
		t.Errorf("options lost on PATCH: %v", storedOpts)
	}
	cs, _ := storedOpts["customScripts"].(map[string]any)
	if cs["login"] != scripts["login"] {
		t.Errorf("scripts lost on PATCH: %v", cs)
	}

	// The platform's own refusal comes through with its message.
	_, err = tn.client.UpdateConnection(ctx, created.ID, identity.ConnectionUpdate{
		Options: &identity.ConnectionOptions{PasswordPolicy: ptr("superb")},
	})
	var ae *identity.APIError
	if !errors.Is(err, identity.ErrInvalid) || !errors.As(err, &ae) || !strings.Contains(ae.Message, "passwordPolicy") {
		t.Errorf("invalid option: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "pw-never-printed") {
		t.Errorf("error echoes the configuration: %v", err)
	}

	if err := tn.client.DeleteConnection(ctx, created.ID); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	if err := tn.client.DeleteConnection(ctx, created.ID); err != nil {
		t.Fatalf("DeleteConnection of a deleted connection: %v, want success", err)
	}
	if _, err := tn.client.GetConnection(ctx, created.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("GetConnection after delete: %v, want ErrNotFound", err)
	}
	if _, ok := e.Connection(tn.domain, name); ok {
		t.Error("the connection is still stored")
	}
}

func TestEmulatorEmailProvider(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "mail.emulator.local")
	ctx := ctxT(t)

	if _, err := tn.client.GetEmailProvider(ctx); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("GetEmailProvider with none: %v, want ErrNotFound", err)
	}
	if _, err := tn.client.UpdateEmailProvider(ctx, identity.EmailProviderUpdate{Enabled: ptr(false)}); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("UpdateEmailProvider with none: %v, want ErrNotFound", err)
	}
	const pass = "smtp-pass-never-printed"
	p, err := tn.client.CreateEmailProvider(ctx, identity.EmailProviderCreate{
		Name:               identity.EmailProviderSMTP,
		DefaultFromAddress: "no-reply@acme.example",
		Credentials:        identity.EmailCredentials{SMTPHost: "smtp.acme.example", SMTPPort: 587, SMTPUser: "mailer", SMTPPass: pass},
	})
	if err != nil {
		t.Fatalf("CreateEmailProvider: %v", err)
	}
	if p.Name != "smtp" || !p.Enabled {
		t.Errorf("created = %+v", p)
	}
	_, err = tn.client.CreateEmailProvider(ctx, identity.EmailProviderCreate{Name: identity.EmailProviderCustom})
	if !errors.Is(err, identity.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}

	got, err := tn.client.GetEmailProvider(ctx)
	if err != nil {
		t.Fatalf("GetEmailProvider: %v", err)
	}
	if got.DefaultFromAddress != "no-reply@acme.example" || got.Credentials.SMTPHost != "smtp.acme.example" ||
		got.Credentials.SMTPPort != 587 || got.Credentials.SMTPUser != "mailer" {
		t.Errorf("provider = %+v (credentials %s)", got, got.Credentials)
	}
	if got.Credentials.SMTPPass != "" {
		t.Error("the platform returned the smtp password")
	}

	upd, err := tn.client.UpdateEmailProvider(ctx, identity.EmailProviderUpdate{DefaultFromAddress: ptr("auth@acme.example")})
	if err != nil || upd.DefaultFromAddress != "auth@acme.example" {
		t.Fatalf("UpdateEmailProvider = %+v, %v", upd, err)
	}
	stored, _ := e.EmailProvider(tn.domain)
	creds, _ := stored["credentials"].(map[string]any)
	if creds["smtp_pass"] != pass {
		t.Errorf("the password sent at create is not stored: %v", creds["smtp_pass"] != nil)
	}

	if err := tn.client.DeleteEmailProvider(ctx); err != nil {
		t.Fatalf("DeleteEmailProvider: %v", err)
	}
	if err := tn.client.DeleteEmailProvider(ctx); err != nil {
		t.Fatalf("DeleteEmailProvider with none: %v, want success", err)
	}
	if _, ok := e.EmailProvider(tn.domain); ok {
		t.Error("provider still stored")
	}
}

func TestEmulatorEmailTemplates(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "templates.emulator.local")
	ctx := ctxT(t)
	// The platform refuses customized templates with its built-in provider.
	if _, err := tn.client.CreateEmailProvider(ctx, identity.EmailProviderCreate{
		Name: identity.EmailProviderSendGrid, Credentials: identity.EmailCredentials{APIKey: "SG.key"},
	}); err != nil {
		t.Fatalf("CreateEmailProvider: %v", err)
	}

	if _, err := tn.client.GetEmailTemplate(ctx, identity.TemplateResetEmail); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("GetEmailTemplate never created: %v, want ErrNotFound", err)
	}
	if _, err := tn.client.UpdateEmailTemplate(ctx, identity.TemplateResetEmail, identity.EmailTemplateUpdate{Subject: ptr("x")}); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("UpdateEmailTemplate never created: %v, want ErrNotFound", err)
	}
	created, err := tn.client.CreateEmailTemplate(ctx, identity.EmailTemplate{
		Template:             identity.TemplateResetEmail,
		Body:                 "<p>Reset: {{ url }}</p>",
		From:                 "security@acme.example",
		Subject:              "Reset your password",
		Syntax:               "liquid",
		ResultURL:            "https://acme.example/login",
		URLLifetimeInSeconds: ptr(3600),
		Enabled:              ptr(true),
	})
	if err != nil {
		t.Fatalf("CreateEmailTemplate: %v", err)
	}
	if created.Template != identity.TemplateResetEmail || created.URLLifetimeInSeconds == nil || *created.URLLifetimeInSeconds != 3600 {
		t.Errorf("created = %+v", created)
	}
	_, err = tn.client.CreateEmailTemplate(ctx, identity.EmailTemplate{Template: identity.TemplateResetEmail, Body: "x", Syntax: "liquid"})
	if !errors.Is(err, identity.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	upd, err := tn.client.UpdateEmailTemplate(ctx, identity.TemplateResetEmail, identity.EmailTemplateUpdate{
		URLLifetimeInSeconds: ptr(900),
		Subject:              ptr("Your reset link"),
	})
	if err != nil {
		t.Fatalf("UpdateEmailTemplate: %v", err)
	}
	got, err := tn.client.GetEmailTemplate(ctx, identity.TemplateResetEmail)
	if err != nil {
		t.Fatalf("GetEmailTemplate: %v", err)
	}
	for _, tpl := range []*identity.EmailTemplate{upd, got} {
		if *tpl.URLLifetimeInSeconds != 900 || tpl.Subject != "Your reset link" || tpl.From != "security@acme.example" {
			t.Errorf("template = %+v: want the patched lifetime and subject, the rest kept", tpl)
		}
	}
}

func TestEmulatorUsersCountAndTicket(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "users.emulator.local")
	ctx := ctxT(t)
	conn, err := tn.client.CreateConnection(ctx, identity.ConnectionCreate{Name: "db-one"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.client.CreateConnection(ctx, identity.ConnectionCreate{Name: "db-two"}); err != nil {
		t.Fatal(err)
	}
	var userID string
	for i, email := range []string{"a@acme.example", "b@acme.example", "c@acme.example"} {
		id := e.CreateUser(tn.domain, emulatortest.UserSeed{Connection: "db-one", Email: email, Password: "Passw0rd!long"})
		if i == 0 {
			userID = id
		}
	}
	e.CreateUser(tn.domain, emulatortest.UserSeed{Connection: "db-two", Email: "d@acme.example", Password: "Passw0rd!long"})

	for name, want := range map[string]int{"db-one": 3, "db-two": 1, "db-none": 0} {
		n, err := tn.client.CountUsersInConnection(ctx, name)
		if err != nil || n != want {
			t.Errorf("CountUsersInConnection(%s) = %d, %v; want %d", name, n, err, want)
		}
	}

	// The user id has a '|' that must be escaped in no path here, but the ticket body
	// carries it; both ways of naming the user work.
	for _, req := range []identity.PasswordChangeTicket{
		{UserID: userID, ResultURL: "https://acme.example/done", TTLSec: 600},
		{ConnectionID: conn.ID, Email: "b@acme.example"},
	} {
		url, err := tn.client.CreatePasswordChangeTicket(ctx, req)
		if err != nil {
			t.Fatalf("CreatePasswordChangeTicket: %v", err)
		}
		if !strings.HasPrefix(url, "https://"+tn.domain+"/u/reset-password?ticket=") {
			t.Errorf("ticket URL %q", url)
		}
	}
	_, err = tn.client.CreatePasswordChangeTicket(ctx, identity.PasswordChangeTicket{UserID: "auth0|000000000000000000000000"})
	if !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("ticket for an unknown user: %v, want ErrNotFound", err)
	}
}

func TestEmulatorCredentialErrors(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "creds.emulator.local")
	ctx := ctxT(t)

	wrong := tn.creds
	wrong.ClientSecret = "not-the-secret"
	_, err := tn.clientFor(t, wrong).GetTenantSettings(ctx)
	if !errors.Is(err, identity.ErrUnauthorized) {
		t.Errorf("wrong secret: %v, want ErrUnauthorized", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error echoes the secret: %v", err)
	}

	noGrant := e.MintClient(tn.domain)
	if _, err := tn.clientFor(t, noGrant).GetTenantSettings(ctx); !errors.Is(err, identity.ErrUnauthorized) {
		t.Errorf("client without a grant: %v, want ErrUnauthorized", err)
	}

	readOnly := e.MintClient(tn.domain, "read:tenant_settings")
	ro := tn.clientFor(t, readOnly)
	if _, err := ro.GetTenantSettings(ctx); err != nil {
		t.Fatalf("read with read scope: %v", err)
	}
	_, err = ro.PatchTenantSettings(ctx, identity.SettingsPatch{FriendlyName: ptr("x")})
	var ae *identity.APIError
	if !errors.Is(err, identity.ErrInsufficientScope) || !errors.As(err, &ae) || !strings.Contains(ae.Message, "update:tenant_settings") {
		t.Errorf("patch without the scope: %v, want ErrInsufficientScope naming update:tenant_settings", err)
	}
}

func TestEmulatorExpiredTokenIsRenewed(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "expiry.emulator.local")
	ctx := ctxT(t)
	if _, err := tn.client.GetTenantSettings(ctx); err != nil {
		t.Fatal(err)
	}
	// The platform's clock passes the token's expiry; the client's does not, so the
	// first call is refused with 401 and the client must fetch a new token once.
	e.AdvanceClock(25 * time.Hour)
	e.ResetRequests(tn.domain)
	if _, err := tn.client.GetTenantSettings(ctx); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	r := e.Requests(tn.domain)
	if r.Tokens() != 1 || r.Count("GET", "/api/v2/tenants/settings") != 2 {
		t.Errorf("requests = %v: want one refused read, one token, one read", r)
	}
}

func TestEmulatorInjectedFaultsAreRetried(t *testing.T) {
	e := emulatortest.Start(t, emulatortest.WithFaults(0.2, 0))
	tn := newTenant(t, e, "faults.emulator.local")
	ctx := ctxT(t)
	failures := func() float64 {
		return testutil.ToFloat64(tn.metrics.Requests.WithLabelValues("GetTenantSettings", "5xx"))
	}
	// Read until the retry path has been taken a few times (bounded).
	for i := 0; i < 300 && (i < 40 || failures() < 3); i++ {
		if _, err := tn.client.GetTenantSettings(ctx); err != nil {
			t.Fatalf("read %d under 20%% injected 5xx: %v", i, err)
		}
	}
	if n := failures(); n < 3 {
		t.Errorf("only %v injected 5xx seen: the retry path went untested", n)
	}
}

func TestEmulatorPoolKeepsOneClientPerTenant(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "pool.emulator.local")
	ctx := ctxT(t)
	pool := identity.NewPool(identity.Options{Metrics: tn.metrics})
	a, err := pool.Get(tn.config(tn.creds))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pool.Get(tn.config(tn.creds))
	if a != b {
		t.Fatal("two clients for the same tenant and credentials")
	}
	e.ResetRequests(tn.domain)
	for _, c := range []identity.Client{a, b, a} {
		if _, err := c.GetTenantSettings(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.Requests(tn.domain).Tokens(); n != 1 {
		t.Errorf("%d tokens fetched, want 1 shared", n)
	}

	rotated := e.MintClient(tn.domain, "read:tenant_settings")
	c, err := pool.Get(tn.config(rotated))
	if err != nil {
		t.Fatal(err)
	}
	if c == a || pool.Len() != 1 {
		t.Fatalf("after new credentials: same client %v, %d clients held", c == a, pool.Len())
	}
	if _, err := c.GetTenantSettings(ctx); err != nil {
		t.Fatalf("with the new credentials: %v", err)
	}
	if n := e.Requests(tn.domain).Tokens(); n != 2 {
		t.Errorf("%d tokens fetched, want a new one for the new credentials", n)
	}
	if st, ok := c.RateLimit(); !ok || st.Limit <= 0 {
		t.Errorf("RateLimit() = %+v, %v", st, ok)
	}
}

// TestEmulatorPacing200RequestsAtBurst10And5PerSecond is the acceptance test on
// the emulator: 200 requests from 4 concurrent callers to a tenant limited to a burst of
// 10 and 5 per second draw no 429 and take within 15% of (200-10)/5 = 38 s.
func TestEmulatorPacing200RequestsAtBurst10And5PerSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 40 s")
	}
	const (
		n         = 200
		burst     = 10
		perSecond = 5.0
		workers   = 4
	)
	e := emulatortest.Start(t, emulatortest.WithRateLimit(burst, perSecond))
	tn := newTenant(t, e, "paced.emulator.local")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				if _, err := tn.client.GetTenantSettings(ctx); err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if errp := failed.Load(); errp != nil {
		t.Fatalf("a request failed: %v", *errp)
	}
	bound := time.Duration(float64(n-burst) / perSecond * float64(time.Second))
	sent := e.Requests(tn.domain).Count("GET", "/api/v2/tenants/settings")
	limited := testutil.ToFloat64(tn.metrics.RateLimited.WithLabelValues("GetTenantSettings"))
	t.Logf("%d requests sent, %v answered 429, %v elapsed, bound %v (%.1f%% over)",
		sent, limited, elapsed.Round(time.Millisecond), bound, 100*(elapsed.Seconds()/bound.Seconds()-1))
	if limited != 0 || sent != n {
		t.Errorf("%v requests drew a 429 (%d sent for %d calls), want none", limited, sent, n)
	}
	if max := time.Duration(float64(bound) * 1.15); elapsed > max {
		t.Errorf("took %v, more than %v (bound %v + 15%%)", elapsed, max, bound)
	}
	if st, ok := tn.client.RateLimit(); !ok || st.Limit != burst {
		t.Errorf("RateLimit() = %+v, %v; want limit %d", st, ok, burst)
	}
}

// Another consumer of the tenant's budget (a script, another tool) can empty the
// bucket behind the client's back: the client then draws a 429, waits as the platform
// says, and succeeds.
func TestEmulatorWaitsOutA429CausedBySomeoneElse(t *testing.T) {
	e := emulatortest.Start(t, emulatortest.WithRateLimit(3, 2))
	tn := newTenant(t, e, "shared.emulator.local")
	ctx := ctxT(t)
	if _, err := tn.client.GetTenantSettings(ctx); err != nil {
		t.Fatal(err)
	}
	// Someone else spends the whole budget.
	other := e.HTTPClient()
	token := e.Token(tn.creds)
	for range 5 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.BaseURL(tn.domain)+"/api/v2/tenants/settings", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := other.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	start := time.Now()
	if _, err := tn.client.GetTenantSettings(ctx); err != nil {
		t.Fatalf("after someone else emptied the bucket: %v", err)
	}
	limited := testutil.ToFloat64(tn.metrics.RateLimited.WithLabelValues("GetTenantSettings"))
	t.Logf("%v 429s, %v to succeed", limited, time.Since(start).Round(time.Millisecond))
	if limited < 1 {
		t.Errorf("no 429 drawn: the bucket was not empty, the test proves nothing")
	}
}

func TestEmulatorGrantedScopesComeWithTheToken(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "grant.emulator.local")
	ctx := ctxT(t)
	partial := tn.clientFor(t, e.MintClient(tn.domain, "read:tenant_settings", "read:email_templates"))

	before := e.Requests(tn.domain)
	g, err := partial.GrantedScopes(ctx)
	if err != nil {
		t.Fatalf("GrantedScopes: %v", err)
	}
	if !g.Known || strings.Join(g.Scopes, " ") != "read:email_templates read:tenant_settings" {
		t.Fatalf("grant = %+v", g)
	}
	if m := g.Missing([]string{"read:tenant_settings", "update:tenant_settings"}); len(m) != 1 || m[0] != "update:tenant_settings" {
		t.Fatalf("missing = %v", m)
	}
	// Cached with the token: the calls that follow fetch no other.
	if _, err := partial.GetTenantSettings(ctx); err != nil {
		t.Fatalf("GetTenantSettings: %v", err)
	}
	if _, err := partial.GrantedScopes(ctx); err != nil {
		t.Fatalf("GrantedScopes: %v", err)
	}
	spent := e.Requests(tn.domain).Minus(before)
	if spent.Tokens() != 1 || spent.Total() != 2 {
		t.Fatalf("requests = %v, want one token and one read", spent)
	}

	// RenewGrant: the next call fetches a new token, and with it the grant as it is now.
	partial.RenewGrant(g)
	g2, err := partial.GrantedScopes(ctx)
	if err != nil {
		t.Fatalf("GrantedScopes: %v", err)
	}
	if got := e.Requests(tn.domain).Minus(before).Tokens(); got != 2 {
		t.Fatalf("tokens after RenewGrant = %d, want 2", got)
	}
	// A grant renewed twice (a stale Grant) drops nothing.
	partial.RenewGrant(g)
	if _, err := partial.GrantedScopes(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Requests(tn.domain).Minus(before).Tokens(); got != 2 {
		t.Fatalf("tokens after a stale RenewGrant = %d, want 2", got)
	}
	if strings.Join(g2.Scopes, " ") != strings.Join(g.Scopes, " ") {
		t.Fatalf("grant changed: %v", g2.Scopes)
	}
}
