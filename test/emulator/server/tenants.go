package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// Credentials are a client's credentials for one tenant, as written to
// DATA/tenants/<domain>.json.
type Credentials struct {
	Domain       string   `json:"domain"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Audience     string   `json:"audience"`
	TokenURL     string   `json:"token_url"`
	Scopes       []string `json:"scopes"`
}

// ErrUnknownTenant is returned by admin operations on a domain that is not
// a tenant.
var ErrUnknownTenant = errors.New("unknown tenant")

// ErrTenantExists is returned when creating a tenant twice.
var ErrTenantExists = errors.New("tenant already exists")

// AllGrantTypes are the grants a client gets unless told otherwise.
var AllGrantTypes = []string{"client_credentials", "password", passwordRealmGrant}

var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// defaultFlags are the flags of a tenant created today: both password and
// profile migrations are past their grace-period start, so a new tenant is
// enrolled, and the platform leaves the old-behaviour flags out entirely (a
// GET may leave a flag out).
func defaultSettings(domain string) map[string]any {
	return map[string]any{
		"friendly_name":                   strings.SplitN(domain, ".", 2)[0],
		"picture_url":                     "",
		"support_email":                   "",
		"support_url":                     "",
		"session_lifetime":                float64(168),
		"idle_session_lifetime":           float64(72),
		"ephemeral_session_lifetime":      float64(72),
		"idle_ephemeral_session_lifetime": float64(24),
		"enabled_locales":                 []any{"en"},
		"sandbox_version":                 "22",
		"sandbox_versions_available":      []any{"22", "18"},
		"session_cookie":                  map[string]any{"mode": "persistent"},
		"oidc_logout":                     map[string]any{"rp_logout_end_session_endpoint_discovery": true},
		"resource_parameter_profile":      "audience",
		"flags": map[string]any{
			"enable_idtoken_api2":                    true,
			"enable_apis_section":                    false,
			"enable_client_connections":              true,
			"enable_pipeline2":                       true,
			"allow_legacy_delegation_grant_types":    false,
			"allow_legacy_ro_grant_types":            false,
			"allow_legacy_tokeninfo_endpoint":        false,
			"enable_public_signup_user_exists_error": false,
			"disable_impersonation":                  true,
			"revoke_refresh_token_grant":             false,
			"disable_clickjack_protection_headers":   false,
			"no_disclose_enterprise_connections":     false,
			"enable_sso":                             true,
		},
	}
}

// DefaultRefusedFlags are refused on every tenant: read-only flags.
var DefaultRefusedFlags = []string{"disable_impersonation"}

// CreateTenant creates a tenant with default settings patched by settings
// (which may be nil), and a client with every scope whose credentials are
// returned and written to DATA/tenants/<domain>.json.
func (s *Server) CreateTenant(domain string, settings map[string]any) (Credentials, error) {
	domain = strings.ToLower(domain)
	if !domainRE.MatchString(domain) || isAdminHost(domain) {
		return Credentials{}, fmt.Errorf("invalid tenant domain %q: want a host name such as acme.emulator.local", domain)
	}
	doc := defaultSettings(domain)
	if settings != nil {
		if detail := validateSettingsPatch(settings); detail != "" {
			return Credentials{}, errors.New(detail)
		}
		mergeSettings(doc, copyMap(settings))
	}
	t := store.Tenant{Domain: domain, Settings: doc, RefusedFlags: slices.Clone(DefaultRefusedFlags), CreatedAt: s.now()}
	creds, client := s.newClient(domain, "Operator (all scopes)", AllGrantTypes, map[string]any{"app_type": "non_interactive"})
	creds.Scopes = slices.Clone(AllScopes)
	err := s.store.Tx(func(q store.Q) error {
		if err := q.CreateTenant(t); err != nil {
			return err
		}
		if err := q.PutClient(client); err != nil {
			return err
		}
		g := managementGrant(domain, client.ClientID, AllScopes)
		return q.CreateClientGrant(&g)
	})
	if errors.Is(err, store.ErrConflict) {
		return Credentials{}, ErrTenantExists
	}
	if err != nil {
		return Credentials{}, err
	}
	s.addTenantState(t)
	b, _ := json.MarshalIndent(creds, "", "  ")
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, TenantsDir, domain+".json"), append(b, '\n'), 0o600); err != nil {
		return Credentials{}, err
	}
	return creds, nil
}

// MintClient creates another client on a tenant with the given Management
// API scopes (none: the client has no grant for the API) and grant types
// (none: all of AllGrantTypes). It is the same record POST /api/v2/clients
// makes, with a client grant like POST /api/v2/client-grants makes.
func (s *Server) MintClient(domain, name string, scopes, grantTypes []string) (Credentials, error) {
	if !s.hasTenant(domain) {
		return Credentials{}, ErrUnknownTenant
	}
	for _, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return Credentials{}, fmt.Errorf("unknown scope %q", sc)
		}
	}
	if len(grantTypes) == 0 {
		grantTypes = AllGrantTypes
	}
	if name == "" {
		name = "Minted client"
	}
	creds, c := s.newClient(domain, name, grantTypes, map[string]any{"app_type": "non_interactive"})
	creds.Scopes = slices.Clone(scopes)
	return creds, s.store.Tx(func(q store.Q) error {
		if err := q.PutClient(c); err != nil {
			return err
		}
		if len(scopes) == 0 {
			return nil
		}
		g := managementGrant(domain, c.ClientID, scopes)
		return q.CreateClientGrant(&g)
	})
}

func (s *Server) hasTenant(domain string) bool { _, ok := s.tenants.Load(domain); return ok }

// Tenants lists the tenants' domains in creation order.
func (s *Server) Tenants() ([]string, error) {
	ts, err := s.store.Q().Tenants()
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Domain)
	}
	return out, err
}

// Settings returns a tenant's settings as GET /api/v2/tenants/settings would.
func (s *Server) Settings(domain string) (map[string]any, error) {
	t, err := s.store.Q().Tenant(domain)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownTenant
	}
	return t.Settings, err
}

// PatchSettings edits a tenant's settings behind the API's back: the merge
// rules apply, refused flags do not, and no request is counted.
func (s *Server) PatchSettings(domain string, patch map[string]any) (map[string]any, error) {
	if detail := validateSettingsPatch(patch); detail != "" {
		return nil, errors.New(detail)
	}
	var out map[string]any
	err := s.store.Tx(func(q store.Q) error {
		t, err := q.Tenant(domain)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownTenant
		}
		if err != nil {
			return err
		}
		mergeSettings(t.Settings, copyMap(patch))
		out = t.Settings
		return q.PutTenant(t)
	})
	return out, err
}

// SetRefusedFlags replaces the flags a tenant's PATCH refuses with 400.
func (s *Server) SetRefusedFlags(domain string, flags []string) error {
	return s.store.Tx(func(q store.Q) error {
		t, err := q.Tenant(domain)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownTenant
		}
		if err != nil {
			return err
		}
		t.RefusedFlags = slices.Clone(flags)
		return q.PutTenant(t)
	})
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:tenant_settings"); !ok {
		return
	}
	t, err := s.store.Q().Tenant(tenantOf(r))
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, project(r, t.Settings))
}

func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:tenant_settings"); !ok {
		return
	}
	patch, ok := readObject(w, r)
	if !ok {
		return
	}
	if detail := validateSettingsPatch(patch); detail != "" {
		invalidBody(w, detail)
		return
	}
	var (
		out     map[string]any
		refused string
	)
	err := s.store.Tx(func(q store.Q) error {
		t, err := q.Tenant(tenantOf(r))
		if err != nil {
			return err
		}
		if refused = refusedFlag(patch, t.RefusedFlags); refused != "" {
			return nil
		}
		mergeSettings(t.Settings, patch)
		out = t.Settings
		return q.PutTenant(t)
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	if refused != "" {
		mgmtError(w, http.StatusBadRequest, "", "You are not allowed to set flag '"+refused+"'")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// internal answers 500 for an unexpected error and logs it (errors from the
// store carry no secrets).
func (s *Server) internal(w http.ResponseWriter, err error) {
	s.log.Error("internal error", "err", err)
	mgmtError(w, http.StatusInternalServerError, "", "Internal error")
}

// flagsOf returns a tenant's flags (empty map when none).
func flagsOf(settings map[string]any) map[string]any {
	f, _ := settings["flags"].(map[string]any)
	if f == nil {
		return map[string]any{}
	}
	return f
}
