package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

func TestRateLimitsArePerTenantWithTheRealHeadersAnd429Body(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithRateLimit(5, 2))
	a := newTenant(t, e, "limited.emulator.local")
	b := newTenant(t, e, "neighbour.emulator.local")
	for i := 4; i >= 0; i-- {
		r := a.do("GET", "/api/v2/tenants/settings", nil)
		g.Expect(r.Status).To(Equal(200))
		g.Expect(r.Header.Get("X-RateLimit-Limit")).To(Equal("5"))
		g.Expect(r.Header.Get("X-RateLimit-Remaining")).To(Equal(strconv.Itoa(i)))
		reset, err := strconv.ParseInt(r.Header.Get("X-RateLimit-Reset"), 10, 64)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(time.Unix(reset, 0)).To(BeTemporally(">=", time.Now().Add(-time.Second)))
		g.Expect(time.Unix(reset, 0)).To(BeTemporally("<=", time.Now().Add(4*time.Second)))
	}
	r := a.do("GET", "/api/v2/tenants/settings", nil)
	g.Expect(r.Status).To(Equal(429))
	g.Expect(r.JSON()).To(Equal(map[string]any{"statusCode": 429.0, "error": "Too Many Requests", "message": "Global limit has been reached", "errorCode": "too_many_requests"}))
	g.Expect(r.Header.Get("X-RateLimit-Remaining")).To(Equal("0"))
	g.Expect(r.Header.Get("Retry-After")).To(Equal("1"))

	g.Expect(b.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200), "another tenant has its own bucket")
	g.Expect(e.Token(a.creds)).NotTo(BeEmpty(), "the Authentication API has its own bucket")
	g.Expect(e.Requests(a.domain).Count("GET", "/api/v2/tenants/settings")).To(Equal(6), "refused requests are counted too")

	time.Sleep(550 * time.Millisecond)
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200), "the bucket refills at the configured rate")

	e.SetRateLimit(a.domain, 0, 0)
	for i := 0; i < 20; i++ {
		g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200))
	}
	r = a.do("GET", "/api/v2/tenants/settings", nil)
	g.Expect(r.Header.Get("X-RateLimit-Limit")).NotTo(BeEmpty(), "headers are sent with limits off too")
}

func TestInjectedFaultsAnswer5xxWithoutChangingState(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "faulty.emulator.local")
	e.SetFaults(1, 0)
	for i := 0; i < 10; i++ {
		r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"friendly_name": "changed"})
		g.Expect(r.Status).To(BeElementOf(500, 502, 503))
		g.Expect(r.JSON()).To(HaveKeyWithValue("statusCode", float64(r.Status)))
	}
	g.Expect(e.Settings(a.domain)).NotTo(HaveKeyWithValue("friendly_name", "changed"))

	e.SetFaults(0.3, 0)
	failed := 0
	for i := 0; i < 200; i++ {
		if a.do("GET", "/api/v2/tenants/settings", nil).Status >= 500 {
			failed++
		}
	}
	g.Expect(failed).To(BeNumerically("~", 60, 30), "about the configured share fails")

	e.SetFaults(0, 150*time.Millisecond)
	start := time.Now()
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200))
	g.Expect(time.Since(start)).To(BeNumerically(">=", 150*time.Millisecond))
}

func TestADownTenantAnswers503WhileOthersAreServed(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	down := newTenant(t, e, "down.emulator.local")
	up := newTenant(t, e, "up.emulator.local")
	e.SetTenantDown(down.domain, true)
	r := down.do("PATCH", "/api/v2/tenants/settings", map[string]any{"friendly_name": "changed"})
	g.Expect(r.Status).To(Equal(503))
	g.Expect(r.Header.Get("X-RateLimit-Limit")).To(BeEmpty(), "a down tenant's front door knows no budget")
	g.Expect(e.Settings(down.domain)).NotTo(HaveKeyWithValue("friendly_name", "changed"))
	g.Expect(up.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200), "another tenant is served")

	e.SetTenantDown(down.domain, false)
	g.Expect(down.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200))
}

func TestALostReplyCarriesTheRequestOutAndAnswers503(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "lostreply.emulator.local")
	e.SetLostReplies(1)
	r := a.do("POST", "/api/v2/connections", map[string]any{"name": "db", "strategy": "auth0"})
	g.Expect(r.Status).To(Equal(503))
	_, exists := e.Connection(a.domain, "db")
	g.Expect(exists).To(BeTrue(), "the create happened although the client saw a 5xx")
	e.SetLostReplies(0)
	r = a.do("POST", "/api/v2/connections", map[string]any{"name": "db", "strategy": "auth0"})
	g.Expect(r.Status).To(Equal(409), "a client that retries meets a conflict and must adopt the existing object")
}

// admin calls the admin API over HTTPS as a script would.
func admin(t *testing.T, e *emulatortest.Emulator, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://127.0.0.1"+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestTheAdminAPIDrivesTheEmulatorFromOutside(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t, emulatortest.WithRateLimit(1, 0.001), emulatortest.WithFaults(1, 0))
	tokenBytes, err := os.ReadFile(filepath.Join(e.DataDir(), "admin-token"))
	g.Expect(err).NotTo(HaveOccurred())
	tok := strings.TrimSpace(string(tokenBytes))

	status, _ := admin(t, e, "", "GET", "/admin/v1/tenants", nil)
	g.Expect(status).To(Equal(401), "the admin API needs the token from the data directory")

	status, body := admin(t, e, tok, "POST", "/admin/v1/tenants", map[string]any{"domain": "scripted.emulator.local", "legacy": true})
	g.Expect(status).To(Equal(201), string(body))
	var creds emulatortest.Credentials
	g.Expect(json.Unmarshal(body, &creds)).To(Succeed())
	onDisk, err := os.ReadFile(filepath.Join(e.DataDir(), "tenants", "scripted.emulator.local.json"))
	g.Expect(err).NotTo(HaveOccurred())
	var fileCreds emulatortest.Credentials
	g.Expect(json.Unmarshal(onDisk, &fileCreds)).To(Succeed())
	// Compared without printing: a failure message must not show the secret.
	g.Expect(reflect.DeepEqual(fileCreds, creds)).To(BeTrue(), "a script finds the credentials in DATA/tenants/<domain>.json")
	status, _ = admin(t, e, tok, "POST", "/admin/v1/tenants", map[string]any{"domain": "scripted.emulator.local"})
	g.Expect(status).To(Equal(409))

	// Rate limits and faults never apply to the admin API.
	for i := 0; i < 5; i++ {
		status, _ = admin(t, e, tok, "GET", "/admin/v1/tenants/scripted.emulator.local/settings", nil)
		g.Expect(status).To(Equal(200))
	}
	status, _ = admin(t, e, tok, "PUT", "/admin/v1/faults", map[string]any{"error_rate": 0, "latency": "0s"})
	g.Expect(status).To(Equal(200))
	status, _ = admin(t, e, tok, "PUT", "/admin/v1/tenants/scripted.emulator.local/rate-limit", map[string]any{"burst": 2, "per_second": 0.001})
	g.Expect(status).To(Equal(200))

	status, body = admin(t, e, tok, "POST", "/admin/v1/tenants/scripted.emulator.local/clients", map[string]any{"scopes": []string{"read:tenant_settings"}})
	g.Expect(status).To(Equal(201))
	var reader emulatortest.Credentials
	g.Expect(json.Unmarshal(body, &reader)).To(Succeed())
	a := &api{t: t, e: e, domain: creds.Domain, creds: creds, http: e.HTTPClient()}
	a.token = e.Token(reader)
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200))
	g.Expect(a.do("PATCH", "/api/v2/tenants/settings", map[string]any{}).Status).To(Equal(403), "the minted client has only its scope")
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(429), "the tenant's own limit of 2")

	status, body = admin(t, e, tok, "PUT", "/admin/v1/tenants/scripted.emulator.local/refused-flags", []string{"enable_sso"})
	g.Expect(status).To(Equal(200), string(body))
	status, body = admin(t, e, tok, "PATCH", "/admin/v1/tenants/scripted.emulator.local/settings", map[string]any{"flags": map[string]any{"enable_sso": false}})
	g.Expect(status).To(Equal(200), "the admin API may set any flag")
	g.Expect(e.Flags(creds.Domain)).To(HaveKeyWithValue("enable_sso", false))
	g.Expect(e.Flags(creds.Domain)).To(HaveKeyWithValue("change_pwd_flow_v1", true), "created as a legacy tenant")

	status, body = admin(t, e, tok, "GET", "/admin/v1/tenants/scripted.emulator.local/requests", nil)
	g.Expect(status).To(Equal(200))
	var counts map[string]int
	g.Expect(json.Unmarshal(body, &counts)).To(Succeed())
	g.Expect(counts).To(HaveKeyWithValue("GET /api/v2/tenants/settings", 2))
	g.Expect(counts).To(HaveKeyWithValue("PATCH /api/v2/tenants/settings", 1))

	status, body = admin(t, e, tok, "GET", "/admin/v1/tenants/scripted.emulator.local/outbox", nil)
	g.Expect(status).To(Equal(200))
	g.Expect(strings.TrimSpace(string(body))).To(Equal("[]"))
	status, _ = admin(t, e, tok, "GET", "/admin/v1/tenants/nowhere.emulator.local/outbox", nil)
	g.Expect(status).To(Equal(404))
}

func TestEverythingSurvivesARestart(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "durable.emulator.local")
	a.createDatabase("db", map[string]any{"configuration": map[string]any{"K": "v"}, "passwordPolicy": "low"})
	userID := e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "ola@example.com", Password: "Passw0rd!x"})
	a.do("POST", "/api/v2/emails/provider", map[string]any{"name": "sendgrid", "credentials": map[string]any{"api_key": "k"}})
	a.do("POST", "/api/v2/email-templates", map[string]any{"template": "reset_email", "subject": "Reset", "urlLifetimeInSeconds": 7200})
	a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"friendly_name": "Durable", "flags": map[string]any{"enable_sso": false}})
	e.RefuseFlags(a.domain, "enable_apis_section")
	e.SetRateLimit(a.domain, 1000, 1000)
	a.requestReset("db", "ola@example.com")
	link := a.lastLink("ola@example.com")
	ca := e.CACertPEM()
	before := map[string]any{
		"settings": e.Settings(a.domain), "connection": a.do("GET", "/api/v2/connections?name=db", nil).Array(),
		"user":     a.do("GET", "/api/v2/users/auth0%7C"+strings.TrimPrefix(userID, "auth0|"), nil).JSON(),
		"provider": a.do("GET", "/api/v2/emails/provider?fields=name,credentials", nil).JSON(),
		"template": a.do("GET", "/api/v2/email-templates/reset_email", nil).JSON(),
	}

	e.Restart()

	g.Expect(e.CACertPEM()).To(Equal(ca), "clients keep trusting the same CA")
	after := map[string]any{
		"settings": e.Settings(a.domain), "connection": a.do("GET", "/api/v2/connections?name=db", nil).Array(),
		"user":     a.do("GET", "/api/v2/users/auth0%7C"+strings.TrimPrefix(userID, "auth0|"), nil).JSON(),
		"provider": a.do("GET", "/api/v2/emails/provider?fields=name,credentials", nil).JSON(),
		"template": a.do("GET", "/api/v2/email-templates/reset_email", nil).JSON(),
	}
	g.Expect(after).To(Equal(before), "the token issued before the restart still works, and the state is the same")
	stored, _ := e.Connection(a.domain, "db")
	g.Expect(stored["options"].(map[string]any)["configuration"]).To(Equal(map[string]any{"K": "v"}), "configuration can still be opened")
	g.Expect(e.Outbox(a.domain)).To(HaveLen(1))
	r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"flags": map[string]any{"enable_apis_section": true}})
	g.Expect(r.Status).To(Equal(400), "refused flags persist")
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).Header.Get("X-RateLimit-Limit")).To(Equal("1000"), "a tenant's own limit persists")
	g.Expect(a.submitReset(link, "After-restart1").Status).To(Equal(200), "links survive")
	g.Expect(a.login("db", "ola@example.com", "After-restart1").Status).To(Equal(200))
}

func TestTenantsAreAddressedByHostAndSNI(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "host.emulator.local")
	newTenant(t, e, "other-host.emulator.local")
	dial := func(sni string) (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.Addr(), &tls.Config{ServerName: sni, RootCAs: e.CertPool()})
	}
	t.Run("each tenant's certificate verifies for its domain", func(t *testing.T) {
		g := NewWithT(t)
		c, err := dial("host.emulator.local")
		g.Expect(err).NotTo(HaveOccurred())
		c.Close()
		c, err = dial("127.0.0.1")
		g.Expect(err).NotTo(HaveOccurred(), "the loopback address has a certificate too")
		c.Close()
	})
	t.Run("an unknown domain gets no certificate", func(t *testing.T) {
		g := NewWithT(t)
		_, err := dial("unknown.emulator.local")
		g.Expect(err).To(HaveOccurred())
	})
	t.Run("a Host that differs from SNI is misdirected", func(t *testing.T) {
		g := NewWithT(t)
		c, err := dial("host.emulator.local")
		g.Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		_, _ = c.Write([]byte("GET /.well-known/jwks.json HTTP/1.1\r\nHost: other-host.emulator.local\r\nConnection: close\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(421))
	})
	t.Run("an unknown path answers the platform's JSON 404", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("GET", "/api/v2/nothing-here", nil)
		g.Expect(r.Status).To(Equal(404))
		g.Expect(r.Header.Get("Content-Type")).To(Equal("application/json; charset=utf-8"))
	})
}
