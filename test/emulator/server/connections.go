package server

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/tenantops/identity-operator/test/emulator/internal/scripts"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

var connectionNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?$`)
var strategyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Top-level fields a connection body may carry.
var (
	createConnectionFields = []string{"name", "strategy", "display_name", "options", "enabled_clients", "realms", "metadata", "is_domain_connection", "show_as_button"}
	patchConnectionFields  = []string{"display_name", "options", "enabled_clients", "realms", "metadata", "is_domain_connection", "show_as_button"}
)

// optionTypes are the auth0-strategy options the emulator checks; other
// option keys are kept as sent, as the platform does.
var optionTypes = map[string]string{
	"enabledDatabaseCustomization": "boolean", "import_mode": "boolean", "requires_username": "boolean",
	"brute_force_protection": "boolean", "disable_signup": "boolean",
	"customScripts": "object", "configuration": "object", "validation": "object",
	"password_complexity_options": "object", "password_history": "object", "password_dictionary": "object",
	"password_no_personal_info": "object", "strategy_version": "integer",
}

// platformDefaultOptions are what a new database connection gets unless
// the request sets them.
func platformDefaultOptions() map[string]any {
	return map[string]any{
		"brute_force_protection": true,
		"mfa":                    map[string]any{"active": true, "return_enroll_settings": true},
	}
}

var passwordPolicies = []string{"none", "low", "fair", "good", "excellent"}

func unknownField(body map[string]any, allowed []string) string {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return k
		}
	}
	return ""
}

// validateOptions returns "" or the 400 message for an options object.
func validateOptions(strategy string, opts map[string]any) string {
	if strategy != "auth0" {
		return ""
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts[k]
		want, ok := optionTypes[k]
		if !ok || v == nil {
			continue
		}
		good := (want == "boolean" && isBool(v)) || (want == "object" && isObject(v)) || (want == "integer" && isInteger(v))
		if !good {
			return payloadError(fmt.Sprintf("'Expected type %s but found type %s' on property options.%s", want, typeName(v), k))
		}
	}
	if pp, ok := opts["passwordPolicy"]; ok && pp != nil {
		if s, isStr := pp.(string); !isStr || !slices.Contains(passwordPolicies, s) {
			return payloadError("'No enum match for: " + fmt.Sprint(pp) + "' on property options.passwordPolicy")
		}
	}
	if cfg, ok := opts["configuration"].(map[string]any); ok {
		for k, v := range cfg {
			if !isString(v) {
				return payloadError(fmt.Sprintf("'Expected type string but found type %s' on property options.configuration.%s", typeName(v), k))
			}
		}
	}
	if cs, ok := opts["customScripts"].(map[string]any); ok {
		names := make([]string, 0, len(cs))
		for k := range cs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			src, isStr := cs[name].(string)
			if !slices.Contains(scripts.Names, name) {
				return payloadError("'Additional properties not allowed: " + name + "' on property options.customScripts")
			}
			if !isStr {
				return payloadError("'Expected type string but found type " + typeName(cs[name]) + "' on property options.customScripts." + name)
			}
			// The platform would only fail when the script runs; checking at
			// save time lets a controller report the error on its object.
			if err := scripts.Check(name, src); err != nil {
				return "Error in options.customScripts." + name + " script: " + err.Error()
			}
		}
	}
	return ""
}

// sealConfiguration replaces configuration values with fresh ciphertext.
func (s *Server) sealConfiguration(opts map[string]any) {
	cfg, ok := opts["configuration"].(map[string]any)
	if !ok {
		return
	}
	sealed := make(map[string]any, len(cfg))
	for k, v := range cfg {
		sealed[k] = s.box.Seal(v.(string))
	}
	opts["configuration"] = sealed
}

// plainConfiguration opens a stored connection's configuration for scripts.
func (s *Server) plainConfiguration(c store.Connection) map[string]string {
	out := map[string]string{}
	cfg, _ := c.Options["configuration"].(map[string]any)
	for k, v := range cfg {
		if sv, ok := v.(string); ok {
			if p, err := s.box.Open(sv); err == nil {
				out[k] = p
			}
		}
	}
	return out
}

func connectionView(c store.Connection) map[string]any {
	v := map[string]any{
		"id": c.ID, "name": c.Name, "strategy": c.Strategy, "options": c.Options,
		"enabled_clients": nonNil(c.EnabledClients), "realms": nonNil(c.Realms), "is_domain_connection": false,
	}
	if c.DisplayName != "" {
		v["display_name"] = c.DisplayName
	}
	if c.Metadata != nil {
		v["metadata"] = c.Metadata
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, e := range a {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// applyConnectionFields sets the patchable fields present in body.
func (s *Server) applyConnectionFields(c *store.Connection, body map[string]any) string {
	if v, ok := body["display_name"]; ok {
		if !isString(v) {
			return payloadError("'Expected type string but found type " + typeName(v) + "' on property display_name")
		}
		c.DisplayName = v.(string)
	}
	for _, k := range []string{"enabled_clients", "realms"} {
		if v, ok := body[k]; ok && !isStringArray(v) {
			return payloadError("'Expected type array but found type " + typeName(v) + "' on property " + k)
		}
	}
	if v, ok := body["enabled_clients"]; ok {
		c.EnabledClients = toStrings(v)
	}
	if v, ok := body["realms"]; ok {
		c.Realms = toStrings(v)
	}
	if v, ok := body["metadata"]; ok {
		if v != nil && !isObject(v) {
			return payloadError("'Expected type object but found type " + typeName(v) + "' on property metadata")
		}
		c.Metadata, _ = v.(map[string]any)
	}
	if v, ok := body["options"]; ok {
		if v != nil && !isObject(v) {
			return payloadError("'Expected type object but found type " + typeName(v) + "' on property options")
		}
		opts, _ := v.(map[string]any)
		if opts == nil {
			opts = map[string]any{}
		}
		if msg := validateOptions(c.Strategy, opts); msg != "" {
			return msg
		}
		s.sealConfiguration(opts)
		c.Options = opts
	}
	return ""
}

func (s *Server) createConnection(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:connections"); !ok {
		return
	}
	body, ok := readFields(w, r, createConnectionFields)
	if !ok {
		return
	}
	name, _ := body["name"].(string)
	strategy, _ := body["strategy"].(string)
	switch {
	case body["name"] == nil:
		invalidBody(w, "'Missing required property: name'")
		return
	case !connectionNameRE.MatchString(name):
		invalidBody(w, "'String does not match pattern ^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,126}[a-zA-Z0-9])?$: "+name+"' on property name")
		return
	case body["strategy"] == nil:
		invalidBody(w, "'Missing required property: strategy'")
		return
	case !strategyRE.MatchString(strategy):
		invalidBody(w, "'Invalid strategy: "+strategy+"' on property strategy")
		return
	}
	c := store.Connection{ID: "con_" + randomAlnum(16), Domain: tenantOf(r), Name: name, Strategy: strategy, Options: map[string]any{}}
	if _, has := body["options"]; !has {
		body["options"] = map[string]any{}
	}
	if msg := s.applyConnectionFields(&c, body); msg != "" {
		mgmtError(w, http.StatusBadRequest, "invalid_body", msg)
		return
	}
	if len(c.Realms) == 0 {
		c.Realms = []string{name}
	}
	if msg, err := unknownClients(s.store.Q(), c.Domain, c.EnabledClients); err != nil {
		s.internal(w, err)
		return
	} else if msg != "" {
		mgmtError(w, http.StatusBadRequest, "invalid_body", msg)
		return
	}
	if strategy == "auth0" {
		// The platform fills in options of its own on creation; a client that
		// sends options whole must read and keep them.
		for k, v := range platformDefaultOptions() {
			if _, set := c.Options[k]; !set {
				c.Options[k] = v
			}
		}
	}
	err := s.store.Q().CreateConnection(&c)
	if errors.Is(err, store.ErrConflict) {
		mgmtError(w, http.StatusConflict, "connection_conflict", "A connection with the same name already exists")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, connectionView(c))
}

// pathConnection reads the connection the path names, or answers 404
// inexistent_connection (or 500) and returns false.
func (s *Server) pathConnection(w http.ResponseWriter, r *http.Request) (store.Connection, bool) {
	c, err := s.store.Q().Connection(tenantOf(r), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		mgmtError(w, http.StatusNotFound, "inexistent_connection", "The connection does not exist")
		return c, false
	}
	if err != nil {
		s.internal(w, err)
		return c, false
	}
	return c, true
}

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:connections"); !ok {
		return
	}
	c, ok := s.pathConnection(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, project(r, connectionView(c)))
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:connections"); !ok {
		return
	}
	p, ok := parsePage(w, r, true)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.ConnectionFilter{Strategies: q["strategy"], Name: q.Get("name"), AfterSeq: p.afterSeq}
	offset, limit := p.page*p.perPage, p.perPage
	if p.checkpoint {
		offset, limit = 0, p.take+1
	}
	cs, total, err := s.store.Q().Connections(tenantOf(r), f, offset, limit)
	if err != nil {
		s.internal(w, err)
		return
	}
	var next string
	if p.checkpoint && len(cs) > p.take {
		cs = cs[:p.take]
		next = encodeCursor(cs[len(cs)-1].Seq)
	}
	items := make([]map[string]any, 0, len(cs))
	for _, c := range cs {
		items = append(items, project(r, connectionView(c)))
	}
	switch {
	case p.checkpoint:
		out := map[string]any{"connections": items}
		if next != "" {
			out["next"] = next
		}
		writeJSON(w, http.StatusOK, out)
	case p.includeTotals:
		writeJSON(w, http.StatusOK, map[string]any{"start": offset, "limit": p.perPage, "total": total, "connections": items})
	default:
		writeJSON(w, http.StatusOK, items)
	}
}

func (s *Server) patchConnection(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:connections"); !ok {
		return
	}
	body, ok := readFields(w, r, patchConnectionFields)
	if !ok {
		return
	}
	domain := tenantOf(r)
	var (
		out    store.Connection
		status int
		msg    string
		code   string
	)
	err := s.store.Tx(func(q store.Q) error {
		c, err := q.Connection(domain, r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			status, code, msg = http.StatusNotFound, "inexistent_connection", "The connection does not exist"
			return nil
		}
		if err != nil {
			return err
		}
		before := boolOf(c.Options, "enabledDatabaseCustomization")
		if m := s.applyConnectionFields(&c, body); m != "" {
			status, code, msg = http.StatusBadRequest, "invalid_body", m
			return nil
		}
		if _, has := body["enabled_clients"]; has {
			m, err := unknownClients(q, domain, c.EnabledClients)
			if err != nil {
				return err
			}
			if m != "" {
				status, code, msg = http.StatusBadRequest, "invalid_body", m
				return nil
			}
		}
		if _, has := body["options"]; has && boolOf(c.Options, "enabledDatabaseCustomization") != before {
			n, err := q.CountUsers(domain, c.Name)
			if err != nil {
				return err
			}
			if n > 0 {
				status, msg = http.StatusBadRequest, `This database contains users. You cannot change "options.enabledDatabaseCustomization" setting.`
				return nil
			}
		}
		out = c
		return q.PutConnection(c)
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	if status != 0 {
		mgmtError(w, status, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, connectionView(out))
}

func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "delete:connections"); !ok {
		return
	}
	var deleted bool
	err := s.store.Tx(func(q store.Q) error {
		var err error
		deleted, err = q.DeleteConnection(tenantOf(r), r.PathValue("id"))
		return err
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	if !deleted {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"deleted_at": s.now().Format("2006-01-02T15:04:05.000Z")})
}

// unknownClients returns "" when every id is a client of the tenant, or
// the 400 message for the first that is not (the platform's wording is
// unverified).
func unknownClients(q store.Q, domain string, ids []string) (string, error) {
	for _, id := range ids {
		_, err := q.TenantClient(domain, id)
		if errors.Is(err, store.ErrNotFound) {
			return "Client not found: " + id, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

// enabledClientsPatch is the body of PATCH /api/v2/connections/{id}/clients
// (UpdateEnabledClientConnectionsRequestContent,
// https://auth0.com/docs/api/management/v2/connections/patch-clients): at
// most 50 changes per request.
var enabledClientsPatch = &schema{typ: "array", minItems: 1, maxItems: 50, items: &schema{typ: "object",
	required: []string{"client_id", "status"},
	props:    map[string]*schema{"client_id": {typ: "string", minLen: 1}, "status": tBool}}}

// getConnectionClients lists the clients a connection is enabled for,
// paged by checkpoint only (take, from) as the platform does
// (https://auth0.com/docs/api/management/v2/connections/get-connection-clients).
func (s *Server) getConnectionClients(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:connections"); !ok {
		return
	}
	q := r.URL.Query()
	take := 50
	if q.Has("take") {
		n, err := strconv.Atoi(q.Get("take"))
		if err != nil || n < 1 || n > 100 {
			invalidQuery(w, "'take' must be an integer from 1 to 100")
			return
		}
		take = n
	}
	var after int64
	if f := q.Get("from"); f != "" {
		n, err := decodeCursor(f)
		if err != nil || n < 0 {
			invalidQuery(w, "'from' is not a valid checkpoint")
			return
		}
		after = n
	}
	c, ok := s.pathConnection(w, r)
	if !ok {
		return
	}
	items := []map[string]any{}
	out := map[string]any{}
	for i := after; i < int64(len(c.EnabledClients)); i++ {
		if len(items) == take {
			out["next"] = encodeCursor(i)
			break
		}
		items = append(items, map[string]any{"client_id": c.EnabledClients[i]})
	}
	out["clients"] = items
	writeJSON(w, http.StatusOK, out)
}

// patchConnectionClients enables (status true) or disables the connection
// for each client listed and answers 204.
func (s *Server) patchConnectionClients(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:connections"); !ok {
		return
	}
	body, ok := readArray(w, r)
	if !ok {
		return
	}
	if d := enabledClientsPatch.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	domain := tenantOf(r)
	var status int
	var msg, code string
	err := s.store.Tx(func(q store.Q) error {
		c, err := q.Connection(domain, r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			status, code, msg = http.StatusNotFound, "inexistent_connection", "The connection does not exist"
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range body {
			change := e.(map[string]any)
			id, enable := change["client_id"].(string), change["status"].(bool)
			i := slices.Index(c.EnabledClients, id)
			switch {
			case enable && i < 0:
				m, err := unknownClients(q, domain, []string{id})
				if err != nil {
					return err
				}
				if m != "" {
					status, code, msg = http.StatusBadRequest, "invalid_body", m
					return nil
				}
				c.EnabledClients = append(c.EnabledClients, id)
			case !enable && i >= 0:
				c.EnabledClients = slices.Delete(c.EnabledClients, i, i+1)
			}
		}
		return q.PutConnection(c)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case status != 0:
		mgmtError(w, status, code, msg)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
