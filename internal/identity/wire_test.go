package identity

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
)

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON = %s\nwant   %s", got, want)
	}
}

func TestSettingsPatchSendsOnlyWhatItSets(t *testing.T) {
	tests := []struct {
		name  string
		patch func() SettingsPatch
		want  string
		empty bool
	}{
		{"nothing", func() SettingsPatch { return SettingsPatch{} }, `{}`, true},
		{"empty flags map", func() SettingsPatch { return SettingsPatch{Flags: map[string]*bool{}} }, `{}`, true},
		{
			name: "flags set true, false, and removed",
			patch: func() SettingsPatch {
				var p SettingsPatch
				p.SetFlag("change_pwd_flow_v1", false)
				p.SetFlag("enable_sso", true)
				p.RemoveFlag("enable_legacy_profile")
				return p
			},
			want: `{"flags":{"change_pwd_flow_v1":false,"enable_sso":true,"enable_legacy_profile":null}}`,
		},
		{
			name: "typed settings, zero values included when set",
			patch: func() SettingsPatch {
				empty := ""
				zero := 0.0
				none := []string{}
				return SettingsPatch{
					FriendlyName: &empty, SessionLifetime: &zero, EnabledLocales: &none,
					ChangePassword: &ChangePasswordPage{Enabled: ptrTo(false)},
				}
			},
			want: `{"friendly_name":"","session_lifetime":0,"enabled_locales":[],"change_password":{"enabled":false}}`,
		},
		{
			name:  "removed top-level keys are null",
			patch: func() SettingsPatch { return SettingsPatch{Remove: []string{SettingSupportURL, SettingErrorPage}} },
			want:  `{"support_url":null,"error_page":null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.patch()
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, data, tt.want)
			if p.IsEmpty() != tt.empty {
				t.Errorf("IsEmpty = %v", p.IsEmpty())
			}
		})
	}
	for name, p := range map[string]SettingsPatch{
		"unknown key":          {Remove: []string{"tenant_id"}},
		"flags":                {Remove: []string{"flags"}},
		"both set and removed": {FriendlyName: ptrTo("x"), Remove: []string{SettingFriendlyName}},
	} {
		if _, err := json.Marshal(p); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestConnectionOptionsRoundTripEveryKey(t *testing.T) {
	in := `{
		"enabledDatabaseCustomization": true,
		"customScripts": {"login": "function login(e,p,cb){cb(null,null)}"},
		"configuration": {"db": "2.opaque+ciphertext"},
		"import_mode": true,
		"requires_username": false,
		"strategy_version": 2,
		"validation": {"username": {"min": 3, "max": 20}},
		"passwordPolicy": "good",
		"password_complexity_options": {"min_length": 12},
		"password_history": {"enable": true, "size": 5},
		"password_dictionary": {"enable": true, "dictionary": ["acme"]},
		"password_no_personal_info": {"enable": true},
		"brute_force_protection": true,
		"disable_signup": false,
		"mfa": {"active": true, "return_enroll_settings": true},
		"set_user_root_attributes": "on_each_login",
		"some_future_option": [1, {"nested": null}]
	}`
	var o ConnectionOptions
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Extra) != 3 || o.StrategyVersion == nil || *o.StrategyVersion != 2 || o.Validation.Username.Max != 20 {
		t.Fatalf("decoded = %#v, extra keys %d", o, len(o.Extra))
	}
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, in)

	// A modelled field changed by the controller wins over a stale copy in Extra.
	o.Extra["disable_signup"] = json.RawMessage(`false`)
	o.DisableSignup = ptrTo(true)
	out, _ = json.Marshal(o)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if m["disable_signup"] != true {
		t.Errorf("disable_signup = %v", m["disable_signup"])
	}
}

func TestRequestsAreEscapedAndQueriedAsTheAPIExpects(t *testing.T) {
	type seen struct{ method, rawPath, path, query string }
	var got []seen
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.Path, r.URL.RawQuery})
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodGet && len(body) != 0 {
			t.Errorf("GET with a body")
		}
		switch {
		case r.URL.Path == "/api/v2/users":
			writeJSON(w, 200, map[string]any{"start": 0, "limit": 1, "length": 1, "total": 42, "users": []any{map[string]any{}}})
		case r.URL.Path == "/api/v2/connections" && r.Method == http.MethodGet:
			writeJSON(w, 200, []any{
				map[string]any{"id": "con_2", "name": "legacy-db-2", "strategy": "auth0", "options": map[string]any{}},
				map[string]any{"id": "con_1", "name": "legacy-db", "strategy": "auth0", "options": map[string]any{}},
			})
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, 200, map[string]any{})
		}
	})
	c := f.client(t, fastOptions())
	ctx := context.Background()
	n, err := c.CountUsersInConnection(ctx, "legacy-db")
	if err != nil || n != 42 {
		t.Fatalf("CountUsersInConnection = %d, %v", n, err)
	}
	conn, err := c.FindConnectionByName(ctx, "legacy-db")
	if err != nil || conn.ID != "con_1" {
		t.Fatalf("FindConnectionByName = %+v, %v: want the exact name", conn, err)
	}
	if err := c.DeleteConnection(ctx, "con|1/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEmailTemplate(ctx, "reset_email"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEmailProvider(ctx); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"GET", "/api/v2/users", "/api/v2/users", "include_totals=true&page=0&per_page=1&q=identities.connection%3A%22legacy-db%22&search_engine=v3"},
		{"GET", "/api/v2/connections", "/api/v2/connections", "name=legacy-db&strategy=auth0"},
		{"DELETE", "/api/v2/connections/con%7C1%2Fx", "/api/v2/connections/con|1/x", ""},
		{"GET", "/api/v2/email-templates/reset_email", "/api/v2/email-templates/reset_email", ""},
		{"GET", "/api/v2/emails/provider", "/api/v2/emails/provider", "fields=name%2Cenabled%2Cdefault_from_address%2Ccredentials%2Csettings&include_fields=true"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%v\nwant\n%v", got, want)
	}
}

func TestPoolKeysByFingerprintAndSharesThePacer(t *testing.T) {
	base := Config{Domain: "t.example.com", ClientID: "id", ClientSecret: "first-secret"}
	opts := fastOptions()
	p := NewPool(opts)
	a, err := p.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Get(base); b != a {
		t.Fatal("same config, different clients")
	}
	rotated := base
	rotated.ClientSecret = "second-secret"
	r, _ := p.Get(rotated)
	if r == a || p.Len() != 1 {
		t.Fatalf("rotated secret: same client %v, %d held", r == a, p.Len())
	}
	if r.(*client).pacer != a.(*client).pacer {
		t.Error("the tenant's rate-limit budget is not shared across credentials")
	}
	other := base
	other.Domain = "u.example.com"
	o, _ := p.Get(other)
	if o.(*client).pacer == a.(*client).pacer || p.Len() != 2 {
		t.Error("two tenants share a pacer")
	}
	if base.Fingerprint() == rotated.Fingerprint() {
		t.Error("fingerprint ignores the secret")
	}
	for _, fp := range []string{base.Fingerprint(), rotated.Fingerprint()} {
		if len(fp) != 64 {
			t.Errorf("fingerprint %q is not a sha256", fp)
		}
	}
	p.Forget(other)
	if p.Len() != 1 {
		t.Errorf("%d held after Forget", p.Len())
	}
	if _, err := p.Get(Config{Domain: "t.example.com"}); err == nil {
		t.Error("config without credentials accepted")
	}
}
