package server_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// verifyJWT checks token against the tenant's JWKS and returns its claims.
func verifyJWT(t *testing.T, a *api, token string) (map[string]any, map[string]any) {
	t.Helper()
	g := NewWithT(t)
	r := a.with("").do("GET", "/.well-known/jwks.json", nil)
	g.Expect(r.Status).To(Equal(200))
	var set struct {
		Keys []struct{ Kid, Kty, Alg, N, E string }
	}
	g.Expect(json.Unmarshal(r.Body, &set)).To(Succeed())
	parts := strings.Split(token, ".")
	g.Expect(parts).To(HaveLen(3))
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		g.Expect(err).NotTo(HaveOccurred())
		return b
	}
	var hdr, claims map[string]any
	g.Expect(json.Unmarshal(dec(parts[0]), &hdr)).To(Succeed())
	g.Expect(json.Unmarshal(dec(parts[1]), &claims)).To(Succeed())
	g.Expect(hdr).To(HaveKeyWithValue("alg", "RS256"))
	var key *rsa.PublicKey
	for _, k := range set.Keys {
		if k.Kid == hdr["kid"] {
			key = &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k.N)), E: int(new(big.Int).SetBytes(dec(k.E)).Int64())}
		}
	}
	g.Expect(key).NotTo(BeNil(), "the token's kid is in the JWKS")
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	g.Expect(rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], dec(parts[2]))).To(Succeed())
	return hdr, claims
}

func TestClientCredentialsTokenIsAnRS256JWTWithTheReferenceClaims(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "claims.emulator.local")
	r := a.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {a.creds.ClientID},
		"client_secret": {a.creds.ClientSecret}, "audience": {"https://claims.emulator.local/api/v2/"}})
	g.Expect(r.Status).To(Equal(200))
	body := r.JSON()
	g.Expect(body).To(HaveKeyWithValue("token_type", "Bearer"))
	g.Expect(body).To(HaveKeyWithValue("expires_in", 86400.0))
	_, c := verifyJWT(t, a, r.secret("access_token"))
	g.Expect(c).To(HaveKeyWithValue("iss", "https://claims.emulator.local/"))
	g.Expect(c).To(HaveKeyWithValue("sub", a.creds.ClientID+"@clients"))
	g.Expect(c).To(HaveKeyWithValue("aud", "https://claims.emulator.local/api/v2/"))
	g.Expect(c).To(HaveKeyWithValue("gty", "client-credentials"))
	g.Expect(c).To(HaveKeyWithValue("azp", a.creds.ClientID))
	g.Expect(c["scope"]).To(Equal(body["scope"]))
	g.Expect(strings.Fields(c["scope"].(string))).To(ContainElements("read:tenant_settings", "read:user_idp_tokens"))
	g.Expect(c["exp"].(float64) - c["iat"].(float64)).To(Equal(86400.0))
	g.Expect(time.Unix(int64(c["iat"].(float64)), 0)).To(BeTemporally("~", time.Now(), 5*time.Second))
}

func TestTokenEndpointAcceptsFormJSONAndBasicAuth(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "grants.emulator.local")
	aud := "https://grants.emulator.local/api/v2/"
	cases := map[string]func() *http.Request{
		"form with credentials in the body": func() *http.Request {
			v := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.creds.ClientID}, "client_secret": {a.creds.ClientSecret}, "audience": {aud}}
			r, _ := http.NewRequest("POST", "https://grants.emulator.local/oauth/token", strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		},
		"JSON with credentials in the body": func() *http.Request {
			b, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": a.creds.ClientID, "client_secret": a.creds.ClientSecret, "audience": aud})
			r, _ := http.NewRequest("POST", "https://grants.emulator.local/oauth/token", strings.NewReader(string(b)+"\n"))
			r.Header.Set("Content-Type", "application/json")
			return r
		},
		"form with HTTP Basic": func() *http.Request {
			v := url.Values{"grant_type": {"client_credentials"}, "audience": {aud}}
			r, _ := http.NewRequest("POST", "https://grants.emulator.local/oauth/token", strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(url.QueryEscape(a.creds.ClientID), url.QueryEscape(a.creds.ClientSecret))
			return r
		},
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.send(req())
			g.Expect(r.Status).To(Equal(200), string(r.Body))
			g.Expect(r.JSON()).To(HaveKey("access_token"))
		})
	}
}

func TestTokenEndpointAnswersThePlatformsErrors(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "errors.emulator.local")
	other := e.CreateTenant("other.emulator.local")
	noGrant := e.MintClient(a.domain)
	reader := e.MintClient(a.domain, "read:users")
	ccOnly := e.MintClientWithGrants(a.domain, []string{"client_credentials"}, "read:users")
	aud := "https://errors.emulator.local/api/v2/"
	cases := []struct {
		name         string
		form         url.Values
		status       int
		code, detail string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {a.creds.ClientID}, "client_secret": {"nope"}, "audience": {aud}}, 401, "access_denied", "Unauthorized"},
		{"client of another tenant", url.Values{"grant_type": {"client_credentials"}, "client_id": {other.ClientID}, "client_secret": {other.ClientSecret}, "audience": {aud}}, 401, "access_denied", "Unauthorized"},
		{"unknown audience", url.Values{"grant_type": {"client_credentials"}, "client_id": {a.creds.ClientID}, "client_secret": {a.creds.ClientSecret}, "audience": {"https://api.example/"}}, 403, "access_denied", "Service not enabled within domain: https://api.example/"},
		{"client without a grant for the API", url.Values{"grant_type": {"client_credentials"}, "client_id": {noGrant.ClientID}, "client_secret": {noGrant.ClientSecret}, "audience": {aud}}, 403, "access_denied", `Client is not authorized to access "` + aud + `"`},
		{"scope the client was not granted", url.Values{"grant_type": {"client_credentials"}, "client_id": {reader.ClientID}, "client_secret": {reader.ClientSecret}, "audience": {aud}, "scope": {"read:users delete:users"}}, 403, "access_denied", "Client has not been granted scopes: delete:users"},
		{"grant type the client may not use", url.Values{"grant_type": {"password"}, "client_id": {ccOnly.ClientID}, "client_secret": {ccOnly.ClientSecret}, "username": {"u"}, "password": {"p"}}, 403, "unauthorized_client", "Grant type 'password' not allowed for the client."},
		{"unsupported grant type", url.Values{"grant_type": {"implicit"}, "client_id": {a.creds.ClientID}, "client_secret": {a.creds.ClientSecret}}, 400, "unsupported_grant_type", "Unsupported grant type: implicit"},
		{"password grant without a default directory", url.Values{"grant_type": {"password"}, "client_id": {a.creds.ClientID}, "client_secret": {a.creds.ClientSecret}, "username": {"u"}, "password": {"p"}}, 500, "server_error", "Authorization server not configured with default connection."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.form("/oauth/token", c.form)
			g.Expect(r.Status).To(Equal(c.status), string(r.Body))
			g.Expect(r.JSON()).To(HaveKeyWithValue("error", c.code))
			g.Expect(r.JSON()["error_description"]).To(HavePrefix(c.detail))
		})
	}
	t.Run("a minted client with a scope gets exactly that scope", func(t *testing.T) {
		g := NewWithT(t)
		_, c := verifyJWT(t, a, e.Token(reader))
		g.Expect(c).To(HaveKeyWithValue("scope", "read:users"))
	})
}

func TestManagementAPIAnswers401WithWWWAuthenticate(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "authn.emulator.local")
	b := newTenant(t, e, "foreign.emulator.local")
	cases := []struct{ name, token, message string }{
		{"no token", "", "Missing authentication"},
		{"garbage token", "not.a.jwt", "Invalid token"},
		{"tampered token", a.token[:len(a.token)-4] + "AAAA", "Invalid token"},
		{"another tenant's token", b.token, "Invalid token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.with(c.token).do("GET", "/api/v2/tenants/settings", nil)
			g.Expect(r.Status).To(Equal(401))
			g.Expect(r.JSON()).To(HaveKeyWithValue("statusCode", 401.0))
			g.Expect(r.JSON()).To(HaveKeyWithValue("error", "Unauthorized"))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", c.message))
			g.Expect(r.Header.Get("WWW-Authenticate")).To(HavePrefix(`Bearer realm="https://authn.emulator.local/api/v2/"`))
		})
	}
	t.Run("expired token", func(t *testing.T) {
		g := NewWithT(t)
		e.AdvanceClock(86401 * time.Second)
		r := a.do("GET", "/api/v2/tenants/settings", nil)
		g.Expect(r.Status).To(Equal(401))
		g.Expect(r.JSON()).To(HaveKeyWithValue("message", "Expired token received for JSON Web Token validation"))
		g.Expect(r.Header.Get("WWW-Authenticate")).To(ContainSubstring(`error="invalid_token"`))
	})
}

func TestEveryManagementEndpointChecksItsScope(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "scopes.emulator.local")
	// A client with one unrelated scope reaches every endpoint's scope check.
	weak := a.with(e.Token(e.MintClient(a.domain, "read:email_templates")))
	cases := []struct{ method, path, scope string }{
		{"GET", "/api/v2/tenants/settings", "read:tenant_settings"},
		{"PATCH", "/api/v2/tenants/settings", "update:tenant_settings"},
		{"GET", "/api/v2/connections", "read:connections"},
		{"POST", "/api/v2/connections", "create:connections"},
		{"GET", "/api/v2/connections/con_x", "read:connections"},
		{"PATCH", "/api/v2/connections/con_x", "update:connections"},
		{"DELETE", "/api/v2/connections/con_x", "delete:connections"},
		{"GET", "/api/v2/emails/provider", "read:email_provider"},
		{"POST", "/api/v2/emails/provider", "create:email_provider"},
		{"PATCH", "/api/v2/emails/provider", "update:email_provider"},
		{"DELETE", "/api/v2/emails/provider", "delete:email_provider"},
		{"POST", "/api/v2/email-templates", "create:email_templates"},
		{"PATCH", "/api/v2/email-templates/reset_email", "update:email_templates"},
		{"PUT", "/api/v2/email-templates/reset_email", "update:email_templates"},
		{"POST", "/api/v2/tickets/password-change", "create:user_tickets"},
		{"GET", "/api/v2/users", "read:users"},
		{"GET", "/api/v2/users/auth0%7Cabc", "read:users"},
		{"PATCH", "/api/v2/users/auth0%7Cabc", "update:users"},
		{"DELETE", "/api/v2/users/auth0%7Cabc", "delete:users"},
		{"GET", "/api/v2/users-by-email?email=a@b.c", "read:users"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			g := NewWithT(t)
			var body any
			if c.method != "GET" && c.method != "DELETE" {
				body = map[string]any{}
			}
			r := weak.do(c.method, c.path, body)
			g.Expect(r.Status).To(Equal(403), string(r.Body))
			g.Expect(r.JSON()).To(Equal(map[string]any{"statusCode": 403.0, "error": "Forbidden",
				"message": "Insufficient scope, expected any of: " + c.scope, "errorCode": "insufficient_scope"}))
		})
	}
	t.Run("the template reader may read templates", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(weak.do("GET", "/api/v2/email-templates/reset_email", nil).Status).To(Equal(404))
	})
}
