package scripts

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAPostLoginActionAwaitsFetchAndRecordsWhatItAskedFor(t *testing.T) {
	var gotAuth, gotBody, gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotAuth, gotBody, gotType = r.Header.Get("Authorization"), string(b), r.Header.Get("Content-Type")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"ticket":"https://acme.example/u/reset-password?ticket=T1#"}`))
	}))
	defer srv.Close()
	const code = `
const prefix = 'x-';
exports.onExecutePostLogin = async (event, api) => {
  if (!event.request.query.scope.split(' ').includes('update:password')) return;
  const res = await fetch(event.secrets.URL + '/tickets', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + event.secrets.TOKEN, 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: event.user.user_id }),
  });
  if (!res.ok) throw new Error('ticket ' + res.status);
  const { ticket } = await res.json();
  api.idToken.setCustomClaim(prefix + 'status', res.status);
  api.user.setAppMetadata('asked', true);
  api.redirect.sendUserTo(ticket, { query: { from: 'action' } });
};`
	event := map[string]any{"user": map[string]any{"user_id": "auth0|1"}, "request": map[string]any{"query": map[string]any{"scope": "openid update:password"}},
		"secrets": map[string]any{"URL": srv.URL, "TOKEN": "tok"}}
	out, err := New(2*time.Second, nil).RunAction(context.Background(), ActionRun{Code: code, Handler: OnExecutePostLogin, Event: event})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Ran || out.Denied {
		t.Fatalf("outcome %+v", out)
	}
	if out.Redirect != "https://acme.example/u/reset-password?from=action&ticket=T1" {
		t.Errorf("redirect %q", out.Redirect)
	}
	if gotAuth != "Bearer tok" || gotBody != `{"user_id":"auth0|1"}` || gotType != "application/json" {
		t.Errorf("request: %q %q %q", gotAuth, gotBody, gotType)
	}
	if out.IDTokenClaims["x-status"] != int64(201) || out.AppMetadata["asked"] != true {
		t.Errorf("claims %v, app metadata %v", out.IDTokenClaims, out.AppMetadata)
	}
}

func TestPostLoginActionOutcomes(t *testing.T) {
	r := New(300*time.Millisecond, nil)
	for _, tc := range []struct {
		name, code, handler string
		ran, denied         bool
		reason, err         string
		timeout             bool
	}{
		{name: "deny", code: `exports.onExecutePostLogin = async (event, api) => { api.access.deny('Not today'); };`, ran: true, denied: true, reason: "Not today"},
		{name: "deny from a plain function", code: `exports.onExecutePostLogin = function (event, api) { api.access.deny('no'); };`, ran: true, denied: true, reason: "no"},
		{name: "a throw", code: `exports.onExecutePostLogin = async () => { throw new Error('ticket service down'); };`, ran: true, err: "ticket service down"},
		{name: "a throw before any await in a plain function", code: `exports.onExecutePostLogin = () => { null.x; };`, ran: true, err: "Cannot read property"},
		{name: "a rejected await", code: `exports.onExecutePostLogin = async () => { await Promise.reject(new Error('nope')); };`, ran: true, err: "nope"},
		{name: "a failing fetch", code: `exports.onExecutePostLogin = async () => { await fetch('http://192.0.2.1/'); };`, ran: true, err: "fetch failed"},
		{name: "a module throwing at load", code: `const x = require('axios'); exports.onExecutePostLogin = async () => {};`, err: "Cannot find module 'axios'"},
		{name: "a promise that never settles", code: `exports.onExecutePostLogin = async () => { await new Promise(() => {}); };`, ran: true, err: "never settled"},
		{name: "a busy loop", code: `exports.onExecutePostLogin = async () => { for (;;) {} };`, ran: true, timeout: true},
		{name: "module.exports replaced", code: `module.exports = { onExecutePostLogin: async (e, api) => api.access.deny('m') };`, ran: true, denied: true, reason: "m"},
		{name: "no onContinuePostLogin", code: `exports.onExecutePostLogin = async () => {};`, handler: OnContinuePostLogin},
		{name: "onContinuePostLogin", code: `exports.onContinuePostLogin = async (event, api) => { api.access.deny(event.user.email); };`, handler: OnContinuePostLogin, ran: true, denied: true, reason: "ann@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			if h == "" {
				h = OnExecutePostLogin
			}
			out, err := r.RunAction(context.Background(), ActionRun{Code: tc.code, Handler: h, Event: map[string]any{"user": map[string]any{"email": "ann@example.com"}}})
			switch {
			case tc.timeout:
				if !errors.Is(err, ErrTimeout) {
					t.Fatalf("err %v, want a timeout", err)
				}
				return
			case tc.err != "":
				var ae *ActionError
				if !errors.As(err, &ae) || !strings.Contains(ae.Message, tc.err) {
					t.Fatalf("err %v, want an ActionError with %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if out.Ran != tc.ran || out.Denied != tc.denied || out.DenyReason != tc.reason {
				t.Errorf("outcome %+v", out)
			}
		})
	}
}

func TestActionCodeIsCheckedAsANodeModule(t *testing.T) {
	for code, ok := range map[string]bool{
		`exports.onExecutePostLogin = async (event, api) => { const { a = 1, ...rest } = event; return ` + "`${a}`" + `; };`: true,
		`exports.onExecutePostLogin = async (event, api) => { await fetch('x'); };`:                                          true,
		`exports.onExecutePostLogin = async (event, api) => {`:                                                               false,
		`await fetch('x');`: false,
	} {
		if err := CheckAction(code); (err == nil) != ok {
			t.Errorf("CheckAction(%q) = %v, want ok=%v", code, err, ok)
		}
	}
}
