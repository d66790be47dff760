package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// passwordCredential is the credential_type of a /co/authenticate login.
const passwordCredential = "http://auth0.com/credential-type/password"

// crossOriginAuthenticate checks a database login made from a browser on
// another origin (the platform's embedded-login endpoint, POST
// /co/authenticate with client_id, credential_type, username, password,
// realm). The client must allow cross-origin authentication and list the
// Origin among its web_origins (or allowed_origins). Success answers the
// login ticket the platform answers; the emulator has no /authorize to
// redeem it, so this endpoint proves credentials and limits only.
func (s *Server) crossOriginAuthenticate(w http.ResponseWriter, r *http.Request) {
	if !s.withinEndpointLimit(w, r, epCrossOrigin, "") {
		return
	}
	domain := tenantOf(r)
	p, err := readParams(r)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body could not be parsed")
		return
	}
	client, err := s.store.Q().TenantClient(domain, p["client_id"])
	if err != nil {
		oauthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	origin := r.Header.Get("Origin")
	allowed := append(toStrings(client.Doc["web_origins"]), toStrings(client.Doc["allowed_origins"])...)
	switch {
	case !boolOf(client.Doc, "cross_origin_authentication"):
		oauthError(w, http.StatusForbidden, "unauthorized_client", "Cross origin login not allowed.")
		return
	case origin == "" || !slices.Contains(allowed, strings.TrimSuffix(origin, "/")):
		oauthError(w, http.StatusForbidden, "access_denied", "Origin "+origin+" is not allowed.")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Credentials", "true")
	switch {
	case p["credential_type"] != passwordCredential:
		oauthError(w, http.StatusBadRequest, "invalid_request", "Unknown credential type parameter.")
		return
	case p["username"] == "" || p["password"] == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: username and password")
		return
	}
	realm := p["realm"]
	if realm == "" {
		t, err := s.store.Q().Tenant(domain)
		if err != nil {
			s.internal(w, err)
			return
		}
		realm = strOf(t.Settings, "default_directory")
	}
	c, err := s.store.Q().ConnectionByName(domain, realm)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Strategy != "auth0") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Unknown or invalid realm: "+realm)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	if _, lerr := s.authenticate(r.Context(), c, p["username"], p["password"]); lerr != nil {
		code := lerr.code
		if code == "invalid_grant" {
			code = "access_denied"
		}
		oauthError(w, lerr.status, code, lerr.descr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login_ticket": randomAlnum(32), "co_verifier": randomAlnum(32), "co_id": randomAlnum(12)})
}
