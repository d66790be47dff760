package server

import (
	"slices"
	"sort"
	"strings"
)

// The tenant settings a PATCH /api/v2/tenants/settings may carry, as the
// platform documents them:
//
//   - the Management API's UpdateTenantSettingsRequestContent schema
//     (https://auth0.com/docs/api/management/v2/tenants/patch-settings, the
//     schema as published in the platform's OpenAPI document, mirrored at
//     https://github.com/api-evangelist/auth0/blob/main/json-schema/auth0-updatetenantsettingsrequestcontent-schema.json
//     and its nested TenantSettings* schemas);
//   - the *_in_minutes lifetimes that the SDKs send for lifetimes under an
//     hour (go-auth0 management/tenant.go Tenant.MarshalJSON; node-auth0
//     UpdateTenantSettingsRequestContent,
//     https://auth0.github.io/node-auth0/interfaces/index.Management.UpdateTenantSettingsRequestContent.html);
//   - universal_login {colors}, which go-auth0 and the Terraform provider
//     still send (go-auth0 management/tenant.go TenantUniversalLogin);
//   - the flags of the TenantSettingsFlags schema plus the ones the
//     Terraform provider's auth0_tenant resource sends
//     (terraform-provider-auth0 internal/auth0/tenant/resource.go).
//
// A top-level key may always be null: null removes the key (the wire
// reference), which is how IaC tools unset default_token_quota, mtls,
// error_page or skip_non_verifiable_callback_uri_confirmation_prompt.
var settingsSchema = func() *schema {
	hours := &schema{typ: "integer", minimum: num(1)}
	minutes := &schema{typ: "integer", minimum: num(1)}
	page := obj(map[string]*schema{"enabled": tBool, "html": tString})
	quotaCredentials := &schema{typ: "object", minProps: 1, props: map[string]*schema{
		"enforce":  tBool,
		"per_day":  {typ: "integer", minimum: num(1), maximum: num(2147483647)},
		"per_hour": {typ: "integer", minimum: num(1), maximum: num(2147483647)},
	}}
	quota := obj(map[string]*schema{"client_credentials": quotaCredentials})
	nullableBool := &schema{typ: "boolean", nullable: true}
	flags := &schema{typ: "object", props: map[string]*schema{}}
	for _, f := range DocumentedFlags {
		flags.props[f] = nullableBool // a null flag is removed
	}
	return obj(map[string]*schema{
		"change_password":   page,
		"guardian_mfa_page": page,
		"device_flow": obj(map[string]*schema{
			"charset": {typ: "string", enum: []string{"base20", "digits"}},
			"mask":    {typ: "string", maxLen: 20},
		}),
		"default_audience":  tString,
		"default_directory": tString,
		"error_page": obj(map[string]*schema{
			"html": tString, "show_log_link": tBool,
			"url": {typ: "string", format: "absolute-uri-or-empty"},
		}),
		"default_token_quota": {typ: "object", minProps: 1, props: map[string]*schema{"clients": quota, "organizations": quota}},
		"flags":               flags,
		"friendly_name":       tString,
		"picture_url":         {typ: "string", format: "absolute-uri-or-empty"},
		"support_email":       {typ: "string", format: "email-or-empty"},
		"support_url":         {typ: "string", format: "absolute-uri-or-empty"},
		"allowed_logout_urls": tStrings,

		"session_lifetime":                           hours,
		"idle_session_lifetime":                      hours,
		"ephemeral_session_lifetime":                 hours,
		"idle_ephemeral_session_lifetime":            hours,
		"session_lifetime_in_minutes":                minutes,
		"idle_session_lifetime_in_minutes":           minutes,
		"ephemeral_session_lifetime_in_minutes":      minutes,
		"idle_ephemeral_session_lifetime_in_minutes": minutes,

		"sandbox_version":         {typ: "string", maxLen: 8},
		"legacy_sandbox_version":  {typ: "string", maxLen: 8},
		"default_redirection_uri": {typ: "string", format: "absolute-https-uri-or-empty"},
		"enabled_locales":         {typ: "array", minItems: 1, items: &schema{typ: "string", enum: SupportedLocales}},
		"session_cookie": {typ: "object", required: []string{"mode"}, props: map[string]*schema{
			"mode": {typ: "string", enum: []string{"persistent", "non-persistent"}},
		}},
		"sessions":    obj(map[string]*schema{"oidc_logout_prompt_enabled": tBool}),
		"oidc_logout": obj(map[string]*schema{"rp_logout_end_session_endpoint_discovery": tBool}),
		"universal_login": obj(map[string]*schema{"colors": obj(map[string]*schema{
			"primary":         tString,
			"page_background": {}, // a colour string or a gradient object
		})}),
		"customize_mfa_in_postlogin_action":                    tBool,
		"allow_organization_name_in_authentication_api":        tBool,
		"acr_values_supported":                                 tStrings,
		"mtls":                                                 obj(map[string]*schema{"enable_endpoint_aliases": tBool}),
		"pushed_authorization_requests_supported":              tBool,
		"authorization_response_iss_parameter_supported":       tBool,
		"skip_non_verifiable_callback_uri_confirmation_prompt": tBool,
		"resource_parameter_profile":                           {typ: "string", enum: []string{"audience", "compatibility"}},
		"client_id_metadata_document_supported":                tBool,
		"enable_ai_guide":                                      tBool,
		"phone_consolidated_experience":                        tBool,
		"dynamic_client_registration_security_mode":            {typ: "string", enum: []string{"strict", "permissive"}},
	})
}()

// DocumentedFlags are the tenant flags a settings PATCH accepts: the
// TenantSettingsFlags schema's (https://auth0.github.io/node-auth0/interfaces/management.Management.TenantSettingsFlags.html)
// and those the Terraform provider and go-auth0 still send
// (enable_custom_domain_in_emails, enable_legacy_logs_search_v2,
// universal_login, use_scope_descriptions_for_consent). Any other flag is
// refused as an additional property.
var DocumentedFlags = []string{
	"change_pwd_flow_v1", "enable_apis_section", "disable_impersonation", "enable_client_connections",
	"enable_pipeline2", "allow_legacy_delegation_grant_types", "allow_legacy_ro_grant_types",
	"allow_legacy_tokeninfo_endpoint", "enable_legacy_profile", "enable_idtoken_api2",
	"enable_public_signup_user_exists_error", "enable_sso", "allow_changing_enable_sso",
	"disable_clickjack_protection_headers", "no_disclose_enterprise_connections",
	"enforce_client_authentication_on_passwordless_start", "enable_adfs_waad_email_verification",
	"revoke_refresh_token_grant", "dashboard_log_streams_next", "dashboard_insights_view",
	"disable_fields_map_fix", "mfa_show_factor_list_on_enrollment", "remove_alg_from_jwks",
	"improved_signup_bot_detection_in_classic", "genai_trial", "enable_dynamic_client_registration",
	"disable_management_api_sms_obfuscation", "trust_azure_adfs_email_verified_connection_property",
	"custom_domains_provisioning",
	"enable_custom_domain_in_emails", "enable_legacy_logs_search_v2", "universal_login",
	"use_scope_descriptions_for_consent",
}

// SupportedLocales are the values enabled_locales takes
// (TenantSettingsSupportedLocalesEnum).
var SupportedLocales = strings.Fields(`am ar ar-EG ar-SA az bg bn bs ca-ES cnr cs cy da de el en en-CA es
	es-419 es-AR es-MX et eu-ES fa fi fr fr-CA fr-FR gl-ES gu he hi hr hu hy id is it ja ka kk kn ko lt lv mk
	ml mn mr ms my nb nl nn no pa pl pt pt-BR pt-PT ro ru sk sl so sq sr sv sw ta te th tl tr uk ur vi zgh
	zh-CN zh-HK zh-MO zh-TW`)

// lifetimeInMinutes maps each *_in_minutes key to the hours key it sets: the
// platform keeps and answers lifetimes in hours (a fraction below one hour).
var lifetimeInMinutes = map[string]string{
	"session_lifetime_in_minutes":                "session_lifetime",
	"idle_session_lifetime_in_minutes":           "idle_session_lifetime",
	"ephemeral_session_lifetime_in_minutes":      "ephemeral_session_lifetime",
	"idle_ephemeral_session_lifetime_in_minutes": "idle_ephemeral_session_lifetime",
}

// validateSettingsPatch returns "" or the payload validation detail.
func validateSettingsPatch(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field, known := settingsSchema.props[k]
		if !known {
			return "'Additional properties not allowed: " + k + "'"
		}
		if p[k] == nil {
			continue // null removes
		}
		if d := field.validate(k, p[k]); d != "" {
			return d
		}
	}
	return ""
}

// mergeSettings applies the PATCH rules: top-level keys replace, flags merge
// key by key, null removes, lifetimes in minutes are kept in hours.
func mergeSettings(doc, patch map[string]any) {
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	// Minutes after hours: a PATCH carrying both ends with the minutes.
	sort.Slice(keys, func(i, j int) bool {
		_, mi := lifetimeInMinutes[keys[i]]
		_, mj := lifetimeInMinutes[keys[j]]
		return !mi && mj || mi == mj && keys[i] < keys[j]
	})
	for _, k := range keys {
		v := patch[k]
		if hoursKey, ok := lifetimeInMinutes[k]; ok {
			k = hoursKey
			if v != nil {
				v = toFloat(v) / 60
			}
		}
		switch {
		case v == nil:
			delete(doc, k)
		case k == "flags":
			flags, _ := doc["flags"].(map[string]any)
			if flags == nil {
				flags = map[string]any{}
			}
			for fk, fv := range v.(map[string]any) {
				if fv == nil {
					delete(flags, fk)
				} else {
					flags[fk] = fv
				}
			}
			doc["flags"] = flags
		default:
			doc[k] = v
		}
	}
}

// refusedFlag returns the first flag of the patch the tenant refuses.
func refusedFlag(patch map[string]any, refused []string) string {
	flags, _ := patch["flags"].(map[string]any)
	names := make([]string, 0, len(flags))
	for k := range flags {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if slices.Contains(refused, k) {
			return k
		}
	}
	return ""
}
