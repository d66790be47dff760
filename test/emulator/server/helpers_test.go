package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// api talks to one tenant over real HTTPS, as a client application would.
type api struct {
	t      testing.TB
	e      *emulatortest.Emulator
	domain string
	creds  emulatortest.Credentials
	token  string
	http   *http.Client
}

// newTenant starts a tenant on e and gets a token with every scope.
func newTenant(t testing.TB, e *emulatortest.Emulator, domain string, opts ...emulatortest.TenantOption) *api {
	t.Helper()
	creds := e.CreateTenant(domain, opts...)
	return &api{t: t, e: e, domain: domain, creds: creds, token: e.Token(creds), http: e.HTTPClient()}
}

// with returns a copy of a that uses another token.
func (a *api) with(token string) *api { c := *a; c.token = token; return &c }

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// secretKeys are top-level answer fields that must never reach test output,
// not even in a failure message: JSON() masks them, secret() reads them.
var secretKeys = []string{"access_token", "id_token", "refresh_token", "client_secret"}

// JSON is the answer object with its secrets masked.
func (r response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	for _, k := range secretKeys {
		if _, ok := m[k]; ok {
			m[k] = "<masked>"
		}
	}
	return m
}

// secret reads one secret field of the answer.
func (r response) secret(key string) string {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	s, _ := m[key].(string)
	return s
}

func (r response) Array() []any {
	var a []any
	_ = json.Unmarshal(r.Body, &a)
	return a
}

// do sends a JSON request (body nil: none) with the bearer token.
func (a *api) do(method, path string, body any) response {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(append(b, '\n'))
	}
	req, err := http.NewRequest(method, "https://"+a.domain+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	return a.send(req)
}

func (a *api) send(req *http.Request) response {
	a.t.Helper()
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// form posts a form without a bearer token (Authentication API).
func (a *api) form(path string, v url.Values) response {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://"+a.domain+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.send(req)
}

// get fetches a page without a bearer token.
func (a *api) get(rawURL string) response {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(rawURL, "#"), nil)
	return a.send(req)
}

// login runs the password-realm grant and returns the answer.
func (a *api) login(connection, username, password string, scope ...string) response {
	a.t.Helper()
	return a.form("/oauth/token", url.Values{
		"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {connection},
		"username": {username}, "password": {password}, "client_id": {a.creds.ClientID},
		"client_secret": {a.creds.ClientSecret}, "scope": {strings.Join(scope, " ")},
	})
}

// createDatabase creates an auth0 connection with options.
func (a *api) createDatabase(name string, options map[string]any) map[string]any {
	a.t.Helper()
	r := a.do("POST", "/api/v2/connections", map[string]any{"name": name, "strategy": "auth0", "options": options})
	if r.Status != http.StatusCreated {
		a.t.Fatalf("create connection %s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON()
}

// requestReset runs POST /dbconnections/change_password.
func (a *api) requestReset(connection, email string) response {
	a.t.Helper()
	return a.form("/dbconnections/change_password", url.Values{"client_id": {a.creds.ClientID}, "email": {email}, "connection": {connection}})
}

// lastLink returns the URL of the newest mail to `to`.
func (a *api) lastLink(to string) string {
	a.t.Helper()
	box := a.e.Outbox(a.domain)
	for i := len(box) - 1; i >= 0; i-- {
		if box[i].To == to {
			return box[i].URL
		}
	}
	a.t.Fatalf("no mail to %s", to)
	return ""
}

// submitReset posts the reset form of link with password twice.
func (a *api) submitReset(link, password string) response {
	a.t.Helper()
	u, err := url.Parse(strings.TrimSuffix(link, "#"))
	if err != nil {
		a.t.Fatal(err)
	}
	return a.form("/u/reset-password", url.Values{"ticket": {u.Query().Get("ticket")}, "newPassword": {password}, "confirmNewPassword": {password}})
}

var hrefRE = regexp.MustCompile(`href="([^"]+)"`)
