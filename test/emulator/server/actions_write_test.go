package server_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

const emptyPostLogin = "exports.onExecutePostLogin = async (event, api) => {};"

// newAction creates a post-login action through the API and returns it.
func (a *api) newAction(name, code string, extra map[string]any) map[string]any {
	a.t.Helper()
	body := map[string]any{"name": name, "supported_triggers": []any{map[string]any{"id": "post-login", "version": "v3"}}, "code": code, "runtime": "node22"}
	for k, v := range extra {
		body[k] = v
	}
	r := a.do("POST", "/api/v2/actions/actions", body)
	if r.Status != 201 {
		a.t.Fatalf("create action %s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON()
}

// Shapes from https://auth0.com/docs/api/management/v2/actions/post-action
// and .../post-deploy-action, as the wire contract of issue #15 settles them.
func TestAnActionIsCreatedBuiltDeployedAndVersioned(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "write.emulator.local")

	r := a.do("POST", "/api/v2/actions/actions", map[string]any{"name": "tag-users",
		"supported_triggers": []any{map[string]any{"id": "post-login", "version": "v3"}}, "code": emptyPostLogin, "runtime": "node22",
		"dependencies": []any{map[string]any{"name": "lodash", "version": "4.17.21"}},
		"secrets":      []any{map[string]any{"name": "API_KEY", "value": "s3cr3t-value"}}})
	g.Expect(r.Status).To(Equal(201), string(r.Body))
	g.Expect(string(r.Body)).NotTo(ContainSubstring("s3cr3t-value"), "secret values are never answered")
	created := r.JSON()
	id := created["id"].(string)
	g.Expect(created).To(HaveKeyWithValue("name", "tag-users"))
	g.Expect(created).To(HaveKeyWithValue("status", "built"))
	g.Expect(created).To(HaveKeyWithValue("all_changes_deployed", false))
	g.Expect(created).To(HaveKeyWithValue("runtime", "node22"))
	g.Expect(created).To(HaveKeyWithValue("code", emptyPostLogin))
	g.Expect(created).To(HaveKeyWithValue("dependencies", []any{map[string]any{"name": "lodash", "version": "4.17.21"}}))
	g.Expect(created).NotTo(HaveKey("deployed_version"))
	g.Expect(created).NotTo(HaveKey("errors"))
	secrets := created["secrets"].([]any)
	g.Expect(secrets).To(HaveLen(1))
	g.Expect(secrets[0]).To(HaveKeyWithValue("name", "API_KEY"))
	g.Expect(secrets[0]).To(HaveKey("updated_at"))
	g.Expect(secrets[0]).NotTo(HaveKey("value"))
	g.Expect(a.do("GET", "/api/v2/actions/actions/"+id, nil).JSON()).To(Equal(created))

	dup := a.do("POST", "/api/v2/actions/actions", map[string]any{"name": "tag-users", "supported_triggers": []any{map[string]any{"id": "post-login", "version": "v3"}}})
	g.Expect(dup.Status).To(Equal(409), "names are unique on a tenant")

	v1 := a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil)
	g.Expect(v1.Status).To(Equal(202), string(v1.Body))
	g.Expect(v1.JSON()).To(HaveKeyWithValue("number", 1.0))
	g.Expect(v1.JSON()).To(HaveKeyWithValue("deployed", true))
	g.Expect(v1.JSON()).To(HaveKeyWithValue("action_id", id))
	g.Expect(v1.JSON()).To(HaveKeyWithValue("status", "built"))
	g.Expect(v1.JSON()).To(HaveKeyWithValue("code", emptyPostLogin))
	g.Expect(string(v1.Body)).NotTo(ContainSubstring("s3cr3t-value"))
	after := a.do("GET", "/api/v2/actions/actions/"+id, nil).JSON()
	g.Expect(after).To(HaveKeyWithValue("all_changes_deployed", true))
	g.Expect(after["deployed_version"]).To(HaveKeyWithValue("number", 1.0))

	changed := "exports.onExecutePostLogin = async (event, api) => { api.access.deny('no'); };"
	p := a.do("PATCH", "/api/v2/actions/actions/"+id, map[string]any{"code": changed})
	g.Expect(p.Status).To(Equal(200), string(p.Body))
	g.Expect(p.JSON()).To(HaveKeyWithValue("all_changes_deployed", false), "the draft differs from the deployed version")
	g.Expect(p.JSON()["deployed_version"]).To(HaveKeyWithValue("code", emptyPostLogin), "the deployed version keeps its code")

	v2 := a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil)
	g.Expect(v2.JSON()).To(HaveKeyWithValue("number", 2.0))
	g.Expect(v2.JSON()).To(HaveKeyWithValue("code", changed))
	v3 := a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil)
	g.Expect(v3.JSON()).To(HaveKeyWithValue("number", 3.0), "a deploy with nothing changed still makes a version")

	versions := a.do("GET", "/api/v2/actions/actions/"+id+"/versions", nil).JSON()
	g.Expect(versions).To(HaveKeyWithValue("total", 3.0))
	var numbers, deployed []any
	for _, v := range versions["versions"].([]any) {
		numbers = append(numbers, v.(map[string]any)["number"])
		deployed = append(deployed, v.(map[string]any)["deployed"])
	}
	g.Expect(numbers).To(Equal([]any{3.0, 2.0, 1.0}), "newest first")
	g.Expect(deployed).To(Equal([]any{true, false, false}), "only one version is deployed")
	vid := v1.JSON()["id"].(string)
	g.Expect(a.do("GET", "/api/v2/actions/actions/"+id+"/versions/"+vid, nil).JSON()).To(HaveKeyWithValue("deployed", false))
	g.Expect(a.do("GET", "/api/v2/actions/actions/00000000-0000-4000-8000-000000000000/versions", nil).Status).To(Equal(404))
	g.Expect(a.do("POST", "/api/v2/actions/actions/00000000-0000-4000-8000-000000000000/deploy", nil).Status).To(Equal(404))

	e.Restart()
	g.Expect(a.do("GET", "/api/v2/actions/actions/"+id, nil).JSON()["deployed_version"]).To(HaveKeyWithValue("number", 3.0), "kept across a restart")
}

func TestActionBodiesAndScopesAreChecked(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "checks.emulator.local")
	id := a.newAction("checked", emptyPostLogin, nil)["id"].(string)
	postLogin := []any{map[string]any{"id": "post-login", "version": "v3"}}
	for _, tc := range []struct {
		name, method, path string
		scopes             []string
		body               any
		status             int
		message            string
	}{
		{"create needs a name", "POST", "/api/v2/actions/actions", nil, map[string]any{"supported_triggers": postLogin}, 400, "Payload validation error: 'Missing required property: name'."},
		{"create needs triggers", "POST", "/api/v2/actions/actions", nil, map[string]any{"name": "x"}, 400, "Payload validation error: 'Missing required property: supported_triggers'."},
		{"a trigger id is the platform's", "POST", "/api/v2/actions/actions", nil, map[string]any{"name": "x", "supported_triggers": []any{map[string]any{"id": "post-logon", "version": "v3"}}}, 400, "Payload validation error: 'No enum match for: post-logon' on property supported_triggers.0.id."},
		{"a runtime is one the platform offers", "POST", "/api/v2/actions/actions", nil, map[string]any{"name": "x", "supported_triggers": postLogin, "runtime": "node8"}, 400, "Payload validation error: 'No enum match for: node8' on property runtime."},
		{"a secret needs its value", "PATCH", "/api/v2/actions/actions/" + id, nil, map[string]any{"secrets": []any{map[string]any{"name": "K"}}}, 400, "Payload validation error: 'Missing required property: value' on property secrets.0."},
		{"secret names are unique", "PATCH", "/api/v2/actions/actions/" + id, nil, map[string]any{"secrets": []any{map[string]any{"name": "K", "value": "1"}, map[string]any{"name": "K", "value": "2"}}}, 400, "Payload validation error: 'Secret names must be unique: K' on property secrets."},
		{"unknown fields are refused", "PATCH", "/api/v2/actions/actions/" + id, nil, map[string]any{"status": "built"}, 400, "Payload validation error: 'Additional properties not allowed: status'."},
		{"patch of a missing action", "PATCH", "/api/v2/actions/actions/00000000-0000-4000-8000-000000000000", nil, map[string]any{"code": ""}, 404, "The action does not exist"},
		{"create needs create:actions", "POST", "/api/v2/actions/actions", []string{"read:actions", "update:actions"}, map[string]any{"name": "x", "supported_triggers": postLogin}, 403, "Insufficient scope, expected any of: create:actions"},
		{"update needs update:actions", "PATCH", "/api/v2/actions/actions/" + id, []string{"create:actions"}, map[string]any{"code": ""}, 403, "Insufficient scope, expected any of: update:actions"},
		{"delete needs delete:actions", "DELETE", "/api/v2/actions/actions/" + id, []string{"update:actions"}, nil, 403, "Insufficient scope, expected any of: delete:actions"},
		{"deploy needs create:actions", "POST", "/api/v2/actions/actions/" + id + "/deploy", []string{"update:actions"}, nil, 403, "Insufficient scope, expected any of: create:actions"},
		{"versions need read:actions", "GET", "/api/v2/actions/actions/" + id + "/versions", []string{"create:actions"}, nil, 403, "Insufficient scope, expected any of: read:actions"},
		{"bindings need update:triggers", "PATCH", "/api/v2/actions/triggers/post-login/bindings", []string{"update:actions"}, map[string]any{"bindings": []any{}}, 403, "Insufficient scope, expected any of: update:triggers"},
		{"bindings need a list", "PATCH", "/api/v2/actions/triggers/post-login/bindings", nil, map[string]any{}, 400, "Payload validation error: 'Missing required property: bindings'."},
		{"a binding ref has a known type", "PATCH", "/api/v2/actions/triggers/post-login/bindings", nil, map[string]any{"bindings": []any{map[string]any{"ref": map[string]any{"type": "id", "value": id}}}}, 400, "Payload validation error: 'No enum match for: id' on property bindings.0.ref.type."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := a
			if tc.scopes != nil {
				c = a.with(e.Token(e.MintClient(a.domain, tc.scopes...)))
			}
			r := c.do(tc.method, tc.path, tc.body)
			g.Expect(r.Status).To(Equal(tc.status), string(r.Body))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", tc.message))
		})
	}
}

// The emulator resolves dependencies offline: a well-formed npm name and a
// version it can read (exact, ^/~/>= range, partial or x, "latest").
func TestABuildFailsOnASyntaxErrorOrAnUnresolvableDependency(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "builds.emulator.local")
	for i, tc := range []struct {
		name  string
		code  string
		deps  []any
		error string // "" when the build succeeds
	}{
		{"valid code and dependencies", emptyPostLogin, []any{
			map[string]any{"name": "axios", "version": "1.7.2"}, map[string]any{"name": "@auth0/auth0-api-js", "version": "^1.0.0"},
			map[string]any{"name": "lodash", "version": "latest"}, map[string]any{"name": "jose", "version": "5.x"}}, ""},
		{"a syntax error", "exports.onExecutePostLogin = async (event, api) => { api.access.deny( };", nil, "SyntaxError"},
		{"await outside an async function", "exports.onExecutePostLogin = (event, api) => { await fetch('x'); };", nil, "SyntaxError"},
		{"a malformed package name", emptyPostLogin, []any{map[string]any{"name": "Not A Package", "version": "1.0.0"}}, "Dependency Not A Package@1.0.0 could not be resolved: not a valid npm package name"},
		{"a version that is not one", emptyPostLogin, []any{map[string]any{"name": "axios", "version": "newest"}}, "Dependency axios@newest could not be resolved: not a version or range"},
		{"a git reference", emptyPostLogin, []any{map[string]any{"name": "axios", "version": "github:axios/axios"}}, "could not be resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			extra := map[string]any{}
			if tc.deps != nil {
				extra["dependencies"] = tc.deps
			}
			created := a.newAction("build-"+string(rune('a'+i)), tc.code, extra)
			id := created["id"].(string)
			deploy := a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil)
			if tc.error == "" {
				g.Expect(created).To(HaveKeyWithValue("status", "built"))
				g.Expect(deploy.Status).To(Equal(202))
				return
			}
			g.Expect(created).To(HaveKeyWithValue("status", "failed"))
			errs := created["errors"].([]any)
			g.Expect(errs).To(HaveLen(1))
			g.Expect(errs[0]).To(HaveKeyWithValue("msg", ContainSubstring(tc.error)))
			g.Expect(errs[0]).To(HaveKey("id"))
			g.Expect(errs[0]).To(HaveKey("url"))
			g.Expect(deploy.Status).To(Equal(400), "a failed build cannot be deployed")
			g.Expect(deploy.JSON()).To(HaveKeyWithValue("message", errs[0].(map[string]any)["msg"]))

			fixed := a.do("PATCH", "/api/v2/actions/actions/"+id, map[string]any{"code": emptyPostLogin, "dependencies": []any{}})
			g.Expect(fixed.JSON()).To(HaveKeyWithValue("status", "built"), "fixing the draft builds it again")
			g.Expect(fixed.JSON()).NotTo(HaveKey("errors"))
			g.Expect(a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil).Status).To(Equal(202))
		})
	}
}

func TestSecretsAreReplacedByTheListSentAndNeverAnswered(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "secrets.emulator.local")
	created := a.newAction("with-secrets", emptyPostLogin, map[string]any{"secrets": []any{
		map[string]any{"name": "CLIENT_ID", "value": "id-1"}, map[string]any{"name": "CLIENT_SECRET", "value": "secret-1"}}})
	id := created["id"].(string)
	g.Expect(a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil).Status).To(Equal(202))
	updatedAt := func(action map[string]any) map[string]any {
		out := map[string]any{}
		for _, s := range action["secrets"].([]any) {
			out[s.(map[string]any)["name"].(string)] = s.(map[string]any)["updated_at"]
		}
		return out
	}
	before := updatedAt(created)
	e.AdvanceClock(60_000_000_000)

	same := a.do("PATCH", "/api/v2/actions/actions/"+id, map[string]any{"secrets": []any{
		map[string]any{"name": "CLIENT_ID", "value": "id-1"}, map[string]any{"name": "CLIENT_SECRET", "value": "secret-1"}}}).JSON()
	g.Expect(updatedAt(same)).To(Equal(before), "re-sending the same values changes nothing")
	g.Expect(same).To(HaveKeyWithValue("all_changes_deployed", true))

	r := a.do("PATCH", "/api/v2/actions/actions/"+id, map[string]any{"secrets": []any{map[string]any{"name": "CLIENT_SECRET", "value": "secret-2"}}})
	g.Expect(string(r.Body)).NotTo(ContainSubstring("secret-2"))
	rotated := r.JSON()
	g.Expect(updatedAt(rotated)).To(HaveLen(1), "a secret left out of the list is removed")
	g.Expect(updatedAt(rotated)["CLIENT_SECRET"]).NotTo(Equal(before["CLIENT_SECRET"]), "a rotated value is a new updated_at")
	g.Expect(rotated).To(HaveKeyWithValue("all_changes_deployed", false), "secrets are deployed with the code")
	g.Expect(updatedAt(rotated["deployed_version"].(map[string]any))).To(Equal(before), "the deployed version keeps its secrets")
}

func TestABindingsPatchReplacesTheTriggersListInOrder(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "bind.emulator.local")
	foreign := e.SeedAction(a.domain, emulatortest.ActionSeed{Name: "foreign", Bind: true})
	foreignBinding := a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()["bindings"].([]any)[0].(map[string]any)["id"]
	first := a.newAction("first", emptyPostLogin, nil)["id"].(string)
	second := a.newAction("second", emptyPostLogin, nil)["id"].(string)
	draft := a.newAction("draft", emptyPostLogin, nil)["id"].(string)
	for _, id := range []string{first, second} {
		g.Expect(a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil).Status).To(Equal(202))
	}
	ref := func(typ, value string) map[string]any {
		return map[string]any{"ref": map[string]any{"type": typ, "value": value}}
	}
	order := func(bindings []any) []any {
		var out []any
		for _, b := range bindings {
			out = append(out, b.(map[string]any)["action"].(map[string]any)["name"])
		}
		return out
	}

	r := a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": []any{
		ref("action_name", "second"), ref("binding_id", foreignBinding.(string)), map[string]any{"ref": map[string]any{"type": "action_id", "value": first}, "display_name": "First one"}}})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(order(r.JSON()["bindings"].([]any))).To(Equal([]any{"second", "foreign", "first"}))
	listed := a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()["bindings"].([]any)
	g.Expect(order(listed)).To(Equal([]any{"second", "foreign", "first"}), "bindings run in the order sent")
	g.Expect(listed[1]).To(HaveKeyWithValue("id", foreignBinding), "a binding kept keeps its id")
	g.Expect(listed[2]).To(HaveKeyWithValue("display_name", "First one"))
	g.Expect(listed[0]).To(HaveKeyWithValue("display_name", "second"), "the display name defaults to the action's name")

	for _, tc := range []struct {
		name    string
		body    []any
		status  int
		message string
	}{
		{"an action never deployed", []any{ref("action_id", draft)}, 400, "the action draft has no deployed version"},
		{"an unknown action", []any{ref("action_name", "nobody")}, 404, "the action nobody does not exist"},
		{"an action twice", []any{ref("action_id", first), ref("action_name", "first")}, 400, "is bound twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": tc.body})
			g.Expect(r.Status).To(Equal(tc.status), string(r.Body))
			g.Expect(r.JSON()["message"]).To(ContainSubstring(tc.message))
			g.Expect(order(a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()["bindings"].([]any))).
				To(Equal([]any{"second", "foreign", "first"}), "a refused PATCH changes nothing")
		})
	}

	t.Run("a bound action is deleted only with force, which unbinds it", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("DELETE", "/api/v2/actions/actions/"+second, nil)
		g.Expect(r.Status).To(Equal(400), string(r.Body))
		g.Expect(a.do("GET", "/api/v2/actions/actions/"+second, nil).Status).To(Equal(200))
		g.Expect(a.do("DELETE", "/api/v2/actions/actions/"+second+"?force=true", nil).Status).To(Equal(204))
		g.Expect(a.do("GET", "/api/v2/actions/actions/"+second, nil).Status).To(Equal(404))
		g.Expect(order(a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()["bindings"].([]any))).To(Equal([]any{"foreign", "first"}))
		g.Expect(a.do("DELETE", "/api/v2/actions/actions/"+second, nil).Status).To(Equal(404), "deleting what is gone is 404")
		g.Expect(a.do("DELETE", "/api/v2/actions/actions/"+draft, nil).Status).To(Equal(204), "an unbound action needs no force")
		g.Expect(a.do("GET", "/api/v2/actions/actions/"+foreign, nil).Status).To(Equal(200))
	})

	t.Run("an empty list unbinds everything", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": []any{}})
		g.Expect(r.JSON()).To(Equal(map[string]any{"bindings": []any{}}))
	})
}

func TestActionWritesCountAsManagementWrites(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "counted.emulator.local")
	e.ResetRequests(a.domain)
	id := a.newAction("counted", emptyPostLogin, nil)["id"].(string)
	a.do("PATCH", "/api/v2/actions/actions/"+id, map[string]any{"code": emptyPostLogin + "\n"})
	a.do("POST", "/api/v2/actions/actions/"+id+"/deploy", nil)
	a.do("PATCH", "/api/v2/actions/triggers/post-login/bindings", map[string]any{"bindings": []any{map[string]any{"ref": map[string]any{"type": "action_id", "value": id}}}})
	a.do("GET", "/api/v2/actions/actions/"+id+"/versions", nil)
	a.do("GET", "/api/v2/actions/actions?actionName=counted&triggerId=post-login", nil)
	a.do("DELETE", "/api/v2/actions/actions/"+id+"?force=true", nil)
	got := e.Requests(a.domain)
	g.Expect(got.ManagementWrites()).To(Equal(5), strings.Join(got.Lines(), "\n"))
	g.Expect(got.ManagementReads()).To(Equal(2))
	g.Expect(got.Count("POST", "/api/v2/actions/actions/{id}/deploy")).To(Equal(1))
	g.Expect(got.Count("PATCH", "/api/v2/actions/triggers/{triggerId}/bindings")).To(Equal(1))
}
