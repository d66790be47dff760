package server_test

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// browser drives a tenant's pages as a person's browser would: a cookie
// jar, redirects followed while they stay on the tenant, forms parsed and
// submitted. A redirect that leaves the tenant (to the application, or to
// a page an action chose) stops it, with the target in Location.
type browser struct {
	t      testing.TB
	domain string
	http   *http.Client
}

func newBrowser(t testing.TB, e *emulatortest.Emulator, domain string) *browser {
	jar, _ := cookiejar.New(nil)
	c := e.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Hostname() != domain || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &browser{t: t, domain: domain, http: c}
}

// page is where a browser ended.
type page struct {
	Status   int
	URL      *url.URL // the last request's URL
	Location string   // where a redirect off the tenant pointed
	Body     string
}

// LocationQuery is the query of the off-tenant redirect.
func (p page) LocationQuery() url.Values {
	u, err := url.Parse(p.Location)
	if err != nil {
		return nil
	}
	return u.Query()
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(body)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		p.Location = resp.Header.Get("Location")
	}
	return p
}

// open follows a link (a ticket link's trailing "#" dropped).
func (b *browser) open(rawURL string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(rawURL, "#"), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// authorize opens /authorize with params.
func (b *browser) authorize(params url.Values) page {
	b.t.Helper()
	return b.open("https://" + b.domain + "/authorize?" + params.Encode())
}

var (
	formRE  = regexp.MustCompile(`(?s)<form\s[^>]*>.*?</form>`)
	inputRE = regexp.MustCompile(`<input\s[^>]*>`)
	attrRE  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

func attrs(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// field is the value of the page's input named name ("" when none).
func (p page) field(name string) string {
	for _, in := range inputRE.FindAllString(p.Body, -1) {
		if a := attrs(in); a["name"] == name {
			return a["value"]
		}
	}
	return ""
}

// hasForm reports whether the page has a form with an input named name.
func (p page) hasForm(name string) bool {
	f := formRE.FindString(p.Body)
	return f != "" && strings.Contains(f, `name="`+name+`"`)
}

// submit fills the page's form (its inputs' values, then fields) and
// posts it to the form's action.
func (b *browser) submit(p page, fields map[string]string) page {
	b.t.Helper()
	f := formRE.FindString(p.Body)
	if f == "" {
		b.t.Fatalf("no form on %s (status %d)", p.URL, p.Status)
	}
	form := attrs(f[:strings.Index(f, ">")+1])
	values := url.Values{}
	for _, in := range inputRE.FindAllString(f, -1) {
		if a := attrs(in); a["name"] != "" {
			values.Set(a["name"], a["value"])
		}
	}
	for k, v := range fields {
		values.Set(k, v)
	}
	target, err := p.URL.Parse(form["action"])
	if err != nil {
		b.t.Fatal(err)
	}
	req, _ := http.NewRequest(strings.ToUpper(form["method"]), target.String(), strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// jwtClaims decodes a token's payload (tests compare claims, never print
// the token).
func jwtClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (%d parts)", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
