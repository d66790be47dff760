package identity

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// Grant is what the tenant granted a client's current token: the Management
// API scopes of its client grant. It comes with the token (the token
// answer's scope, or the token's own scope claim), so knowing it costs no
// request of its own.
type Grant struct {
	// Scopes are the granted scopes, sorted.
	Scopes []string
	// Known is false when neither the token answer nor the token said which
	// scopes were granted (a wire-compatible server may say neither): a
	// check cannot tell then, and the calls themselves will.
	Known bool

	// token is the token the grant came with, for RenewGrant.
	token string
}

// Missing returns the scopes of required that the grant lacks, in the
// order given; none when the grant is not Known.
func (g Grant) Missing(required []string) []string {
	if !g.Known {
		return nil
	}
	var missing []string
	for _, s := range required {
		if _, found := slices.BinarySearch(g.Scopes, s); !found && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// grantedScopes reads the scopes a token was granted: from the token
// answer's scope when it has one (the OAuth 2.0 rule: the answer names the
// scopes when they differ from those asked for, and Auth0 always names
// them), else from the token's scope claim. The token's signature is not
// checked: the platform checks it, and the scopes only decide whether a
// call is worth sending.
func grantedScopes(answer *string, token string) ([]string, bool) {
	if answer != nil {
		return sortedScopes(strings.Fields(*answer)), true
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims struct {
		Scope       *string  `json:"scope"`
		Permissions []string `json:"permissions"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil, false
	}
	switch {
	case claims.Scope != nil:
		return sortedScopes(strings.Fields(*claims.Scope)), true
	case claims.Permissions != nil:
		// APIs with RBAC put them here instead.
		return sortedScopes(claims.Permissions), true
	}
	return nil, false
}

func sortedScopes(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
