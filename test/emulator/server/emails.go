package server

import (
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// providerCredentials lists, per provider name, the credential keys that are
// required and those that may be answered back (the rest are secrets).
var providerCredentials = map[string]struct{ required, public []string }{
	"mandrill":  {[]string{"api_key"}, nil},
	"sendgrid":  {[]string{"api_key"}, nil},
	"sparkpost": {[]string{"api_key"}, []string{"region"}},
	"mailgun":   {[]string{"api_key", "domain"}, []string{"domain", "region"}},
	"ses":       {[]string{"accessKeyId", "secretAccessKey", "region"}, []string{"region"}},
	"smtp":      {[]string{"smtp_host", "smtp_port", "smtp_user", "smtp_pass"}, []string{"smtp_host", "smtp_port", "smtp_user"}},
	"azure_cs":  {[]string{"connectionString"}, nil},
	"ms365":     {[]string{"tenantId", "clientId", "clientSecret"}, nil},
	"custom":    {nil, nil},
}

var providerFields = []string{"name", "enabled", "default_from_address", "credentials", "settings"}

// validateProvider returns "" or the payload validation detail for a whole
// provider document.
func validateProvider(p map[string]any) string {
	name, _ := p["name"].(string)
	spec, ok := providerCredentials[name]
	if !ok {
		keys := make([]string, 0, len(providerCredentials))
		for k := range providerCredentials {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "'No enum match for: " + name + "' on property name (expected one of " + joinComma(keys) + ")"
	}
	if v, has := p["enabled"]; has && !isBool(v) {
		return "'Expected type boolean but found type " + typeName(v) + "' on property enabled"
	}
	if v, has := p["default_from_address"]; has && !isString(v) {
		return "'Expected type string but found type " + typeName(v) + "' on property default_from_address"
	}
	if v, has := p["settings"]; has && v != nil && !isObject(v) {
		return "'Expected type object but found type " + typeName(v) + "' on property settings"
	}
	creds, isObj := p["credentials"].(map[string]any)
	if p["credentials"] != nil && !isObj {
		return "'Expected type object but found type " + typeName(p["credentials"]) + "' on property credentials"
	}
	for _, k := range spec.required {
		v, has := creds[k]
		if !has {
			return "'Missing required property: " + k + "' on property credentials"
		}
		if k == "smtp_port" {
			if !isInteger(v) {
				return "'Expected type integer but found type " + typeName(v) + "' on property credentials.smtp_port"
			}
		} else if !isString(v) || v == "" {
			return "'Expected type string but found type " + typeName(v) + "' on property credentials." + k
		}
	}
	return ""
}

func joinComma(s []string) string {
	out := ""
	for i, e := range s {
		if i > 0 {
			out += ", "
		}
		out += e
	}
	return out
}

// providerView is the provider as answered: secrets never come back.
func providerView(p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"name", "enabled", "default_from_address", "settings"} {
		if v, ok := p[k]; ok {
			out[k] = v
		}
	}
	creds, _ := p["credentials"].(map[string]any)
	pub := map[string]any{}
	for _, k := range providerCredentials[strOf(p, "name")].public {
		if v, ok := creds[k]; ok {
			pub[k] = v
		}
	}
	out["credentials"] = pub
	return out
}

func (s *Server) getEmailProvider(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:email_provider"); !ok {
		return
	}
	p, err := s.store.Q().EmailProvider(tenantOf(r))
	if errors.Is(err, store.ErrNotFound) {
		mgmtError(w, http.StatusNotFound, "inexistent_email_provider", "There is not a configured email provider")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	v := providerView(p)
	if r.URL.Query().Get("fields") == "" {
		// Without fields the platform answers only name and enabled.
		v = map[string]any{"name": v["name"], "enabled": v["enabled"]}
	} else {
		v = project(r, v)
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) createEmailProvider(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:email_provider"); !ok {
		return
	}
	body, ok := readFields(w, r, providerFields)
	if !ok {
		return
	}
	if _, has := body["name"]; !has {
		invalidBody(w, "'Missing required property: name'")
		return
	}
	if _, has := body["credentials"]; !has {
		invalidBody(w, "'Missing required property: credentials'")
		return
	}
	if _, has := body["enabled"]; !has {
		body["enabled"] = true
	}
	if d := validateProvider(body); d != "" {
		invalidBody(w, d)
		return
	}
	domain := tenantOf(r)
	conflict := false
	err := s.store.Tx(func(q store.Q) error {
		_, err := q.EmailProvider(domain)
		if err == nil {
			conflict = true
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return q.PutEmailProvider(domain, body)
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	if conflict {
		mgmtError(w, http.StatusConflict, "email_provider_conflict", "An email provider is already configured")
		return
	}
	writeJSON(w, http.StatusCreated, providerView(body))
}

func (s *Server) patchEmailProvider(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:email_provider"); !ok {
		return
	}
	body, ok := readFields(w, r, providerFields)
	if !ok {
		return
	}
	domain := tenantOf(r)
	var (
		out    map[string]any
		detail string
		none   bool
	)
	err := s.store.Tx(func(q store.Q) error {
		p, err := q.EmailProvider(domain)
		if errors.Is(err, store.ErrNotFound) {
			none = true
			return nil
		}
		if err != nil {
			return err
		}
		// Top-level keys merge; credentials and settings, when sent,
		// replace what was there (secrets cannot be merged blindly).
		for k, v := range body {
			if v == nil {
				delete(p, k)
			} else {
				p[k] = v
			}
		}
		if detail = validateProvider(p); detail != "" {
			return nil
		}
		out = p
		return q.PutEmailProvider(domain, p)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case none:
		mgmtError(w, http.StatusNotFound, "inexistent_email_provider", "There is not a configured email provider")
	case detail != "":
		invalidBody(w, detail)
	default:
		writeJSON(w, http.StatusOK, providerView(out))
	}
}

func (s *Server) deleteEmailProvider(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "delete:email_provider"); !ok {
		return
	}
	if err := s.store.Q().DeleteEmailProvider(tenantOf(r)); err != nil {
		s.internal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// customProvider returns the tenant's provider when one is configured and
// enabled; otherwise the built-in provider is in use.
func customProvider(q store.Q, domain string) (map[string]any, bool, error) {
	p, err := q.EmailProvider(domain)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if en, ok := p["enabled"].(bool); ok && !en {
		return nil, false, nil
	}
	return p, true, nil
}

// TemplateNames are the email templates the platform knows.
var TemplateNames = []string{
	"verify_email", "verify_email_by_code", "reset_email", "reset_email_by_code", "welcome_email",
	"blocked_account", "stolen_credentials", "enrollment_email", "mfa_oob_code", "user_invitation",
	"change_password", "password_reset", "async_approval",
}

var templateFields = []string{"template", "body", "from", "subject", "syntax", "resultUrl", "urlLifetimeInSeconds", "includeEmailInRedirect", "enabled"}

// customizationFields are what the built-in provider refuses to customize.
var customizationFields = []string{"from", "subject", "body"}

// validateTemplate checks the fields present in body.
func validateTemplate(body map[string]any) string {
	if k := unknownField(body, templateFields); k != "" {
		return "'Additional properties not allowed: " + k + "'"
	}
	for _, k := range []string{"template", "body", "from", "subject", "resultUrl"} {
		if v, ok := body[k]; ok && v != nil && !isString(v) {
			return "'Expected type string but found type " + typeName(v) + "' on property " + k
		}
	}
	if v, ok := body["syntax"]; ok && v != "liquid" {
		return "'No enum match for: " + typeName(v) + "' on property syntax"
	}
	for _, k := range []string{"includeEmailInRedirect", "enabled"} {
		if v, ok := body[k]; ok && !isBool(v) {
			return "'Expected type boolean but found type " + typeName(v) + "' on property " + k
		}
	}
	if v, ok := body["urlLifetimeInSeconds"]; ok && v != nil && (!isInteger(v) || toInt(v) < 0) {
		return "'Expected a non-negative integer' on property urlLifetimeInSeconds"
	}
	if t, ok := body["template"].(string); ok && !slices.Contains(TemplateNames, t) {
		return "'No enum match for: " + t + "' on property template"
	}
	return ""
}

// refusesCustomization answers 400 and returns true when body customizes
// from, subject or body while only the built-in provider is available: both
// email migrations are past their mandatory dates.
func (s *Server) refusesCustomization(w http.ResponseWriter, q store.Q, domain string, body map[string]any) (bool, error) {
	custom := false
	for _, k := range customizationFields {
		if v, ok := body[k].(string); ok && v != "" {
			custom = true
		}
	}
	if !custom {
		return false, nil
	}
	_, has, err := customProvider(q, domain)
	if err != nil || has {
		return false, err
	}
	mgmtError(w, http.StatusBadRequest, "invalid_body",
		"Email templates cannot be customized (from, subject, body) with the built-in email provider: configure a custom email provider first")
	return true, nil
}

func templateView(t map[string]any) map[string]any {
	out := copyMap(t)
	if _, ok := out["syntax"]; !ok {
		out["syntax"] = "liquid"
	}
	if _, ok := out["enabled"]; !ok {
		out["enabled"] = true
	}
	return out
}

func (s *Server) createEmailTemplate(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:email_templates"); !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := validateTemplate(body); d != "" {
		invalidBody(w, d)
		return
	}
	name, _ := body["template"].(string)
	if name == "" {
		invalidBody(w, "'Missing required property: template'")
		return
	}
	domain := tenantOf(r)
	var conflict, refused bool
	err := s.store.Tx(func(q store.Q) error {
		if _, err := q.EmailTemplate(domain, name); err == nil {
			conflict = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var err error
		if refused, err = s.refusesCustomization(w, q, domain, body); err != nil || refused {
			return err
		}
		return q.PutEmailTemplate(domain, name, body)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case refused:
	case conflict:
		mgmtError(w, http.StatusConflict, "", "Template "+name+" already exists.")
	default:
		writeJSON(w, http.StatusCreated, templateView(body))
	}
}

func (s *Server) templateName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if !slices.Contains(TemplateNames, name) {
		mgmtError(w, http.StatusBadRequest, "invalid_uri", "Path validation error: 'No enum match for: "+name+"' on property templateName")
		return "", false
	}
	return name, true
}

func (s *Server) getEmailTemplate(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:email_templates"); !ok {
		return
	}
	name, ok := s.templateName(w, r)
	if !ok {
		return
	}
	t, err := s.store.Q().EmailTemplate(tenantOf(r), name)
	if errors.Is(err, store.ErrNotFound) {
		mgmtError(w, http.StatusNotFound, "inexistent_email_template", "The template does not exist.")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, templateView(t))
}

func (s *Server) patchEmailTemplate(w http.ResponseWriter, r *http.Request) {
	s.writeTemplate(w, r, false)
}
func (s *Server) putEmailTemplate(w http.ResponseWriter, r *http.Request) {
	s.writeTemplate(w, r, true)
}

// writeTemplate is PATCH (merge into an existing template) and PUT (replace
// whole, creating it if needed; the body's template must match the path).
func (s *Server) writeTemplate(w http.ResponseWriter, r *http.Request, replace bool) {
	if _, ok := s.authorize(w, r, "update:email_templates"); !ok {
		return
	}
	name, ok := s.templateName(w, r)
	if !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := validateTemplate(body); d != "" {
		invalidBody(w, d)
		return
	}
	if t, has := body["template"]; has && t != name {
		invalidBody(w, "'The template name in the body ("+strOf(body, "template")+") does not match the path ("+name+")'")
		return
	}
	if replace {
		body["template"] = name
	}
	domain := tenantOf(r)
	var (
		out              map[string]any
		missing, refused bool
	)
	err := s.store.Tx(func(q store.Q) error {
		cur, err := q.EmailTemplate(domain, name)
		switch {
		case errors.Is(err, store.ErrNotFound) && !replace:
			missing = true
			return nil
		case errors.Is(err, store.ErrNotFound):
			cur = nil
		case err != nil:
			return err
		}
		if refused, err = s.refusesCustomization(w, q, domain, body); err != nil || refused {
			return err
		}
		if replace {
			out = body
		} else {
			out = cur
			for k, v := range body {
				if v == nil {
					delete(out, k)
				} else {
					out[k] = v
				}
			}
		}
		return q.PutEmailTemplate(domain, name, out)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case refused:
	case missing:
		mgmtError(w, http.StatusNotFound, "inexistent_email_template", "The template does not exist.")
	default:
		writeJSON(w, http.StatusOK, templateView(out))
	}
}
