package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

const passwordRealmGrant = "http://auth0.com/oauth/grant-type/password-realm"

// tokenLifetime is expires_in of every access token.
const tokenLifetime = 86400

// oidcScopes are what a user's token may carry.
var oidcScopes = []string{"openid", "profile", "email", "offline_access"}

// readParams reads a form or JSON body into string parameters.
func readParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				out[k] = x
			case bool, float64:
				b, _ := json.Marshal(x)
				out[k] = string(b)
			}
		}
		return out, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k := range r.PostForm {
		out[k] = r.PostForm.Get(k)
	}
	return out, nil
}

// clientAuth returns the client credentials from the body or HTTP Basic
// (whose parts are form-encoded, RFC 6749 2.3.1).
func clientAuth(r *http.Request, p map[string]string) (string, string) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Basic ") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if err == nil {
			id, secret, _ := strings.Cut(string(raw), ":")
			if uid, err := url.QueryUnescape(id); err == nil {
				id = uid
			}
			if us, err := url.QueryUnescape(secret); err == nil {
				secret = us
			}
			return id, secret
		}
	}
	return p["client_id"], p["client_secret"]
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	domain := tenantOf(r)
	if !s.withinEndpointLimit(w, r, epToken, "") {
		return
	}
	p, err := readParams(r)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body could not be parsed")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	grant := p["grant_type"]
	if grant == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
		return
	}
	id, secret := clientAuth(r, p)
	if id == "" {
		oauthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	client, err := s.store.Q().Client(id)
	if err != nil || client.Domain != domain || secret == "" || !password.Check(client.SecretHash, secret) {
		oauthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	switch grant {
	case "client_credentials", "password", passwordRealmGrant, "authorization_code":
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+grant)
		return
	}
	if !slices.Contains(client.GrantTypes, grant) {
		oauthError(w, http.StatusForbidden, "unauthorized_client", "Grant type '"+grant+"' not allowed for the client.")
		return
	}
	t, err := s.store.Q().Tenant(domain)
	if err != nil {
		s.internal(w, err)
		return
	}
	switch grant {
	case "client_credentials":
		s.clientCredentials(w, client, t, p)
	case "authorization_code":
		s.authorizationCodeGrant(w, client, t, p)
	default:
		s.passwordGrant(w, r, client, t, p, grant)
	}
}

func (s *Server) clientCredentials(w http.ResponseWriter, client store.Client, t store.Tenant, p map[string]string) {
	aud := p["audience"]
	if aud == "" {
		aud = strOf(t.Settings, "default_audience")
	}
	if aud == "" {
		oauthError(w, http.StatusForbidden, "access_denied", "No audience parameter was provided, and no default audience has been configured")
		return
	}
	if aud != managementAudience(t.Domain) {
		oauthError(w, http.StatusForbidden, "access_denied", "Service not enabled within domain: "+aud)
		return
	}
	grant, err := s.store.Q().ClientGrantFor(t.Domain, client.ClientID, aud, "client")
	if errors.Is(err, store.ErrNotFound) {
		oauthError(w, http.StatusForbidden, "access_denied", `Client is not authorized to access "`+aud+`". You need to create a "client-grant" associated to this API.`)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	scopes := grant.Scope
	if req := strings.Fields(p["scope"]); len(req) > 0 {
		var missing []string
		for _, sc := range req {
			if !slices.Contains(grant.Scope, sc) {
				missing = append(missing, sc)
			}
		}
		if len(missing) > 0 {
			oauthError(w, http.StatusForbidden, "access_denied", "Client has not been granted scopes: "+strings.Join(missing, ", "))
			return
		}
		scopes = req
	}
	now := s.now()
	tok, err := s.signer.Sign(map[string]any{
		"iss": issuer(t.Domain), "sub": client.ClientID + "@clients", "aud": aud,
		"iat": now.Unix(), "exp": now.Unix() + tokenLifetime, "scope": strings.Join(scopes, " "),
		"gty": "client-credentials", "azp": client.ClientID, "jti": randomID(8),
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": tokenLifetime, "scope": strings.Join(scopes, " ")})
}

func (s *Server) passwordGrant(w http.ResponseWriter, r *http.Request, client store.Client, t store.Tenant, p map[string]string, grant string) {
	for _, k := range []string{"username", "password"} {
		if p[k] == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: "+k)
			return
		}
	}
	connName := strOf(t.Settings, "default_directory")
	if grant == passwordRealmGrant {
		if connName = p["realm"]; connName == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: realm")
			return
		}
	} else if connName == "" {
		oauthError(w, http.StatusInternalServerError, "server_error", "Authorization server not configured with default connection.")
		return
	}
	c, err := s.store.Q().ConnectionByName(t.Domain, connName)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Strategy != "auth0") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Unknown or invalid realm: "+connName)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	u, lerr := s.authenticate(r.Context(), c, p["username"], p["password"])
	if lerr != nil {
		oauthError(w, lerr.status, lerr.code, lerr.descr)
		return
	}
	s.recordLogin(t.Domain, u.UserID)
	if u2, err := s.store.Q().User(t.Domain, u.UserID); err == nil {
		u = u2
	}
	aud := p["audience"]
	if aud == "" {
		aud = strOf(t.Settings, "default_audience")
	}
	s.userTokens(w, client, t, u, userGrant{scope: p["scope"], audience: aud, gty: "password"})
}

// userGrant is what a user's tokens are issued for.
type userGrant struct {
	scope, audience, nonce, gty string
	// Claims actions set with api.idToken/accessToken.setCustomClaim.
	idClaims, accessClaims map[string]any
}

// userTokens answers a user's access token (and id_token with openid).
func (s *Server) userTokens(w http.ResponseWriter, client store.Client, t store.Tenant, u store.User, g userGrant) {
	now := s.now()
	var scopes []string
	for _, sc := range strings.Fields(g.scope) {
		if slices.Contains(oidcScopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	auds := []any{"https://" + t.Domain + "/userinfo"}
	if g.audience != "" && g.audience != auds[0] {
		auds = append([]any{g.audience}, auds...)
	}
	claims := map[string]any{}
	for k, v := range g.accessClaims {
		claims[k] = v
	}
	for k, v := range map[string]any{
		"iss": issuer(t.Domain), "sub": u.UserID, "aud": auds, "iat": now.Unix(), "exp": now.Unix() + tokenLifetime,
		"scope": strings.Join(scopes, " "), "azp": client.ClientID,
	} {
		claims[k] = v
	}
	if g.gty != "" {
		claims["gty"] = g.gty
	}
	access, err := s.signer.Sign(claims)
	if err != nil {
		s.internal(w, err)
		return
	}
	out := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": tokenLifetime, "scope": strings.Join(scopes, " ")}
	if slices.Contains(scopes, "openid") {
		claims := profileClaims(u.Doc, scopes, legacyProfile(t.Settings))
		for k, v := range g.idClaims {
			claims[k] = v
		}
		claims["iss"], claims["sub"], claims["aud"] = issuer(t.Domain), u.UserID, client.ClientID
		claims["iat"], claims["exp"] = now.Unix(), now.Unix()+36000
		if g.nonce != "" {
			claims["nonce"] = g.nonce
		}
		idt, err := s.signer.Sign(claims)
		if err != nil {
			s.internal(w, err)
			return
		}
		out["id_token"] = idt
	}
	writeJSON(w, http.StatusOK, out)
}

// authorizationCodeGrant exchanges a code from Universal Login, once.
func (s *Server) authorizationCodeGrant(w http.ResponseWriter, client store.Client, t store.Tenant, p map[string]string) {
	if p["code"] == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
		return
	}
	c, ok := s.redeemCode(t.Domain, client.ClientID, p["code"])
	if !ok {
		oauthError(w, http.StatusForbidden, "invalid_grant", "Invalid authorization code")
		return
	}
	if p["redirect_uri"] != c.RedirectURI {
		oauthError(w, http.StatusForbidden, "invalid_grant", "Invalid redirect_uri: it does not match the one of the authorization request")
		return
	}
	u, err := s.store.Q().User(t.Domain, c.UserID)
	if err != nil {
		oauthError(w, http.StatusForbidden, "invalid_grant", "Invalid authorization code")
		return
	}
	aud := c.Audience
	if aud == "" {
		aud = strOf(t.Settings, "default_audience")
	}
	s.userTokens(w, client, t, u, userGrant{scope: c.Scope, audience: aud, nonce: c.Nonce, idClaims: c.IDClaims, accessClaims: c.AccessClaims})
}

func legacyProfile(settings map[string]any) bool {
	return boolOf(flagsOf(settings), "enable_legacy_profile")
}

// profileClaims are the user claims of an id_token or /userinfo answer.
// With enable_legacy_profile the whole profile goes out, identity-provider
// tokens included (the behaviour the migration removes); otherwise only the
// OIDC claims the scopes ask for.
func profileClaims(doc map[string]any, scopes []string, legacy bool) map[string]any {
	if legacy {
		c := copyMap(doc)
		delete(c, "user_id")
		return c
	}
	c := map[string]any{}
	if slices.Contains(scopes, "profile") {
		for _, k := range []string{"name", "nickname", "picture", "updated_at", "given_name", "family_name"} {
			if v, ok := doc[k]; ok {
				c[k] = v
			}
		}
	}
	if slices.Contains(scopes, "email") {
		for _, k := range []string{"email", "email_verified"} {
			if v, ok := doc[k]; ok {
				c[k] = v
			}
		}
	}
	return c
}

// userinfo answers the profile for a user's access token.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	domain := tenantOf(r)
	tok := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	c, err := s.signer.Verify(tok, s.now())
	if err != nil || c.String("iss") != issuer(domain) || !slices.Contains(c.Audiences(), "https://"+domain+"/userinfo") {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "Invalid token"})
		return
	}
	if !s.withinEndpointLimit(w, r, epUserInfo, c.String("sub")) {
		return
	}
	u, err := s.store.Q().User(domain, c.String("sub"))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "Invalid token"})
		return
	}
	t, err := s.store.Q().Tenant(domain)
	if err != nil {
		s.internal(w, err)
		return
	}
	out := profileClaims(u.Doc, strings.Fields(c.String("scope")), legacyProfile(t.Settings))
	out["sub"] = u.UserID
	writeJSON(w, http.StatusOK, out)
}
