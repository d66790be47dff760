package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/scripts"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// The write side of the Actions API
// (https://auth0.com/docs/api/management/v2/actions/post-action,
// .../patch-action, .../delete-action, .../post-deploy-action,
// .../get-action-versions, .../patch-bindings):
//
//	POST   /api/v2/actions/actions                      create:actions
//	PATCH  /api/v2/actions/actions/{id}                 update:actions
//	DELETE /api/v2/actions/actions/{id}[?force=true]    delete:actions
//	POST   /api/v2/actions/actions/{id}/deploy          create:actions
//	GET    /api/v2/actions/actions/{id}/versions[/{vid}] read:actions
//	PATCH  /api/v2/actions/triggers/{triggerId}/bindings update:triggers
//
// Writing code builds the draft at once: it compiles in the sandbox that
// runs it, and its dependencies must be well formed (the emulator installs
// no npm package). Deploying freezes the draft as version N+1, the only
// deployed one. A PATCH of a trigger's bindings replaces its whole list.

// actionFields are the body keys of a create or update.
var actionFields = []string{"name", "supported_triggers", "code", "runtime", "dependencies", "secrets"}

func actionSchema(create bool) *schema {
	trigger := obj(map[string]*schema{"id": {typ: "string", enum: TriggerIDs}, "version": {typ: "string", minLen: 1}})
	trigger.required = []string{"id", "version"}
	dep := obj(map[string]*schema{"name": {typ: "string", minLen: 1}, "version": {typ: "string"}, "registry_url": {typ: "string"}})
	dep.required = []string{"name", "version"}
	secret := obj(map[string]*schema{"name": {typ: "string", minLen: 1}, "value": {typ: "string"}})
	secret.required = []string{"name", "value"}
	s := obj(map[string]*schema{
		"name":               {typ: "string", minLen: 1, maxLen: 150},
		"supported_triggers": {typ: "array", items: trigger, minItems: 1},
		"code":               {typ: "string"},
		"runtime":            {typ: "string", enum: actionRuntimes},
		"dependencies":       {typ: "array", items: dep},
		"secrets":            {typ: "array", items: secret},
	})
	if create {
		s.required = []string{"name", "supported_triggers"}
	}
	return s
}

var (
	createActionSchema = actionSchema(true)
	updateActionSchema = actionSchema(false)
)

// npmName is npm's rule for a package name (scoped or not, lower case,
// at most 214 characters).
var npmName = regexp.MustCompile(`^(@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$`)

// semverish is what the emulator resolves as a version: "latest", an exact
// version (1.2.3, 1.2.3-beta.1), a caret, tilde or >= range of one, or a
// partial/x version (1, 1.2, 1.x, 1.2.x).
var semverish = regexp.MustCompile(`^(latest|(\^|~|>=)?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?|\d+(\.(\d+|x))?(\.x)?)$`)

// buildURL is where a build error points (unverified).
const buildURL = "https://auth0.com/docs/customize/actions/troubleshoot-actions"

// build compiles the draft and checks its dependencies, and sets its
// status and build errors.
func build(a *store.Action) {
	var errs []store.ActionBuildError
	if err := scripts.CheckAction(a.Code); err != nil {
		errs = append(errs, store.ActionBuildError{ID: "compile_error", Msg: err.Error(), URL: buildURL})
	}
	for _, d := range a.Dependencies {
		name, _ := d["name"].(string)
		version, _ := d["version"].(string)
		switch {
		case len(name) > 214 || !npmName.MatchString(name):
			errs = append(errs, store.ActionBuildError{ID: "dependency_error", URL: buildURL,
				Msg: "Dependency " + name + "@" + version + " could not be resolved: not a valid npm package name"})
		case !semverish.MatchString(version):
			errs = append(errs, store.ActionBuildError{ID: "dependency_error", URL: buildURL,
				Msg: "Dependency " + name + "@" + version + " could not be resolved: not a version or range"})
		}
	}
	a.Status, a.BuildErrors = store.ActionBuilt, errs
	if len(errs) > 0 {
		a.Status = store.ActionFailed
	}
}

// buildMessage is the build errors as one message.
func buildMessage(a store.Action) string {
	msgs := make([]string, 0, len(a.BuildErrors))
	for _, e := range a.BuildErrors {
		msgs = append(msgs, e.Msg)
	}
	return strings.Join(msgs, "; ")
}

// applyActionFields sets what a validated body carries on a; the secrets
// sent replace the action's secrets, a secret whose value is unchanged
// keeping its updated_at. It answers a 400 detail, or "".
func (s *Server) applyActionFields(a *store.Action, body map[string]any, now time.Time) string {
	if v, ok := body["name"].(string); ok {
		a.Name = v
	}
	if v, ok := body["code"].(string); ok {
		a.Code = v
	}
	if v, ok := body["runtime"].(string); ok {
		a.Runtime = v
	}
	if v, ok := body["supported_triggers"].([]any); ok {
		a.SupportedTriggers = nil
		for _, t := range v {
			m := t.(map[string]any)
			a.SupportedTriggers = append(a.SupportedTriggers, store.ActionTrigger{ID: m["id"].(string), Version: m["version"].(string)})
		}
	}
	if v, ok := body["dependencies"].([]any); ok {
		a.Dependencies = []map[string]any{}
		for _, d := range v {
			a.Dependencies = append(a.Dependencies, d.(map[string]any))
		}
	}
	if v, ok := body["secrets"].([]any); ok {
		old := a.Secrets
		a.Secrets = []store.ActionSecret{}
		for _, x := range v {
			m := x.(map[string]any)
			name, value := m["name"].(string), m["value"].(string)
			if slices.ContainsFunc(a.Secrets, func(sec store.ActionSecret) bool { return sec.Name == name }) {
				return "'Secret names must be unique: " + name + "' on property secrets"
			}
			sec := store.ActionSecret{Name: name, ValueSealed: s.box.Seal(value), UpdatedAt: now}
			if i := slices.IndexFunc(old, func(o store.ActionSecret) bool { return o.Name == name }); i >= 0 {
				if plain, err := s.box.Open(old[i].ValueSealed); err == nil && plain == value {
					sec = old[i]
				}
			}
			a.Secrets = append(a.Secrets, sec)
		}
	}
	return ""
}

// sameCode reports whether two drafts would run alike: code, dependencies,
// runtime, triggers and secrets (by name and when they were set).
func sameCode(a, b store.ActionCode) bool {
	key := func(c store.ActionCode) string {
		secrets := make([]string, 0, len(c.Secrets))
		for _, s := range c.Secrets {
			secrets = append(secrets, s.Name+"@"+s.UpdatedAt.UTC().Format(time.RFC3339Nano))
		}
		deps := c.Dependencies
		if deps == nil {
			deps = []map[string]any{}
		}
		b, _ := json.Marshal(map[string]any{"code": c.Code, "deps": deps, "runtime": c.Runtime, "triggers": c.SupportedTriggers, "secrets": secrets})
		return string(b)
	}
	return key(a) == key(b)
}

// refreshDeployState recomputes all_changes_deployed against the deployed
// version.
func refreshDeployState(q store.Q, a *store.Action) error {
	if a.DeployedVersionID == "" {
		a.AllChangesDeployed = false
		return nil
	}
	v, err := q.ActionVersion(a.Domain, a.ID, a.DeployedVersionID)
	if err != nil {
		return err
	}
	a.AllChangesDeployed = sameCode(a.ActionCode, v.ActionCode)
	return nil
}

func actionNameTaken(w http.ResponseWriter, name string) {
	mgmtError(w, http.StatusConflict, "conflict", "An action with the name '"+name+"' already exists")
}

func inexistentAction(w http.ResponseWriter) {
	mgmtError(w, http.StatusNotFound, "inexistent_action", "The action does not exist")
}

func (s *Server) createAction(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:actions"); !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := createActionSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	now := s.now()
	a := store.Action{ID: newUUID(), Domain: tenantOf(r), CreatedAt: now, UpdatedAt: now,
		ActionCode: store.ActionCode{Runtime: actionRuntimes[len(actionRuntimes)-1], Dependencies: []map[string]any{}, Secrets: []store.ActionSecret{}}}
	if d := s.applyActionFields(&a, body, now); d != "" {
		invalidBody(w, d)
		return
	}
	build(&a)
	var view map[string]any
	err := s.store.Tx(func(q store.Q) error {
		if err := q.CreateAction(&a); err != nil {
			return err
		}
		var err error
		view, err = actionView(q, a)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		actionNameTaken(w, a.Name)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, view)
}

func (s *Server) patchAction(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:actions"); !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := updateActionSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	domain, id := tenantOf(r), r.PathValue("id")
	var (
		view   map[string]any
		detail string
		name   string
	)
	err := s.store.Tx(func(q store.Q) error {
		a, err := q.Action(domain, id)
		if err != nil {
			return err
		}
		now := s.now()
		if detail = s.applyActionFields(&a, body, now); detail != "" {
			return nil
		}
		name = a.Name
		build(&a)
		a.UpdatedAt = now
		if err := refreshDeployState(q, &a); err != nil {
			return err
		}
		if err := q.PutAction(a); err != nil {
			return err
		}
		view, err = actionView(q, a)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		inexistentAction(w)
	case errors.Is(err, store.ErrConflict):
		actionNameTaken(w, name)
	case err != nil:
		s.internal(w, err)
	case detail != "":
		invalidBody(w, detail)
	default:
		writeJSON(w, http.StatusOK, view)
	}
}

// deleteAction deletes an action with its versions. A bound action is
// refused unless force=true, which removes its bindings too.
func (s *Server) deleteAction(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "delete:actions"); !ok {
		return
	}
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		switch v {
		case "true":
			force = true
		case "false":
		default:
			invalidQuery(w, "'force' must be true or false")
			return
		}
	}
	domain, id := tenantOf(r), r.PathValue("id")
	var bound bool
	err := s.store.Tx(func(q store.Q) error {
		if _, err := q.Action(domain, id); err != nil {
			return err
		}
		n, err := q.CountBindingsOf(domain, id)
		if err != nil {
			return err
		}
		if n > 0 && !force {
			bound = true
			return nil
		}
		if err := q.DeleteBindingsOf(domain, id); err != nil {
			return err
		}
		_, err = q.DeleteAction(domain, id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		inexistentAction(w)
	case err != nil:
		s.internal(w, err)
	case bound:
		mgmtError(w, http.StatusBadRequest, "action_bound", "The action is bound to a trigger: remove its bindings first, or delete it with force=true")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// deployAction freezes the built draft as the action's next version and
// deploys it; the version deployed before is deployed no more.
func (s *Server) deployAction(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:actions"); !ok {
		return
	}
	domain, id := tenantOf(r), r.PathValue("id")
	var (
		ver      store.ActionVersion
		buildErr string
	)
	err := s.store.Tx(func(q store.Q) error {
		a, err := q.Action(domain, id)
		if err != nil {
			return err
		}
		if a.Status == store.ActionFailed {
			buildErr = buildMessage(a)
			return nil
		}
		now := s.now()
		if a.DeployedVersionID != "" {
			prev, err := q.ActionVersion(domain, id, a.DeployedVersionID)
			if err != nil {
				return err
			}
			prev.Deployed = false
			if err := q.PutActionVersion(prev); err != nil {
				return err
			}
		}
		ver, err = q.CreateActionVersion(store.ActionVersion{ID: newUUID(), Domain: domain, ActionID: id, ActionCode: a.ActionCode, Deployed: true, CreatedAt: now})
		if err != nil {
			return err
		}
		a.DeployedVersionID, a.AllChangesDeployed = ver.ID, true
		return q.PutAction(a)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		inexistentAction(w)
	case err != nil:
		s.internal(w, err)
	case buildErr != "":
		mgmtError(w, http.StatusBadRequest, "action_build_failed", buildErr)
	default:
		writeJSON(w, http.StatusAccepted, versionView(ver))
	}
}

func (s *Server) listActionVersions(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:actions"); !ok {
		return
	}
	page, perPage, ok := actionsPage(w, r)
	if !ok {
		return
	}
	domain, id := tenantOf(r), r.PathValue("id")
	q := s.store.Q()
	if _, err := q.Action(domain, id); errors.Is(err, store.ErrNotFound) {
		inexistentAction(w)
		return
	} else if err != nil {
		s.internal(w, err)
		return
	}
	vs, err := q.ActionVersions(domain, id)
	if err != nil {
		s.internal(w, err)
		return
	}
	items := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		items = append(items, versionView(v))
	}
	paged(w, "versions", items, page, perPage)
}

func (s *Server) getActionVersion(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:actions"); !ok {
		return
	}
	v, err := s.store.Q().ActionVersion(tenantOf(r), r.PathValue("id"), r.PathValue("versionId"))
	if errors.Is(err, store.ErrNotFound) {
		mgmtError(w, http.StatusNotFound, "inexistent_action_version", "The action version does not exist")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, versionView(v))
}

var bindingsSchema = func() *schema {
	ref := obj(map[string]*schema{"type": {typ: "string", enum: []string{"action_id", "action_name", "binding_id"}}, "value": {typ: "string", minLen: 1}})
	ref.required = []string{"type", "value"}
	secret := obj(map[string]*schema{"name": {typ: "string", minLen: 1}, "value": {typ: "string"}})
	binding := obj(map[string]*schema{"ref": ref, "display_name": {typ: "string"}, "secrets": {typ: "array", items: secret}})
	binding.required = []string{"ref"}
	s := obj(map[string]*schema{"bindings": {typ: "array", items: binding}})
	s.required = []string{"bindings"}
	return s
}()

// patchBindings replaces a trigger's bindings with the list sent, in its
// order. Each ref names a deployed action that supports the trigger, at
// most once; an action bound before keeps its binding id.
func (s *Server) patchBindings(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:triggers"); !ok {
		return
	}
	trigger := r.PathValue("triggerId")
	if badTrigger(w, true, trigger) {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	if d := bindingsSchema.validate("", body); d != "" {
		invalidBody(w, d)
		return
	}
	domain := tenantOf(r)
	var (
		items    []map[string]any
		status   int
		code     string
		msg      string
		failWith = func(st int, c, m string) error { status, code, msg = st, c, m; return nil }
	)
	err := s.store.Tx(func(q store.Q) error {
		old, err := q.Bindings(domain, trigger)
		if err != nil {
			return err
		}
		now := s.now()
		var next []store.ActionBinding
		for i, x := range body["bindings"].([]any) {
			b := x.(map[string]any)
			ref := b["ref"].(map[string]any)
			typ, value := ref["type"].(string), ref["value"].(string)
			var a store.Action
			switch typ {
			case "action_id":
				a, err = q.Action(domain, value)
			case "action_name":
				var as []store.Action
				if as, err = q.Actions(domain, store.ActionFilter{Name: value}); err == nil {
					if len(as) == 0 {
						err = store.ErrNotFound
					} else {
						a = as[0]
					}
				}
			case "binding_id":
				j := slices.IndexFunc(old, func(o store.ActionBinding) bool { return o.ID == value })
				if j < 0 {
					return failWith(http.StatusBadRequest, "invalid_body", "bindings."+strconv.Itoa(i)+": no binding "+value+" on trigger "+trigger)
				}
				a, err = q.Action(domain, old[j].ActionID)
			}
			if errors.Is(err, store.ErrNotFound) {
				return failWith(http.StatusNotFound, "inexistent_action", "bindings."+strconv.Itoa(i)+": the action "+value+" does not exist")
			}
			if err != nil {
				return err
			}
			switch {
			case !slices.ContainsFunc(a.SupportedTriggers, func(t store.ActionTrigger) bool { return t.ID == trigger }):
				return failWith(http.StatusBadRequest, "invalid_body", "bindings."+strconv.Itoa(i)+": the action "+a.Name+" does not support the trigger "+trigger)
			case a.DeployedVersionID == "":
				return failWith(http.StatusBadRequest, "invalid_body", "bindings."+strconv.Itoa(i)+": the action "+a.Name+" has no deployed version")
			case slices.ContainsFunc(next, func(n store.ActionBinding) bool { return n.ActionID == a.ID }):
				return failWith(http.StatusBadRequest, "invalid_body", "bindings."+strconv.Itoa(i)+": the action "+a.Name+" is bound twice")
			}
			nb := store.ActionBinding{ID: newUUID(), ActionID: a.ID, DisplayName: a.Name, CreatedAt: now, UpdatedAt: now}
			if j := slices.IndexFunc(old, func(o store.ActionBinding) bool { return o.ActionID == a.ID }); j >= 0 {
				nb.ID, nb.CreatedAt, nb.DisplayName = old[j].ID, old[j].CreatedAt, old[j].DisplayName
			}
			if dn, ok := b["display_name"].(string); ok && dn != "" {
				nb.DisplayName = dn
			}
			next = append(next, nb)
		}
		if err := q.ReplaceBindings(domain, trigger, next); err != nil {
			return err
		}
		bs, err := q.Bindings(domain, trigger)
		if err != nil {
			return err
		}
		items, err = bindingViews(q, domain, bs)
		return err
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case status != 0:
		mgmtError(w, status, code, msg)
	default:
		if items == nil {
			items = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"bindings": items})
	}
}
