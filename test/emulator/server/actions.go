package server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// The read side of the Actions API: GET /api/v2/actions/actions,
// /actions/actions/{id}, /actions/triggers and
// /actions/triggers/{triggerId}/bindings, with scope read:actions
// (https://auth0.com/docs/api/management/v2/actions/get-actions,
// .../get-action, .../get-triggers, .../get-bindings). Tenants start with
// no actions; the write side (actions_write.go) or SeedAction (behind the
// API's back) puts them in.

// TriggerIDs are the platform's trigger ids (ActionTriggerTypeEnum).
var TriggerIDs = []string{"post-login", "credentials-exchange", "pre-user-registration", "post-user-registration",
	"post-change-password", "send-phone-message", "custom-phone-provider", "custom-email-provider",
	"password-reset-post-challenge", "custom-token-exchange", "event-stream", "password-hash-migration",
	"login-post-identifier", "signup-post-identifier"}

// actionRuntimes are the Node runtimes a trigger offers; new actions get
// the last (the platform's default is node22).
var actionRuntimes = []string{"node18", "node22"}

// triggerCatalogue is what GET /actions/triggers answers: the current
// version of each trigger the platform documents for actions. post-login
// v3 is documented; the other versions are unverified.
var triggerCatalogue = []store.ActionTrigger{
	{ID: "post-login", Version: "v3"},
	{ID: "credentials-exchange", Version: "v2"},
	{ID: "pre-user-registration", Version: "v2"},
	{ID: "post-user-registration", Version: "v2"},
	{ID: "post-change-password", Version: "v2"},
	{ID: "send-phone-message", Version: "v2"},
	{ID: "password-reset-post-challenge", Version: "v1"},
	{ID: "custom-email-provider", Version: "v1"},
	{ID: "custom-phone-provider", Version: "v1"},
	{ID: "custom-token-exchange", Version: "v1"},
}

func triggerView(t store.ActionTrigger) map[string]any {
	return map[string]any{"id": t.ID, "version": t.Version, "status": "CURRENT", "runtimes": actionRuntimes,
		"default_runtime": actionRuntimes[len(actionRuntimes)-1], "compatible_triggers": []any{}, "binding_policy": "trigger-bound"}
}

// codeView is what an action and its versions share on the wire; secrets
// answer their names only.
func codeView(c store.ActionCode, v map[string]any) {
	triggers := make([]any, 0, len(c.SupportedTriggers))
	for _, t := range c.SupportedTriggers {
		triggers = append(triggers, map[string]any{"id": t.ID, "version": t.Version})
	}
	deps := make([]any, 0, len(c.Dependencies))
	for _, d := range c.Dependencies {
		deps = append(deps, d)
	}
	secrets := make([]any, 0, len(c.Secrets))
	for _, s := range c.Secrets {
		secrets = append(secrets, map[string]any{"name": s.Name, "updated_at": timestamp(s.UpdatedAt)})
	}
	v["code"], v["dependencies"], v["runtime"], v["secrets"], v["supported_triggers"] = c.Code, deps, c.Runtime, secrets, triggers
}

func versionView(ver store.ActionVersion) map[string]any {
	at := timestamp(ver.CreatedAt)
	v := map[string]any{"id": ver.ID, "action_id": ver.ActionID, "number": ver.Number, "deployed": ver.Deployed,
		"status": "built", "created_at": at, "updated_at": at, "built_at": at}
	codeView(ver.ActionCode, v)
	return v
}

// actionView is an action as answered, with its deployed version when it
// has one.
func actionView(q store.Q, a store.Action) (map[string]any, error) {
	v := map[string]any{"id": a.ID, "name": a.Name, "all_changes_deployed": a.AllChangesDeployed, "status": store.ActionBuilt,
		"created_at": timestamp(a.CreatedAt), "updated_at": timestamp(a.UpdatedAt), "built_at": timestamp(a.UpdatedAt)}
	codeView(a.ActionCode, v)
	if a.Status == store.ActionFailed {
		errs := make([]any, 0, len(a.BuildErrors))
		for _, e := range a.BuildErrors {
			errs = append(errs, map[string]any{"id": e.ID, "msg": e.Msg, "url": e.URL})
		}
		v["status"], v["errors"] = store.ActionFailed, errs
		delete(v, "built_at")
	}
	if a.DeployedVersionID != "" {
		ver, err := q.ActionVersion(a.Domain, a.ID, a.DeployedVersionID)
		if err != nil {
			return nil, err
		}
		v["deployed_version"] = versionView(ver)
	}
	return v, nil
}

// actionsPage reads page and per_page (from 0; per_page 20 by default, at
// most 100) or answers 400.
func actionsPage(w http.ResponseWriter, r *http.Request) (page, perPage int, ok bool) {
	q := r.URL.Query()
	perPage = 20
	for _, p := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"page", &page, 0, 1 << 30}, {"per_page", &perPage, 1, 100}} {
		if !q.Has(p.name) {
			continue
		}
		n, err := strconv.Atoi(q.Get(p.name))
		if err != nil || n < p.min || n > p.max {
			invalidQuery(w, "'"+p.name+"' must be an integer from "+strconv.Itoa(p.min)+" to "+strconv.Itoa(p.max))
			return 0, 0, false
		}
		*p.dst = n
	}
	return page, perPage, true
}

// paged answers the Actions API's list shape {key:[...],"total","page","per_page"}.
func paged(w http.ResponseWriter, key string, items []map[string]any, page, perPage int) {
	start := min(page*perPage, len(items))
	end := min(start+perPage, len(items))
	out := items[start:end]
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "total": len(items), "page": page, "per_page": perPage})
}

// badTrigger answers 400 for a trigger id that is not the platform's, in
// the path or in the query.
func badTrigger(w http.ResponseWriter, inPath bool, id string) bool {
	if slices.Contains(TriggerIDs, id) {
		return false
	}
	kind, code := "Query", "invalid_query_string"
	if inPath {
		kind, code = "Path", "invalid_uri"
	}
	mgmtError(w, http.StatusBadRequest, code, kind+" validation error: 'No enum match for: "+id+"' on property triggerId.")
	return true
}

func (s *Server) listActions(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:actions"); !ok {
		return
	}
	page, perPage, ok := actionsPage(w, r)
	if !ok {
		return
	}
	query := r.URL.Query()
	trigger := query.Get("triggerId")
	if trigger != "" && badTrigger(w, false, trigger) {
		return
	}
	var deployed, installed *bool
	for name, dst := range map[string]**bool{"deployed": &deployed, "installed": &installed} {
		if query.Has(name) {
			b, err := strconv.ParseBool(query.Get(name))
			if err != nil {
				invalidQuery(w, "'"+name+"' must be true or false")
				return
			}
			*dst = &b
		}
	}
	q := s.store.Q()
	all, err := q.Actions(tenantOf(r), store.ActionFilter{Name: query.Get("actionName")})
	if err != nil {
		s.internal(w, err)
		return
	}
	var items []map[string]any
	for _, a := range all {
		switch {
		case trigger != "" && !slices.ContainsFunc(a.SupportedTriggers, func(t store.ActionTrigger) bool { return t.ID == trigger }),
			deployed != nil && (a.DeployedVersionID != "") != *deployed,
			installed != nil && *installed: // every emulated action is custom, none installed from the marketplace
			continue
		}
		v, err := actionView(q, a)
		if err != nil {
			s.internal(w, err)
			return
		}
		items = append(items, v)
	}
	paged(w, "actions", items, page, perPage)
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:actions"); !ok {
		return
	}
	q := s.store.Q()
	a, err := q.Action(tenantOf(r), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		mgmtError(w, http.StatusNotFound, "inexistent_action", "The action does not exist")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	v, err := actionView(q, a)
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) listTriggers(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:actions"); !ok {
		return
	}
	out := make([]map[string]any, 0, len(triggerCatalogue))
	for _, t := range triggerCatalogue {
		out = append(out, triggerView(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"triggers": out})
}

// listBindings answers a trigger's bindings in execution order, each with
// its action.
func (s *Server) listBindings(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:actions"); !ok {
		return
	}
	trigger := r.PathValue("triggerId")
	if badTrigger(w, true, trigger) {
		return
	}
	page, perPage, ok := actionsPage(w, r)
	if !ok {
		return
	}
	domain := tenantOf(r)
	q := s.store.Q()
	bs, err := q.Bindings(domain, trigger)
	if err != nil {
		s.internal(w, err)
		return
	}
	items, err := bindingViews(q, domain, bs)
	if err != nil {
		s.internal(w, err)
		return
	}
	paged(w, "bindings", items, page, perPage)
}

// bindingViews are bindings as answered, each with its action.
func bindingViews(q store.Q, domain string, bs []store.ActionBinding) ([]map[string]any, error) {
	var items []map[string]any
	for _, b := range bs {
		a, err := q.Action(domain, b.ActionID)
		if err != nil {
			return nil, err
		}
		av, err := actionView(q, a)
		if err != nil {
			return nil, err
		}
		items = append(items, map[string]any{"id": b.ID, "trigger_id": b.TriggerID, "display_name": b.DisplayName,
			"action": av, "created_at": timestamp(b.CreatedAt), "updated_at": timestamp(b.UpdatedAt)})
	}
	return items, nil
}

// ActionSeed describes an action SeedAction puts into a tenant.
type ActionSeed struct {
	Name    string `json:"name"`
	Trigger string `json:"trigger,omitempty"` // default post-login
	Code    string `json:"code,omitempty"`    // default an empty post-login handler
	// Deploy makes version 1 and deploys it; Bind (which implies Deploy)
	// also appends it to the trigger's bindings.
	Deploy bool `json:"deploy,omitempty"`
	Bind   bool `json:"bind,omitempty"`
}

// SeedAction creates an action behind the API's back, as the write side of
// the Actions API would, and returns its id.
func (s *Server) SeedAction(domain string, seed ActionSeed) (string, error) {
	if !s.hasTenant(domain) {
		return "", ErrUnknownTenant
	}
	if seed.Name == "" {
		return "", errors.New("an action needs a name")
	}
	if seed.Trigger == "" {
		seed.Trigger = "post-login"
	}
	idx := slices.IndexFunc(triggerCatalogue, func(t store.ActionTrigger) bool { return t.ID == seed.Trigger })
	if idx < 0 {
		return "", errors.New("unknown trigger " + seed.Trigger)
	}
	if seed.Code == "" {
		seed.Code = "exports.onExecutePostLogin = async (event, api) => {};"
	}
	now := s.now()
	a := store.Action{ID: newUUID(), Domain: domain, Name: seed.Name, CreatedAt: now, UpdatedAt: now,
		ActionCode: store.ActionCode{Code: seed.Code, Runtime: actionRuntimes[len(actionRuntimes)-1],
			SupportedTriggers: []store.ActionTrigger{triggerCatalogue[idx]}}}
	err := s.store.Tx(func(q store.Q) error {
		if err := q.CreateAction(&a); errors.Is(err, store.ErrConflict) {
			return errors.New("an action named " + seed.Name + " exists")
		} else if err != nil {
			return err
		}
		if !seed.Deploy && !seed.Bind {
			return nil
		}
		v, err := q.CreateActionVersion(store.ActionVersion{ID: newUUID(), Domain: domain, ActionID: a.ID, ActionCode: a.ActionCode,
			Deployed: true, CreatedAt: now})
		if err != nil {
			return err
		}
		a.DeployedVersionID, a.AllChangesDeployed = v.ID, true
		if err := q.PutAction(a); err != nil {
			return err
		}
		if !seed.Bind {
			return nil
		}
		binds, err := q.Bindings(domain, seed.Trigger)
		if err != nil {
			return err
		}
		binds = append(binds, store.ActionBinding{ID: newUUID(), ActionID: a.ID, DisplayName: a.Name, CreatedAt: now, UpdatedAt: now})
		return q.ReplaceBindings(domain, seed.Trigger, binds)
	})
	return a.ID, err
}

// newUUID returns a random version 4 UUID, the form of action ids.
func newUUID() string {
	h := []byte(randomID(16))
	h[12] = '4'
	h[16] = "89ab"[h[16]%4]
	return string(h[0:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:32])
}
