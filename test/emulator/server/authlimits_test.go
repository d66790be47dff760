package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
	"github.com/tenantops/identity-operator/test/emulator/server"
)

// from returns a copy of a whose requests come from another loopback
// address, another IP to the per-IP limits.
func (a *api) from(ip string) *api {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	addr := a.e.Addr()
	c := *a
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: a.e.CertPool(), MinVersion: tls.VersionTLS12},
	}}
	return &c
}

// expectLimited checks a 429 of the Authentication API: the OAuth error
// body, the X-RateLimit-* headers of the endpoint's bucket and Retry-After.
func expectLimited(g Gomega, r response, limit int, retryAfter string) {
	g.ExpectWithOffset(1, r.Status).To(Equal(429), string(r.Body))
	g.ExpectWithOffset(1, r.JSON()).To(Equal(map[string]any{"error": "too_many_requests",
		"error_description": "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers."}))
	g.ExpectWithOffset(1, r.Header.Get("X-RateLimit-Limit")).To(Equal(strconv.Itoa(limit)))
	g.ExpectWithOffset(1, r.Header.Get("X-RateLimit-Remaining")).To(Equal("0"))
	g.ExpectWithOffset(1, r.Header.Get("Retry-After")).To(Equal(retryAfter))
}

// The documented tables: https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/rate-limit-configurations/free-public
// (Free) and .../rate-limit-policy/authentication-api-endpoint-rate-limits
// (production tenants of paying customers).
func TestThePlanPresetsAreTheDocumentedTables(t *testing.T) {
	g := NewWithT(t)
	perMinute := func(n float64) float64 { return n / 60 }
	g.Expect(server.FreePlanAuthLimits).To(Equal(server.AuthEndpointLimits{
		Token:                   server.RateLimit{Burst: 30, PerSecond: 30},
		CrossOriginAuthenticate: server.RateLimit{Burst: 5, PerSecond: 5},
		JWKS:                    server.RateLimit{Burst: 20, PerSecond: 20},
		UserInfo:                server.RateLimit{Burst: 10, PerSecond: perMinute(5)},
		Signup:                  server.RateLimit{Burst: 50, PerSecond: perMinute(50)},
		ChangePassword:          server.RateLimit{Burst: 10, PerSecond: perMinute(1)},
	}))
	g.Expect(server.PaidPlanAuthLimits.Token.Off()).To(BeTrue(), "paying tenants' /oauth/token is under the tenant-wide limit only")
	g.Expect(server.PaidPlanAuthLimits.ChangePassword).To(Equal(server.FreePlanAuthLimits.ChangePassword))
}

func TestTheTokenEndpointHasALimitOfItsOwn(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithAuthEndpointLimits(server.AuthEndpointLimits{Token: server.RateLimit{Burst: 3, PerSecond: 1}}))
	a := newTenant(t, e, "token-limit.emulator.local") // one token taken here
	other := newTenant(t, e, "token-other.emulator.local")
	for _, want := range []string{"1", "0"} {
		r := a.clientCredentialsToken(a.creds.ClientID, a.creds.ClientSecret)
		g.Expect(r.Status).To(Equal(200))
		g.Expect(r.Header.Get("X-RateLimit-Limit")).To(Equal("3"), "the headers are the endpoint's bucket")
		g.Expect(r.Header.Get("X-RateLimit-Remaining")).To(Equal(want))
	}
	expectLimited(g, a.clientCredentialsToken(a.creds.ClientID, a.creds.ClientSecret), 3, "1")
	g.Expect(other.clientCredentialsToken(other.creds.ClientID, other.creds.ClientSecret).Status).To(Equal(200), "limits are per tenant")
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200), "the Management API is not affected")
	time.Sleep(1100 * time.Millisecond)
	g.Expect(a.clientCredentialsToken(a.creds.ClientID, a.creds.ClientSecret).Status).To(Equal(200), "the bucket refills")
}

// change_password: "From an IP address to a unique email address".
func TestChangePasswordIsLimitedPerIPAndEmail(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithAuthEndpointLimits(server.AuthEndpointLimits{ChangePassword: server.RateLimit{Burst: 2, PerSecond: 1.0 / 60}}))
	a := newTenant(t, e, "reset-limit.emulator.local")
	a.createDatabase("db", nil)
	for i := 0; i < 2; i++ {
		r := a.requestReset("db", "ana@example.com")
		g.Expect(r.Status).To(Equal(200))
		g.Expect(r.Header.Get("X-RateLimit-Limit")).To(Equal("2"))
	}
	expectLimited(g, a.requestReset("db", "ANA@example.com"), 2, "60")
	g.Expect(a.requestReset("db", "bo@example.com").Status).To(Equal(200), "another email from the same IP")
	g.Expect(a.from("127.0.0.2").requestReset("db", "ana@example.com").Status).To(Equal(200), "the same email from another IP")
}

// signup: "From an IP address".
func TestSignupIsLimitedPerIP(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithAuthEndpointLimits(server.AuthEndpointLimits{Signup: server.RateLimit{Burst: 2, PerSecond: 50.0 / 60}}))
	a := newTenant(t, e, "signup-limit.emulator.local")
	a.createDatabase("db", map[string]any{"passwordPolicy": "none"})
	signup := func(a *api, email string) response {
		return a.form("/dbconnections/signup", url.Values{"client_id": {a.creds.ClientID}, "connection": {"db"}, "email": {email}, "password": {"x"}})
	}
	g.Expect(signup(a, "one@example.com").Status).To(Equal(200))
	g.Expect(signup(a, "two@example.com").Status).To(Equal(200))
	expectLimited(g, signup(a, "three@example.com"), 2, "2")
	g.Expect(signup(a.from("127.0.0.3"), "three@example.com").Status).To(Equal(200), "another IP")
}

// /userinfo: "To a unique user ID".
func TestUserinfoIsLimitedPerUser(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithAuthEndpointLimits(server.AuthEndpointLimits{UserInfo: server.RateLimit{Burst: 2, PerSecond: 5.0 / 60}}))
	a := newTenant(t, e, "userinfo-limit.emulator.local")
	a.createDatabase("db", nil)
	tokens := map[string]string{}
	for _, email := range []string{"ana@example.com", "bo@example.com"} {
		e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: email, Password: "Passw0rd!x"})
		tokens[email] = a.login("db", email, "Passw0rd!x", "openid", "email").secret("access_token")
	}
	userinfo := func(tok string) response {
		req, _ := http.NewRequest("GET", "https://"+a.domain+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return a.send(req)
	}
	g.Expect(userinfo(tokens["ana@example.com"]).Status).To(Equal(200))
	g.Expect(userinfo(tokens["ana@example.com"]).Status).To(Equal(200))
	expectLimited(g, userinfo(tokens["ana@example.com"]), 2, "12")
	g.Expect(userinfo(tokens["bo@example.com"]).Status).To(Equal(200), "another user")
}

func TestCrossOriginAuthenticationChecksTheClientTheOriginAndTheLimit(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithAuthEndpointLimits(server.AuthEndpointLimits{CrossOriginAuthenticate: server.RateLimit{Burst: 4, PerSecond: 1}}))
	a := newTenant(t, e, "co.emulator.local")
	a.createDatabase("db", nil)
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "ana@example.com", Password: "Passw0rd!x"})
	spa := a.do("POST", "/api/v2/clients", map[string]any{"name": "SPA", "app_type": "spa", "cross_origin_authentication": true,
		"web_origins": []any{"https://app.example"}}).JSON()["client_id"].(string)
	closed := a.do("POST", "/api/v2/clients", map[string]any{"name": "Closed", "app_type": "spa"}).JSON()["client_id"].(string)
	co := func(client, origin, password string) response {
		req, _ := http.NewRequest("POST", "https://"+a.domain+"/co/authenticate", jsonBody(map[string]any{"client_id": client,
			"credential_type": "http://auth0.com/credential-type/password", "username": "ana@example.com", "password": password, "realm": "db"}))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		return a.send(req)
	}
	r := co(spa, "https://app.example", "Passw0rd!x")
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKey("login_ticket"))
	g.Expect(r.JSON()).To(HaveKey("co_verifier"))
	g.Expect(r.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://app.example"))
	r = co(spa, "https://app.example", "wrong")
	g.Expect(r.Status).To(Equal(403))
	g.Expect(r.JSON()).To(HaveKeyWithValue("error", "access_denied"))
	g.Expect(co(spa, "https://evil.example", "Passw0rd!x").Status).To(Equal(403))
	g.Expect(co(closed, "https://app.example", "Passw0rd!x").JSON()).To(HaveKeyWithValue("error", "unauthorized_client"))
	expectLimited(g, co(spa, "https://app.example", "Passw0rd!x"), 4, "1")
}

func TestAuthEndpointLimitsAreOffUnlessConfiguredAndCanBeChangedLive(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "live-limits.emulator.local")
	a.createDatabase("db", nil)
	for i := 0; i < 15; i++ {
		g.Expect(a.requestReset("db", "ana@example.com").Status).To(Equal(200))
	}
	tok := e.Server().AdminToken()
	status, body := admin(t, e, tok, "PUT", "/admin/v1/auth-endpoint-limits", "free")
	g.Expect(status).To(Equal(200), string(body))
	g.Expect(e.Server().AuthEndpointLimits()).To(Equal(server.FreePlanAuthLimits))
	for i := 0; i < 10; i++ {
		g.Expect(a.requestReset("db", "ana@example.com").Status).To(Equal(200))
	}
	expectLimited(g, a.requestReset("db", "ana@example.com"), 10, "60")
	status, _ = admin(t, e, tok, "PUT", "/admin/v1/auth-endpoint-limits", "gold")
	g.Expect(status).To(Equal(400))
	e.SetAuthEndpointLimits(server.AuthEndpointLimits{})
	g.Expect(a.requestReset("db", "ana@example.com").Status).To(Equal(200))
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
