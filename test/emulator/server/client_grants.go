package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// The bodies of POST and PATCH /api/v2/client-grants, from the platform's
// CreateClientGrantRequestContent and UpdateClientGrantRequestContent
// schemas (https://auth0.com/docs/api/management/v2/client-grants/post-client-grants,
// https://auth0.com/docs/api/management/v2/client-grants/patch-client-grants-by-id).
var (
	grantScopes      = &schema{typ: "array", items: &schema{typ: "string", minLen: 1, maxLen: 280}}
	grantDetailTypes = &schema{typ: "array", items: &schema{typ: "string", minLen: 1, maxLen: 255}}
	orgUsage         = []string{"deny", "allow", "require"}

	createGrantSchema = &schema{typ: "object", required: []string{"audience"}, props: map[string]*schema{
		"client_id":                   tString,
		"audience":                    {typ: "string", minLen: 1},
		"default_for":                 {typ: "string", enum: []string{"third_party_clients"}},
		"organization_usage":          {typ: "string", enum: orgUsage},
		"allow_any_organization":      tBool,
		"scope":                       grantScopes,
		"subject_type":                {typ: "string", enum: []string{"client", "user"}},
		"authorization_details_types": grantDetailTypes,
		"allow_all_scopes":            tBool,
	}}
	updateGrantSchema = &schema{typ: "object", minProps: 1, props: map[string]*schema{
		"scope":                       {typ: "array", nullable: true, items: grantScopes.items},
		"organization_usage":          {typ: "string", nullable: true, enum: orgUsage},
		"allow_any_organization":      {typ: "boolean", nullable: true},
		"authorization_details_types": grantDetailTypes,
		"allow_all_scopes":            {typ: "boolean", nullable: true},
	}}
)

// grantView is a grant as answered (ClientGrantResponseContent).
func grantView(g store.ClientGrant) map[string]any {
	v := copyMap(g.Doc)
	scope := make([]any, 0, len(g.Scope))
	for _, s := range g.Scope {
		scope = append(scope, s)
	}
	v["id"], v["client_id"], v["audience"], v["scope"], v["subject_type"] = g.ID, g.ClientID, g.Audience, scope, g.SubjectType
	if _, ok := v["allow_any_organization"]; !ok {
		v["allow_any_organization"] = false
	}
	v["is_system"] = false
	return v
}

func grantNotFound(w http.ResponseWriter) {
	mgmtError(w, http.StatusNotFound, "inexistent_client_grant", "The client grant does not exist")
}

func (s *Server) listClientGrants(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:client_grants"); !ok {
		return
	}
	p, ok := parsePage(w, r, true)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.ClientGrantFilter{ClientID: q.Get("client_id"), Audience: q.Get("audience"), SubjectType: q.Get("subject_type"), AfterSeq: p.afterSeq}
	var anyOrg *bool
	if q.Has("allow_any_organization") {
		b, err := strconv.ParseBool(q.Get("allow_any_organization"))
		if err != nil {
			invalidQuery(w, "'allow_any_organization' must be true or false")
			return
		}
		anyOrg = &b
	}
	all, _, err := s.store.Q().ClientGrants(tenantOf(r), f, 0, -1)
	if err != nil {
		s.internal(w, err)
		return
	}
	var (
		items []map[string]any
		seqs  []int64
	)
	for _, g := range all {
		v := grantView(g)
		if anyOrg != nil && boolOf(v, "allow_any_organization") != *anyOrg {
			continue
		}
		items, seqs = append(items, v), append(seqs, g.Seq)
	}
	offset, limit := p.window()
	offset = min(offset, len(items))
	end := min(len(items), offset+limit)
	writeList(w, p, "client_grants", items[offset:end], seqs[offset:end], len(items))
}

func (s *Server) getClientGrant(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:client_grants"); !ok {
		return
	}
	g, err := s.store.Q().ClientGrant(tenantOf(r), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		grantNotFound(w)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, grantView(g))
}

func (s *Server) createClientGrant(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:client_grants"); !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := createGrantSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	domain := tenantOf(r)
	switch {
	case body["default_for"] != nil:
		// Default grants for third-party clients need third-party clients and
		// resource servers, which the emulator does not model.
		invalidBody(w, "'default_for grants are not supported by the emulator' on property default_for")
		return
	case body["client_id"] == nil:
		invalidBody(w, "'Missing required property: client_id'")
		return
	case body["audience"] != managementAudience(domain):
		// The Management API is the one API (resource server) of an emulated
		// tenant.
		mgmtError(w, http.StatusNotFound, "inexistent_resource_server", "No resource server found by specified identifier: "+strOf(body, "audience"))
		return
	}
	g := store.ClientGrant{ID: "cgr_" + randomAlnum(16), Domain: domain, ClientID: strOf(body, "client_id"), Audience: strOf(body, "audience"),
		Scope: toStrings(body["scope"]), SubjectType: "client", Doc: map[string]any{}}
	if st := strOf(body, "subject_type"); st != "" {
		g.SubjectType = st
	}
	for _, k := range []string{"organization_usage", "allow_any_organization", "authorization_details_types", "allow_all_scopes"} {
		if v, ok := body[k]; ok {
			g.Doc[k] = v
		}
	}
	var missingClient bool
	err := s.store.Tx(func(q store.Q) error {
		if _, err := q.TenantClient(domain, g.ClientID); errors.Is(err, store.ErrNotFound) {
			missingClient = true
			return nil
		} else if err != nil {
			return err
		}
		return q.CreateClientGrant(&g)
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		mgmtError(w, http.StatusConflict, "conflict", "A client grant already exists between "+g.ClientID+" and "+g.Audience)
	case err != nil:
		s.internal(w, err)
	case missingClient:
		clientNotFound(w)
	default:
		writeJSON(w, http.StatusCreated, grantView(g))
	}
}

func (s *Server) patchClientGrant(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:client_grants"); !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := updateGrantSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	var (
		out     store.ClientGrant
		missing bool
	)
	err := s.store.Tx(func(q store.Q) error {
		g, err := q.ClientGrant(tenantOf(r), r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			missing = true
			return nil
		}
		if err != nil {
			return err
		}
		if g.Doc == nil {
			g.Doc = map[string]any{}
		}
		for k, v := range body {
			switch {
			case k == "scope":
				g.Scope = toStrings(v) // null: no scopes
			case v == nil:
				delete(g.Doc, k)
			default:
				g.Doc[k] = v
			}
		}
		out = g
		return q.PutClientGrant(g)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case missing:
		grantNotFound(w)
	default:
		writeJSON(w, http.StatusOK, grantView(out))
	}
}

func (s *Server) deleteClientGrant(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "delete:client_grants"); !ok {
		return
	}
	if _, err := s.store.Q().DeleteClientGrant(tenantOf(r), r.PathValue("id")); err != nil {
		s.internal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
