package server_test

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

func TestSettingsPatchMergesTopLevelKeysFlagsKeyByKeyAndNullRemoves(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "settings.emulator.local")

	r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{
		"friendly_name": "Acme", "support_email": "help@acme.example",
		"change_password": map[string]any{"enabled": true, "html": "<p>x</p>"},
		"flags":           map[string]any{"enable_legacy_profile": true},
	})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKeyWithValue("friendly_name", "Acme"))

	r = a.do("PATCH", "/api/v2/tenants/settings", map[string]any{
		"support_email":   nil,
		"change_password": map[string]any{"enabled": false},
		"flags":           map[string]any{"enable_sso": false, "enable_legacy_profile": nil},
	})
	g.Expect(r.Status).To(Equal(200))
	got := a.do("GET", "/api/v2/tenants/settings", nil).JSON()
	g.Expect(got).To(HaveKeyWithValue("friendly_name", "Acme"), "keys the PATCH left out stay")
	g.Expect(got).NotTo(HaveKey("support_email"), "null removes a key")
	g.Expect(got).To(HaveKeyWithValue("change_password", map[string]any{"enabled": false}), "a top-level object is replaced whole")
	flags := got["flags"].(map[string]any)
	g.Expect(flags).To(HaveKeyWithValue("enable_sso", false))
	g.Expect(flags).To(HaveKeyWithValue("enable_client_connections", true), "flags the PATCH left out stay")
	g.Expect(flags).NotTo(HaveKey("enable_legacy_profile"), "a null flag is removed")
	g.Expect(got).To(Equal(e.Settings(a.domain)), "the answer is what is stored")
}

func TestANewTenantIsEnrolledInTheMigrationsAndALegacyOneIsNot(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	fresh := newTenant(t, e, "new.emulator.local")
	old := newTenant(t, e, "old.emulator.local", emulatortest.Legacy())
	freshFlags := fresh.do("GET", "/api/v2/tenants/settings", nil).JSON()["flags"].(map[string]any)
	g.Expect(freshFlags).NotTo(HaveKey("change_pwd_flow_v1"), "a GET may leave a flag out")
	g.Expect(freshFlags).NotTo(HaveKey("enable_legacy_profile"))
	oldFlags := old.do("GET", "/api/v2/tenants/settings", nil).JSON()["flags"].(map[string]any)
	g.Expect(oldFlags).To(HaveKeyWithValue("change_pwd_flow_v1", true))
	g.Expect(oldFlags).To(HaveKeyWithValue("enable_legacy_profile", true))
}

func TestSettingsPatchRefusesReadOnlyAndConfiguredFlags(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "refuse.emulator.local")
	e.RefuseFlags(a.domain, "disable_impersonation", "enable_apis_section")
	for _, flag := range []string{"disable_impersonation", "enable_apis_section"} {
		t.Run(flag, func(t *testing.T) {
			g := NewWithT(t)
			before := e.Settings(a.domain)
			r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"friendly_name": "changed", "flags": map[string]any{"enable_sso": false, flag: false}})
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", "You are not allowed to set flag '"+flag+"'"))
			g.Expect(e.Settings(a.domain)).To(Equal(before), "nothing of a refused PATCH is applied")
		})
	}
	t.Run("other flags still change", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"flags": map[string]any{"enable_sso": false}}).Status).To(Equal(200))
		g.Expect(e.Flags(a.domain)).To(HaveKeyWithValue("enable_sso", false))
	})
}

func TestSettingsPatchValidatesThePayload(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "validate.emulator.local")
	before := e.Settings(a.domain)
	// Messages as the platform's z-schema validation words them, e.g.
	// "Payload validation error: 'Additional properties not allowed: enabled' on
	// property error_page ..." (github.com/auth0-samples/github-source-control-integration/issues/8),
	// ending with a period (github.com/auth0/auth0-java/issues/715). Ranges and
	// enums from the UpdateTenantSettingsRequestContent schema
	// (https://auth0.com/docs/api/management/v2/tenants/patch-settings).
	cases := map[string]struct {
		body    map[string]any
		message string
	}{
		"unknown key":         {map[string]any{"colour": "red"}, "Payload validation error: 'Additional properties not allowed: colour'."},
		"read-only key":       {map[string]any{"sandbox_versions_available": []any{"22"}}, "Payload validation error: 'Additional properties not allowed: sandbox_versions_available'."},
		"unknown flag":        {map[string]any{"flags": map[string]any{"enable_teleport": true}}, "Payload validation error: 'Additional properties not allowed: enable_teleport' on property flags."},
		"unknown nested key":  {map[string]any{"error_page": map[string]any{"enabled": true}}, "Payload validation error: 'Additional properties not allowed: enabled' on property error_page."},
		"string for integer":  {map[string]any{"session_lifetime": "168"}, "Payload validation error: 'Expected type integer but found type string' on property session_lifetime."},
		"fraction of an hour": {map[string]any{"idle_session_lifetime": 1.5}, "Payload validation error: 'Expected type integer but found type number' on property idle_session_lifetime."},
		"lifetime below 1":    {map[string]any{"ephemeral_session_lifetime": 0}, "Payload validation error: 'Value 0 is less than minimum 1' on property ephemeral_session_lifetime."},
		"minutes below 1":     {map[string]any{"session_lifetime_in_minutes": 0}, "Payload validation error: 'Value 0 is less than minimum 1' on property session_lifetime_in_minutes."},
		"non-boolean flag":    {map[string]any{"flags": map[string]any{"enable_sso": "yes"}}, "Payload validation error: 'Expected type boolean but found type string' on property flags.enable_sso."},
		"object for a string": {map[string]any{"friendly_name": map[string]any{}}, "Payload validation error: 'Expected type string but found type object' on property friendly_name."},
		"device flow charset": {map[string]any{"device_flow": map[string]any{"charset": "hex"}}, "Payload validation error: 'No enum match for: hex' on property device_flow.charset."},
		"device flow mask":    {map[string]any{"device_flow": map[string]any{"mask": "****-****-****-****-*"}}, "Payload validation error: 'String is too long (21 chars), maximum 20' on property device_flow.mask."},
		"cookie mode":         {map[string]any{"session_cookie": map[string]any{"mode": "forever"}}, "Payload validation error: 'No enum match for: forever' on property session_cookie.mode."},
		"cookie without mode": {map[string]any{"session_cookie": map[string]any{}}, "Payload validation error: 'Missing required property: mode' on property session_cookie."},
		"no locale":           {map[string]any{"enabled_locales": []any{}}, "Payload validation error: 'Array is too short (0), minimum 1' on property enabled_locales."},
		"unknown locale":      {map[string]any{"enabled_locales": []any{"en", "tlh"}}, "Payload validation error: 'No enum match for: tlh' on property enabled_locales.1."},
		"quota per day":       {map[string]any{"default_token_quota": map[string]any{"clients": map[string]any{"client_credentials": map[string]any{"per_day": 0}}}}, "Payload validation error: 'Value 0 is less than minimum 1' on property default_token_quota.clients.client_credentials.per_day."},
		"empty quota":         {map[string]any{"default_token_quota": map[string]any{}}, "Payload validation error: 'Too few properties defined (0), minimum 1' on property default_token_quota."},
		"sandbox version":     {map[string]any{"sandbox_version": "123456789"}, "Payload validation error: 'String is too long (9 chars), maximum 8' on property sandbox_version."},
		"http redirection":    {map[string]any{"default_redirection_uri": "http://acme.example/login"}, "Payload validation error: 'Object didn't pass validation for format absolute-https-uri-or-empty: http://acme.example/login' on property default_redirection_uri."},
		"support email":       {map[string]any{"support_email": "help desk"}, "Payload validation error: 'Object didn't pass validation for format email-or-empty: help desk' on property support_email."},
		"mtls key":            {map[string]any{"mtls": map[string]any{"enable_endpoint_aliases": "yes"}}, "Payload validation error: 'Expected type boolean but found type string' on property mtls.enable_endpoint_aliases."},
		"resource profile":    {map[string]any{"resource_parameter_profile": "resource"}, "Payload validation error: 'No enum match for: resource' on property resource_parameter_profile."},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.do("PATCH", "/api/v2/tenants/settings", c.body)
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "invalid_body"))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", c.message))
			g.Expect(e.Settings(a.domain)).To(Equal(before), "nothing of a refused PATCH is applied")
		})
	}
	t.Run("a body that is not JSON", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("PATCH", "/api/v2/tenants/settings", "just a string")
		g.Expect(r.Status).To(Equal(400))
		g.Expect(r.Header.Get("Content-Type")).To(Equal("application/json; charset=utf-8"))
	})
}

// documentedSettings is a PATCH body with every documented setting, its
// values from the platform's example of the endpoint
// (https://auth0.com/docs/api/management/v2/tenants/patch-settings) and the
// Terraform provider's auth0_tenant example.
func documentedSettings() map[string]any {
	flags := map[string]any{}
	for _, f := range []string{"change_pwd_flow_v1", "enable_apis_section", "enable_client_connections", "enable_pipeline2",
		"allow_legacy_delegation_grant_types", "allow_legacy_ro_grant_types", "allow_legacy_tokeninfo_endpoint",
		"enable_legacy_profile", "enable_idtoken_api2", "enable_public_signup_user_exists_error", "enable_sso",
		"allow_changing_enable_sso", "disable_clickjack_protection_headers", "no_disclose_enterprise_connections",
		"enforce_client_authentication_on_passwordless_start", "enable_adfs_waad_email_verification",
		"revoke_refresh_token_grant", "dashboard_log_streams_next", "dashboard_insights_view", "disable_fields_map_fix",
		"mfa_show_factor_list_on_enrollment", "remove_alg_from_jwks", "improved_signup_bot_detection_in_classic",
		"genai_trial", "enable_dynamic_client_registration", "disable_management_api_sms_obfuscation",
		"trust_azure_adfs_email_verified_connection_property", "custom_domains_provisioning",
		"enable_custom_domain_in_emails", "enable_legacy_logs_search_v2", "universal_login", "use_scope_descriptions_for_consent"} {
		flags[f] = false
	}
	flags["enable_client_connections"], flags["enable_sso"] = true, true
	quota := map[string]any{"client_credentials": map[string]any{"enforce": true, "per_day": 1073741824, "per_hour": 1073741824}}
	return map[string]any{
		"change_password":     map[string]any{"enabled": false, "html": ""},
		"guardian_mfa_page":   map[string]any{"enabled": false, "html": ""},
		"default_audience":    "",
		"default_directory":   "",
		"error_page":          map[string]any{"html": "", "show_log_link": false, "url": "https://mycompany.org/error"},
		"device_flow":         map[string]any{"charset": "base20", "mask": "****-****"},
		"default_token_quota": map[string]any{"clients": quota, "organizations": quota},
		"flags":               flags,
		"friendly_name":       "My Company",
		"picture_url":         "https://mycompany.org/logo.png",
		"support_email":       "support@mycompany.org",
		"support_url":         "https://mycompany.org/support",
		"allowed_logout_urls": []any{"https://mycompany.org/logoutCallback"},

		"session_lifetime":                720,
		"idle_session_lifetime":           72,
		"ephemeral_session_lifetime":      48,
		"idle_ephemeral_session_lifetime": 36,

		"sandbox_version":         "18",
		"legacy_sandbox_version":  "",
		"default_redirection_uri": "https://example.com/login",
		"enabled_locales":         []any{"en", "de", "fr"},
		"session_cookie":          map[string]any{"mode": "non-persistent"},
		"sessions":                map[string]any{"oidc_logout_prompt_enabled": false},
		"oidc_logout":             map[string]any{"rp_logout_end_session_endpoint_discovery": true},
		"universal_login":         map[string]any{"colors": map[string]any{"primary": "#0059d6", "page_background": "#000000"}},

		"customize_mfa_in_postlogin_action":                    false,
		"allow_organization_name_in_authentication_api":        false,
		"acr_values_supported":                                 []any{"urn:mace:incommon:iap:silver"},
		"mtls":                                                 map[string]any{"enable_endpoint_aliases": true},
		"pushed_authorization_requests_supported":              true,
		"authorization_response_iss_parameter_supported":       false,
		"skip_non_verifiable_callback_uri_confirmation_prompt": false,
		"resource_parameter_profile":                           "compatibility",
		"client_id_metadata_document_supported":                false,
		"enable_ai_guide":                                      false,
		"phone_consolidated_experience":                        false,
		"dynamic_client_registration_security_mode":            "strict",
	}
}

func TestSettingsPatchAcceptsAndReturnsEveryDocumentedField(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "documented.emulator.local")
	body := documentedSettings()
	r := a.do("PATCH", "/api/v2/tenants/settings", body)
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	got := a.do("GET", "/api/v2/tenants/settings", nil).JSON()
	for k, want := range roundTrip(body) {
		if k == "flags" {
			for f, v := range want.(map[string]any) {
				g.Expect(got["flags"]).To(HaveKeyWithValue(f, v), "flags."+f)
			}
			continue
		}
		g.Expect(got).To(HaveKeyWithValue(k, want), k)
	}
	g.Expect(got).To(HaveKey("sandbox_versions_available"), "GET answers read-only settings too")
	g.Expect(a.do("GET", "/api/v2/tenants/settings?fields=friendly_name,session_cookie&include_fields=true", nil).JSON()).To(Equal(map[string]any{
		"friendly_name": "My Company", "session_cookie": map[string]any{"mode": "non-persistent"}}))
	g.Expect(a.do("GET", "/api/v2/tenants/settings?fields=flags&include_fields=false", nil).JSON()).NotTo(HaveKey("flags"))
}

// roundTrip is v as a JSON client reads it back (numbers as float64).
func roundTrip(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestSettingsPatchFromAnIaCToolUnsetsWhatItSendsAsNull(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "iac.emulator.local")
	g.Expect(a.do("PATCH", "/api/v2/tenants/settings", documentedSettings()).Status).To(Equal(200))

	// What the Terraform provider sends for an auth0_tenant that declares none
	// of these: the nullable fields as null
	// (terraform-provider-auth0 internal/auth0/tenant/expand.go fetchNullableFields).
	r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{
		"friendly_name":       "Tenant Name",
		"default_token_quota": nil, "mtls": nil, "error_page": nil, "acr_values_supported": nil,
		"skip_non_verifiable_callback_uri_confirmation_prompt": nil,
		"default_redirection_uri":                              "",
		"flags":                                                map[string]any{"enable_sso": true, "universal_login": true},
	})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	got := a.do("GET", "/api/v2/tenants/settings", nil).JSON()
	for _, k := range []string{"default_token_quota", "mtls", "error_page", "acr_values_supported", "skip_non_verifiable_callback_uri_confirmation_prompt"} {
		g.Expect(got).NotTo(HaveKey(k), "null unsets "+k)
	}
	g.Expect(got).To(HaveKeyWithValue("default_redirection_uri", ""))
	g.Expect(got).To(HaveKeyWithValue("device_flow", map[string]any{"charset": "base20", "mask": "****-****"}), "what the PATCH left out stays")
	g.Expect(got["flags"]).To(HaveKeyWithValue("universal_login", true))
}

func TestSettingsLifetimesInMinutesAreKeptInHours(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "minutes.emulator.local")
	// go-auth0 sends a lifetime under an hour as *_in_minutes (management/tenant.go
	// Tenant.MarshalJSON); the platform answers lifetimes in hours.
	r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{
		"session_lifetime_in_minutes": 90, "idle_session_lifetime_in_minutes": 30,
		"ephemeral_session_lifetime_in_minutes": 120, "idle_ephemeral_session_lifetime_in_minutes": 15,
	})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	got := r.JSON()
	g.Expect(got).To(HaveKeyWithValue("session_lifetime", 1.5))
	g.Expect(got).To(HaveKeyWithValue("idle_session_lifetime", 0.5))
	g.Expect(got).To(HaveKeyWithValue("ephemeral_session_lifetime", 2.0))
	g.Expect(got).To(HaveKeyWithValue("idle_ephemeral_session_lifetime", 0.25))
	g.Expect(got).NotTo(HaveKey("session_lifetime_in_minutes"))
	g.Expect(a.do("GET", "/api/v2/tenants/settings", nil).JSON()).To(Equal(got))
}
