package emulatortest

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser drives a tenant's pages (Universal Login, the ticket form) as a
// person's browser would: a cookie jar, redirects followed while they stay
// on the tenant, forms parsed and submitted. A redirect that leaves the
// tenant (to the application's callback, or a page an action chose) stops
// it, with the target in Page.Location.
type Browser struct {
	t      testing.TB
	domain string
	http   *http.Client
}

// Browser returns a browser with an empty cookie jar for a tenant.
func (e *Emulator) Browser(domain string) *Browser {
	jar, _ := cookiejar.New(nil)
	c := e.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Hostname() != domain || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &Browser{t: e.t, domain: domain, http: c}
}

// Page is where a browser ended.
type Page struct {
	Status int
	// URL is the last request's URL.
	URL *url.URL
	// Location is where a redirect off the tenant pointed ("" otherwise).
	Location string
	Body     string
}

// LocationQuery is the query of the off-tenant redirect.
func (p Page) LocationQuery() url.Values {
	u, err := url.Parse(p.Location)
	if err != nil {
		return url.Values{}
	}
	return u.Query()
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

// Field is the value of the page's input named name ("" when none).
func (p Page) Field(name string) string {
	for _, in := range inputRE.FindAllString(p.Body, -1) {
		if a := attrs(in); a["name"] == name {
			return a["value"]
		}
	}
	return ""
}

// HasForm reports whether the page's form has an input named name.
func (p Page) HasForm(name string) bool {
	f := formRE.FindString(p.Body)
	return f != "" && strings.Contains(f, `name="`+name+`"`)
}

func (b *Browser) do(req *http.Request) Page {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("emulatortest: browser %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := Page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(body)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		p.Location = resp.Header.Get("Location")
	}
	return p
}

// Open follows a link (a ticket link's trailing "#" dropped).
func (b *Browser) Open(rawURL string) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(rawURL, "#"), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// Authorize opens the tenant's /authorize with params (response_type,
// client_id, redirect_uri, state, scope, prompt, login_hint, ...).
func (b *Browser) Authorize(params url.Values) Page {
	b.t.Helper()
	return b.Open("https://" + b.domain + "/authorize?" + params.Encode())
}

// Submit fills the page's form (its inputs' values, then fields) and
// posts it to the form's action.
func (b *Browser) Submit(p Page, fields map[string]string) Page {
	b.t.Helper()
	f := formRE.FindString(p.Body)
	if f == "" {
		b.t.Fatalf("emulatortest: no form on %s (status %d)", p.URL.Path, p.Status)
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
	method := strings.ToUpper(form["method"])
	if method == "" {
		method = http.MethodGet
	}
	req, _ := http.NewRequest(method, target.String(), strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}
