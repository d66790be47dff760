package identity

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// TenantSettings is what GET and PATCH /api/v2/tenants/settings answer. Keys the platform
// left out are zero (or nil for the pointer fields, where zero is a real value).
type TenantSettings struct {
	// FriendlyName is the tenant's display name.
	FriendlyName string `json:"friendly_name,omitempty"`
	// SupportEmail is shown to users who need help.
	SupportEmail string `json:"support_email,omitempty"`
	// SupportURL is shown to users who need help.
	SupportURL string `json:"support_url,omitempty"`
	// PictureURL is the tenant's logo.
	PictureURL string `json:"picture_url,omitempty"`
	// DefaultDirectory is the connection the password grant uses.
	DefaultDirectory string `json:"default_directory,omitempty"`
	// DefaultAudience is the API audience of tokens requested without one.
	DefaultAudience string `json:"default_audience,omitempty"`
	// SessionLifetime is the login session lifetime in hours.
	SessionLifetime *float64 `json:"session_lifetime,omitempty"`
	// IdleSessionLifetime is the idle session lifetime in hours.
	IdleSessionLifetime *float64 `json:"idle_session_lifetime,omitempty"`
	// EnabledLocales are the languages of the hosted pages, the first the default.
	EnabledLocales []string `json:"enabled_locales,omitempty"`
	// SandboxVersion is the Node.js version custom scripts run on.
	SandboxVersion string `json:"sandbox_version,omitempty"`
	// ChangePassword customizes the hosted change-password page.
	ChangePassword *ChangePasswordPage `json:"change_password,omitempty"`
	// ErrorPage customizes the hosted error page.
	ErrorPage *ErrorPage `json:"error_page,omitempty"`
	// SessionCookie says how the session cookie is kept.
	SessionCookie *SessionCookie `json:"session_cookie,omitempty"`
	// AllowedLogoutURLs are where users may be sent after logging out.
	AllowedLogoutURLs []string `json:"allowed_logout_urls,omitempty"`
	// DefaultRedirectionURI is where login flows that start without an
	// application land.
	DefaultRedirectionURI string `json:"default_redirection_uri,omitempty"`
	// Flags are the tenant's feature flags. A GET may leave a flag out: absent means the
	// platform default, not false.
	Flags map[string]bool `json:"flags,omitempty"`
}

// ChangePasswordPage is the change_password setting.
type ChangePasswordPage struct {
	// Enabled turns the custom page on.
	Enabled *bool `json:"enabled,omitempty"`
	// HTML is the page's template.
	HTML *string `json:"html,omitempty"`
}

// ErrorPage is the error_page setting.
type ErrorPage struct {
	// HTML is the page's template.
	HTML *string `json:"html,omitempty"`
	// ShowLogLink adds a link to the tenant's logs.
	ShowLogLink *bool `json:"show_log_link,omitempty"`
	// URL redirects errors to a page of the tenant's own instead.
	URL *string `json:"url,omitempty"`
}

// SessionCookie is the session_cookie setting.
type SessionCookie struct {
	// Mode is persistent or non-persistent.
	Mode string `json:"mode"`
}

// Setting keys that SettingsPatch.Remove accepts.
const (
	SettingFriendlyName        = "friendly_name"
	SettingSupportEmail        = "support_email"
	SettingSupportURL          = "support_url"
	SettingPictureURL          = "picture_url"
	SettingDefaultDirectory    = "default_directory"
	SettingDefaultAudience     = "default_audience"
	SettingSessionLifetime     = "session_lifetime"
	SettingIdleSessionLifetime = "idle_session_lifetime"
	SettingEnabledLocales      = "enabled_locales"
	SettingSandboxVersion      = "sandbox_version"
	SettingChangePassword      = "change_password"
	SettingErrorPage           = "error_page"
	SettingSessionCookie       = "session_cookie"
	SettingAllowedLogoutURLs   = "allowed_logout_urls"
	SettingDefaultRedirection  = "default_redirection_uri"
)

// SettingsPatch is one PATCH of the tenant settings. Only what it sets is sent, so a
// controller changes the keys it manages and leaves every other key alone; N flag
// changes are one request.
//
// The platform merges top-level keys, and flags key by key. A nested object
// (ChangePassword, ErrorPage) replaces the tenant's whole object.
type SettingsPatch struct {
	// FriendlyName, when set, replaces the display name.
	FriendlyName *string `json:"friendly_name,omitempty"`
	// SupportEmail, when set, replaces the support email.
	SupportEmail *string `json:"support_email,omitempty"`
	// SupportURL, when set, replaces the support URL.
	SupportURL *string `json:"support_url,omitempty"`
	// PictureURL, when set, replaces the logo.
	PictureURL *string `json:"picture_url,omitempty"`
	// DefaultDirectory, when set, replaces the password grant's connection.
	DefaultDirectory *string `json:"default_directory,omitempty"`
	// DefaultAudience, when set, replaces the default audience.
	DefaultAudience *string `json:"default_audience,omitempty"`
	// SessionLifetime, when set, replaces the session lifetime (hours).
	SessionLifetime *float64 `json:"session_lifetime,omitempty"`
	// IdleSessionLifetime, when set, replaces the idle session lifetime (hours).
	IdleSessionLifetime *float64 `json:"idle_session_lifetime,omitempty"`
	// EnabledLocales, when set, replaces the locales (an empty list is sent as []).
	EnabledLocales *[]string `json:"enabled_locales,omitempty"`
	// SandboxVersion, when set, replaces the sandbox version.
	SandboxVersion *string `json:"sandbox_version,omitempty"`
	// ChangePassword, when set, replaces the change-password page object.
	ChangePassword *ChangePasswordPage `json:"change_password,omitempty"`
	// ErrorPage, when set, replaces the error page object.
	ErrorPage *ErrorPage `json:"error_page,omitempty"`
	// SessionCookie, when set, replaces the session cookie object.
	SessionCookie *SessionCookie `json:"session_cookie,omitempty"`
	// AllowedLogoutURLs, when set, replaces the logout URLs (an empty list is sent as []).
	AllowedLogoutURLs *[]string `json:"allowed_logout_urls,omitempty"`
	// DefaultRedirectionURI, when set, replaces the default login route.
	DefaultRedirectionURI *string `json:"default_redirection_uri,omitempty"`
	// Flags changes the named flags only: a true or false value sets the flag, a nil
	// value sends null, which removes the flag so the platform default applies.
	Flags map[string]*bool `json:"flags,omitempty"`
	// Remove lists top-level keys (the Setting* constants) to send as null, which
	// removes them. A key both set and removed is an error.
	Remove []string `json:"-"`
}

// SetFlag records that flag must become value.
func (p *SettingsPatch) SetFlag(flag string, value bool) {
	if p.Flags == nil {
		p.Flags = map[string]*bool{}
	}
	p.Flags[flag] = &value
}

// RemoveFlag records that flag must be removed (sent as null).
func (p *SettingsPatch) RemoveFlag(flag string) {
	if p.Flags == nil {
		p.Flags = map[string]*bool{}
	}
	p.Flags[flag] = nil
}

// IsEmpty reports whether the patch would change nothing, so a controller can skip the
// request (steady state costs no writes).
func (p SettingsPatch) IsEmpty() bool {
	data, err := json.Marshal(p)
	return err == nil && string(data) == "{}"
}

// MarshalJSON sends the set keys, the flags, and null for every removed key.
func (p SettingsPatch) MarshalJSON() ([]byte, error) {
	type plain SettingsPatch
	data, err := json.Marshal(plain(p))
	if err != nil || len(p.Remove) == 0 {
		return data, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	allowed := knownKeys(reflect.TypeOf(SettingsPatch{}))
	for _, k := range p.Remove {
		if !allowed[k] || k == "flags" {
			return nil, fmt.Errorf("cannot remove unknown setting %q", k)
		}
		if _, set := all[k]; set {
			return nil, fmt.Errorf("setting %q is both set and removed", k)
		}
		all[k] = json.RawMessage("null")
	}
	return json.Marshal(all)
}
