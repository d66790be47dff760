package identity

import (
	"encoding/base64"
	"slices"
	"testing"
)

func jwtWith(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".sig"
}

func TestGrantedScopesFromTheAnswerOrTheToken(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name   string
		answer *string
		token  string
		want   []string
		known  bool
	}{
		{"the answer's scope wins", str("update:tenant_settings read:tenant_settings"), jwtWith(`{"scope":"read:users"}`),
			[]string{"read:tenant_settings", "update:tenant_settings"}, true},
		{"an empty answer scope is a grant of nothing", str(""), jwtWith(`{"scope":"read:users"}`), nil, true},
		{"no answer scope: the token's claim", nil, jwtWith(`{"scope":"read:users read:users create:users"}`),
			[]string{"create:users", "read:users"}, true},
		{"no scope claim: permissions", nil, jwtWith(`{"permissions":["read:connections"]}`), []string{"read:connections"}, true},
		{"an opaque token says nothing", nil, "opaque-token", nil, false},
		{"a token without either claim says nothing", nil, jwtWith(`{"sub":"x@clients"}`), nil, false},
		{"a payload that is not JSON says nothing", nil, "a.bm90IGpzb24.c", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, known := grantedScopes(tc.answer, tc.token)
			if known != tc.known || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v (known %t), want %v (known %t)", got, known, tc.want, tc.known)
			}
		})
	}
}

func TestGrantMissing(t *testing.T) {
	g := Grant{Scopes: []string{"read:tenant_settings", "update:tenant_settings"}, Known: true}
	if m := g.Missing([]string{"read:tenant_settings", "update:email_templates", "read:email_templates", "update:email_templates"}); !slices.Equal(m, []string{"update:email_templates", "read:email_templates"}) {
		t.Fatalf("missing = %v", m)
	}
	if m := g.Missing([]string{"update:tenant_settings"}); m != nil {
		t.Fatalf("missing = %v, want none", m)
	}
	if m := (Grant{}).Missing([]string{"read:users"}); m != nil {
		t.Fatalf("an unknown grant reported missing %v: it cannot tell", m)
	}
}
