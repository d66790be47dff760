package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantops/identity-operator/test/emulator/internal/jwt"
)

// AllScopes are the Management API scopes the emulator knows; the client
// created with a tenant has all of them.
var AllScopes = []string{
	"read:tenant_settings", "update:tenant_settings",
	"read:clients", "create:clients", "update:clients", "delete:clients", "read:client_keys", "update:client_keys",
	"read:client_grants", "create:client_grants", "update:client_grants", "delete:client_grants",
	"read:connections", "create:connections", "update:connections", "delete:connections",
	"read:email_provider", "create:email_provider", "update:email_provider", "delete:email_provider",
	"read:email_templates", "create:email_templates", "update:email_templates",
	"create:user_tickets",
	"read:users", "update:users", "delete:users", "create:users", "read:user_idp_tokens",
	"read:actions", "create:actions", "update:actions", "delete:actions", "update:triggers",
}

// managementAudience is the Management API's identifier on a tenant.
func managementAudience(domain string) string { return "https://" + domain + "/api/v2/" }

func issuer(domain string) string { return "https://" + domain + "/" }

// authorize checks the bearer token of a Management API request for the
// tenant and for any one of scopes. It answers 401/403 itself and returns
// ok=false when the request must stop.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scopes ...string) (jwt.Claims, bool) {
	domain := tenantOf(r)
	realm := managementAudience(domain)
	unauthorized := func(msg, errParam string) {
		wa := `Bearer realm="` + realm + `"`
		if errParam != "" {
			wa += `, error="` + errParam + `", error_description="` + msg + `"`
		}
		w.Header().Set("WWW-Authenticate", wa)
		writeJSON(w, http.StatusUnauthorized, apiError{StatusCode: 401, Error: "Unauthorized", Message: msg, Attributes: map[string]any{"error": msg}})
	}
	auth := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(auth, " ")
	if auth == "" || !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		unauthorized("Missing authentication", "")
		return nil, false
	}
	c, err := s.signer.Verify(strings.TrimSpace(tok), s.now())
	switch {
	case errors.Is(err, jwt.ErrExpired):
		unauthorized("Expired token received for JSON Web Token validation", "invalid_token")
		return nil, false
	case err != nil:
		unauthorized("Invalid token", "invalid_token")
		return nil, false
	}
	if c.String("iss") != issuer(domain) {
		unauthorized("Invalid token", "invalid_token")
		return nil, false
	}
	audOK := false
	for _, a := range c.Audiences() {
		audOK = audOK || a == realm
	}
	if !audOK {
		unauthorized("Bad audience: "+strings.Join(c.Audiences(), " "), "invalid_token")
		return nil, false
	}
	if !hasAnyScope(c, scopes...) {
		mgmtError(w, http.StatusForbidden, "insufficient_scope", "Insufficient scope, expected any of: "+strings.Join(scopes, ","))
		return nil, false
	}
	return c, true
}

func hasAnyScope(c jwt.Claims, scopes ...string) bool {
	granted := strings.Fields(c.String("scope"))
	for _, want := range scopes {
		for _, g := range granted {
			if g == want {
				return true
			}
		}
	}
	return false
}
