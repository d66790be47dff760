package server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// The bodies of POST and PATCH /api/v2/clients, from the platform's
// CreateClientRequestContent and UpdateClientRequestContent schemas
// (https://auth0.com/docs/api/management/v2/clients/post-clients,
// https://auth0.com/docs/api/management/v2/clients/patch-clients-by-id).
// Top-level fields are checked by type, enum and range; nested objects the
// emulator gives no meaning to (addons, mobile, refresh_token, ...) are
// kept as sent.
var (
	createClientSchema = clientSchema(false)
	updateClientSchema = clientSchema(true)
)

var appTypes = []string{"native", "spa", "regular_web", "non_interactive", "resource_server", "express_configuration",
	"rms", "box", "cloudbees", "concur", "dropbox", "mscrm", "echosign", "egnyte", "newrelic", "office365", "salesforce",
	"sentry", "sharepoint", "slack", "springcm", "zendesk", "zoom", "sso_integration", "oag"}

func clientSchema(update bool) *schema {
	urls := &schema{typ: "array", items: tString}
	nonEmpty := &schema{typ: "array", items: &schema{typ: "string", minLen: 1}}
	s := obj(map[string]*schema{
		"name":                                  {typ: "string", minLen: 1},
		"description":                           {typ: "string", maxLen: 140},
		"logo_uri":                              {typ: "string", format: "absolute-uri-or-empty"},
		"callbacks":                             urls,
		"allowed_origins":                       urls,
		"web_origins":                           urls,
		"allowed_logout_urls":                   urls,
		"client_aliases":                        nonEmpty,
		"allowed_clients":                       nonEmpty,
		"grant_types":                           {typ: "array", unique: true, items: &schema{typ: "string", minLen: 1}},
		"token_endpoint_auth_method":            {typ: "string", nullable: update, enum: []string{"none", "client_secret_post", "client_secret_basic"}},
		"is_token_endpoint_ip_header_trusted":   tBool,
		"app_type":                              {typ: "string", enum: appTypes},
		"is_first_party":                        tBool,
		"oidc_conformant":                       tBool,
		"jwt_configuration":                     tObject,
		"encryption_key":                        {typ: "object", open: true, nullable: update},
		"sso":                                   tBool,
		"cross_origin_authentication":           tBool,
		"cross_origin_loc":                      {typ: "string", nullable: update, format: "url"},
		"sso_disabled":                          tBool,
		"custom_login_page_on":                  tBool,
		"custom_login_page":                     tString,
		"custom_login_page_preview":             tString,
		"form_template":                         tString,
		"addons":                                tObject,
		"client_metadata":                       {typ: "object", values: &schema{typ: "string", maxLen: 255}},
		"mobile":                                tObject,
		"initiate_login_uri":                    tString,
		"native_social_login":                   tObject,
		"refresh_token":                         {typ: "object", open: true, nullable: update},
		"default_organization":                  {typ: "object", open: true, nullable: update},
		"organization_usage":                    {typ: "string", enum: []string{"deny", "allow", "require"}},
		"organization_require_behavior":         {typ: "string", enum: []string{"no_prompt", "pre_login_prompt", "post_login_prompt"}},
		"organization_discovery_methods":        {typ: "array", nullable: update, minItems: 1, items: &schema{typ: "string", enum: []string{"email", "organization_name"}}},
		"client_authentication_methods":         {typ: "object", open: true, nullable: update},
		"require_pushed_authorization_requests": tBool,
		"require_proof_of_possession":           tBool,
		"signed_request_object":                 tObject,
		"compliance_level":                      {typ: "string", nullable: true},
		"skip_non_verifiable_callback_uri_confirmation_prompt": {typ: "boolean", nullable: update},
		"token_exchange":                       {typ: "object", open: true, nullable: update},
		"par_request_expiry":                   {typ: "integer", nullable: true, minimum: num(10), maximum: num(600)},
		"token_quota":                          {typ: "object", open: true, nullable: update},
		"oidc_logout":                          tObject,
		"oidc_backchannel_logout":              tObject,
		"session_transfer":                     {typ: "object", open: true, nullable: update},
		"third_party_security_mode":            {typ: "string", enum: []string{"strict", "permissive"}},
		"redirection_policy":                   tString,
		"express_configuration":                {typ: "object", open: true, nullable: update},
		"my_organization_configuration":        tObject,
		"async_approval_notification_channels": {},
	})
	if update {
		s.minProps = 1
		s.props["client_secret"] = &schema{typ: "string", minLen: 1}
	} else {
		s.required = []string{"name"}
		s.props["resource_server_identifier"] = &schema{typ: "string", minLen: 1, maxLen: 600}
	}
	return s
}

// clientNameInvalid is the platform's check of a client name: no < or >.
func clientNameInvalid(body map[string]any) string {
	name, ok := body["name"].(string)
	if ok && strings.ContainsAny(name, "<>") {
		return "'String does not match pattern ^[^<>]+$: " + name + "' on property name"
	}
	return ""
}

// defaultGrantTypes are the grant types a client created without any gets
// (unverified: the platform's defaults per app_type, as its dashboard
// shows them): public applications no client credentials.
func defaultGrantTypes(appType string) []string {
	if appType == "spa" || appType == "native" {
		return []string{"authorization_code", "implicit", "refresh_token"}
	}
	return []string{"authorization_code", "implicit", "refresh_token", "client_credentials"}
}

// clientDefaults are the settings the platform answers for a new client
// unless the request set them.
func clientDefaults(appType string) map[string]any {
	method := "client_secret_post"
	if appType == "spa" || appType == "native" {
		method = "none"
	}
	return map[string]any{
		"description": "", "global": false, "is_first_party": true, "oidc_conformant": false,
		"is_token_endpoint_ip_header_trusted": false, "sso_disabled": false, "cross_origin_authentication": false,
		"custom_login_page_on": true, "callback_url_template": false,
		"callbacks": []any{}, "allowed_origins": []any{}, "web_origins": []any{}, "allowed_logout_urls": []any{},
		"client_aliases": []any{}, "allowed_clients": []any{},
		"token_endpoint_auth_method": method,
		"jwt_configuration":          map[string]any{"alg": "RS256", "lifetime_in_seconds": int64(36000), "secret_encoded": false},
		"refresh_token": map[string]any{
			"rotation_type": "non-rotating", "expiration_type": "non-expiring", "leeway": int64(0),
			"token_lifetime": int64(2592000), "infinite_token_lifetime": true,
			"idle_token_lifetime": int64(1296000), "infinite_idle_token_lifetime": true,
		},
	}
}

// newClient returns a client record with fresh credentials; doc holds the
// settings beyond the defaults.
func (s *Server) newClient(domain, name string, grantTypes []string, doc map[string]any) (Credentials, store.Client) {
	id := randomAlnum(32)
	secret := randomAlnum(64)
	settings := clientDefaults(strOf(doc, "app_type"))
	for k, v := range doc {
		settings[k] = v
	}
	for _, k := range []string{"name", "grant_types", "client_secret"} {
		delete(settings, k)
	}
	for k, v := range settings {
		if v == nil {
			delete(settings, k)
		}
	}
	return Credentials{Domain: domain, ClientID: id, ClientSecret: secret, Audience: managementAudience(domain),
			TokenURL: "https://" + domain + "/oauth/token"},
		store.Client{ClientID: id, Domain: domain, Name: name, SecretHash: password.Hash(secret), SecretSealed: s.box.Seal(secret),
			GrantTypes: slices.Clone(grantTypes), Doc: settings}
}

// setSecret gives c a new secret and returns it.
func (s *Server) setSecret(c *store.Client, secret string) {
	c.SecretHash, c.SecretSealed = password.Hash(secret), s.box.Seal(secret)
}

// managementGrant is the grant that lets a client call the tenant's
// Management API with scopes.
func managementGrant(domain, clientID string, scopes []string) store.ClientGrant {
	return store.ClientGrant{ID: "cgr_" + randomAlnum(16), Domain: domain, ClientID: clientID, Audience: managementAudience(domain),
		Scope: slices.Clone(scopes), SubjectType: "client", Doc: map[string]any{"allow_any_organization": false}}
}

// clientView is a client as answered; the secret only to a token that may
// see it (read:client_keys, https://auth0.com/docs/api/management/v2/clients/get-clients).
func (s *Server) clientView(c store.Client, withSecret bool) map[string]any {
	v := clientDefaults(strOf(c.Doc, "app_type"))
	for k, e := range c.Doc {
		v[k] = e
	}
	v["client_id"], v["name"], v["tenant"] = c.ClientID, c.Name, strings.SplitN(c.Domain, ".", 2)[0]
	grants := make([]any, 0, len(c.GrantTypes))
	for _, g := range c.GrantTypes {
		grants = append(grants, g)
	}
	v["grant_types"] = grants
	if withSecret && c.SecretSealed != "" {
		if secret, err := s.box.Open(c.SecretSealed); err == nil {
			v["client_secret"] = secret
		}
	}
	return v
}

// applyClientFields sets what body carries on c (validated before).
func applyClientFields(c *store.Client, body map[string]any) {
	if c.Doc == nil {
		c.Doc = map[string]any{}
	}
	for k, v := range body {
		switch {
		case k == "name":
			c.Name = v.(string)
		case k == "grant_types":
			c.GrantTypes = toStrings(v)
		case k == "client_secret":
			// set by the caller, which needs the box
		case v == nil:
			delete(c.Doc, k)
		default:
			c.Doc[k] = v
		}
	}
}

func clientNotFound(w http.ResponseWriter) {
	mgmtError(w, http.StatusNotFound, "inexistent_client", "The client does not exist")
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authorize(w, r, "read:clients", "read:client_keys")
	if !ok {
		return
	}
	p, ok := parsePage(w, r, true)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("q") != "" {
		invalidQuery(w, "'q' (Lucene queries of clients) is not supported by the emulator")
		return
	}
	f := store.ClientFilter{AfterSeq: p.afterSeq}
	if ids := q.Get("client_ids"); ids != "" {
		f.ClientIDs = strings.Split(ids, ",")
	}
	all, _, err := s.store.Q().Clients(tenantOf(r), f, 0, -1)
	if err != nil {
		s.internal(w, err)
		return
	}
	var appTypesWanted []string
	if at := q.Get("app_type"); at != "" {
		appTypesWanted = strings.Split(at, ",")
	}
	boolParam := func(name string) (*bool, bool) {
		if !q.Has(name) {
			return nil, true
		}
		b, err := strconv.ParseBool(q.Get(name))
		if err != nil {
			invalidQuery(w, "'"+name+"' must be true or false")
			return nil, false
		}
		return &b, true
	}
	firstParty, ok := boolParam("is_first_party")
	if !ok {
		return
	}
	global, ok := boolParam("is_global")
	if !ok {
		return
	}
	withSecret := hasAnyScope(claims, "read:client_keys")
	var (
		items []map[string]any
		seqs  []int64
	)
	for _, c := range all {
		v := s.clientView(c, withSecret)
		switch {
		case appTypesWanted != nil && !slices.Contains(appTypesWanted, strOf(v, "app_type")),
			firstParty != nil && boolOf(v, "is_first_party") != *firstParty,
			global != nil && boolOf(v, "global") != *global:
			continue
		}
		items = append(items, project(r, v))
		seqs = append(seqs, c.Seq)
	}
	total := len(items)
	offset, limit := p.window()
	if offset > len(items) {
		offset = len(items)
	}
	end := min(len(items), offset+limit)
	writeList(w, p, "clients", items[offset:end], seqs[offset:end], total)
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authorize(w, r, "read:clients", "read:client_keys")
	if !ok {
		return
	}
	c, err := s.store.Q().TenantClient(tenantOf(r), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		clientNotFound(w)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, project(r, s.clientView(c, hasAnyScope(claims, "read:client_keys"))))
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:clients"); !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := createClientSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	if d := clientNameInvalid(body); d != "" {
		invalidBody(w, d)
		return
	}
	grants := defaultGrantTypes(strOf(body, "app_type"))
	if v, ok := body["grant_types"]; ok {
		grants = toStrings(v)
	}
	domain := tenantOf(r)
	_, c := s.newClient(domain, body["name"].(string), grants, body)
	err := s.store.Tx(func(q store.Q) error {
		if err := q.PutClient(c); err != nil {
			return err
		}
		t, err := q.Tenant(domain)
		if err != nil {
			return err
		}
		// enable_client_connections: a new application gets every
		// connection (TenantSettingsFlags; default true).
		if enabled, set := flagsOf(t.Settings)["enable_client_connections"].(bool); enabled || !set {
			return enableOnAllConnections(q, domain, c.ClientID)
		}
		return nil
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	stored, err := s.store.Q().Client(c.ClientID)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.clientView(stored, true))
}

// enableOnAllConnections adds a client to every connection of the tenant.
func enableOnAllConnections(q store.Q, domain, clientID string) error {
	cs, _, err := q.Connections(domain, store.ConnectionFilter{}, 0, -1)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if !slices.Contains(c.EnabledClients, clientID) {
			c.EnabledClients = append(c.EnabledClients, clientID)
			if err := q.PutConnection(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) patchClient(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authorize(w, r, "update:clients", "update:client_keys")
	if !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := updateClientSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	if d := clientNameInvalid(body); d != "" {
		invalidBody(w, d)
		return
	}
	_, newSecret := body["client_secret"]
	onlyKeys := len(body) == 1 && newSecret || len(body) == 2 && newSecret && body["encryption_key"] != nil
	switch {
	case newSecret && !hasAnyScope(claims, "update:client_keys"):
		mgmtError(w, http.StatusForbidden, "insufficient_scope", "Insufficient scope, expected any of: update:client_keys")
		return
	case !onlyKeys && !hasAnyScope(claims, "update:clients"):
		mgmtError(w, http.StatusForbidden, "insufficient_scope", "Insufficient scope, expected any of: update:clients")
		return
	}
	s.changeClient(w, r, hasAnyScope(claims, "read:client_keys", "update:client_keys"), func(c *store.Client) {
		applyClientFields(c, body)
		if newSecret {
			s.setSecret(c, body["client_secret"].(string))
		}
	})
}

// changeClient applies change to the client the path names, in one
// transaction, and answers it (with its secret when withSecret), or 404.
func (s *Server) changeClient(w http.ResponseWriter, r *http.Request, withSecret bool, change func(*store.Client)) {
	var (
		out     store.Client
		missing bool
	)
	err := s.store.Tx(func(q store.Q) error {
		c, err := q.TenantClient(tenantOf(r), r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			missing = true
			return nil
		}
		if err != nil {
			return err
		}
		change(&c)
		out = c
		return q.PutClient(c)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case missing:
		clientNotFound(w)
	default:
		writeJSON(w, http.StatusOK, s.clientView(out, withSecret))
	}
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "delete:clients"); !ok {
		return
	}
	domain, id := tenantOf(r), r.PathValue("id")
	err := s.store.Tx(func(q store.Q) error {
		deleted, err := q.DeleteClient(domain, id)
		if err != nil || !deleted {
			return err
		}
		// The platform deletes a client's grants and its place in
		// connections with it.
		cs, _, err := q.Connections(domain, store.ConnectionFilter{}, 0, -1)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if i := slices.Index(c.EnabledClients, id); i >= 0 {
				c.EnabledClients = slices.Delete(c.EnabledClients, i, i+1)
				if err := q.PutConnection(c); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateClientSecret answers the client with a new secret; the old one
// stops working at once.
func (s *Server) rotateClientSecret(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:client_keys"); !ok {
		return
	}
	s.changeClient(w, r, true, func(c *store.Client) { s.setSecret(c, randomAlnum(64)) })
}
