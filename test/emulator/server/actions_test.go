package server_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// Shapes from https://auth0.com/docs/api/management/v2/actions/get-actions
// ({"actions":[],"total","page","per_page"}), .../get-triggers
// ({"triggers":[{"id","version","status","runtimes","default_runtime",
// "compatible_triggers","binding_policy"}]}) and .../get-bindings
// ({"bindings":[{"id","trigger_id","display_name","action"}],"total","page","per_page"}).
func TestANewTenantHasNoActionsAndTheDocumentedTriggers(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "actions.emulator.local")

	g.Expect(a.do("GET", "/api/v2/actions/actions", nil).JSON()).To(Equal(map[string]any{"actions": []any{}, "total": 0.0, "page": 0.0, "per_page": 20.0}))
	g.Expect(a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()).To(Equal(map[string]any{"bindings": []any{}, "total": 0.0, "page": 0.0, "per_page": 20.0}))

	triggers := a.do("GET", "/api/v2/actions/triggers", nil).JSON()["triggers"].([]any)
	g.Expect(triggers).To(ContainElement(map[string]any{"id": "post-login", "version": "v3", "status": "CURRENT",
		"runtimes": []any{"node18", "node22"}, "default_runtime": "node22", "compatible_triggers": []any{}, "binding_policy": "trigger-bound"}))
	ids := map[any]bool{}
	for _, tr := range triggers {
		ids[tr.(map[string]any)["id"]] = true
	}
	g.Expect(ids).To(HaveKey("credentials-exchange"))
	g.Expect(ids).To(HaveKey("post-change-password"))

	noScope := a.with(e.Token(e.MintClient(a.domain, "read:users")))
	for _, path := range []string{"/api/v2/actions/actions", "/api/v2/actions/triggers", "/api/v2/actions/triggers/post-login/bindings"} {
		r := noScope.do("GET", path, nil)
		g.Expect(r.Status).To(Equal(403), path)
		g.Expect(r.JSON()).To(HaveKeyWithValue("message", "Insufficient scope, expected any of: read:actions"))
	}
	r := a.do("GET", "/api/v2/actions/triggers/post-logon/bindings", nil)
	g.Expect(r.Status).To(Equal(400))
	g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "invalid_uri"))
	g.Expect(a.do("GET", "/api/v2/actions/actions?triggerId=post-logon", nil).Status).To(Equal(400))
	g.Expect(a.do("GET", "/api/v2/actions/actions?per_page=101", nil).Status).To(Equal(400))
}

func TestActionsAreListedFilteredAndBoundInOrder(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "bound.emulator.local")
	first := e.SeedAction(a.domain, emulatortest.ActionSeed{Name: "add-roles", Bind: true})
	second := e.SeedAction(a.domain, emulatortest.ActionSeed{Name: "deny-blocked-ips", Bind: true})
	draft := e.SeedAction(a.domain, emulatortest.ActionSeed{Name: "draft", Trigger: "post-change-password", Code: "exports.onExecutePostChangePassword = async () => {};"})

	all := a.do("GET", "/api/v2/actions/actions", nil).JSON()
	g.Expect(all).To(HaveKeyWithValue("total", 3.0))
	got := a.do("GET", "/api/v2/actions/actions/"+first, nil)
	g.Expect(got.Status).To(Equal(200))
	action := got.JSON()
	g.Expect(action["id"]).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))
	g.Expect(action).To(HaveKeyWithValue("name", "add-roles"))
	g.Expect(action).To(HaveKeyWithValue("supported_triggers", []any{map[string]any{"id": "post-login", "version": "v3"}}))
	g.Expect(action).To(HaveKeyWithValue("runtime", "node22"))
	g.Expect(action).To(HaveKeyWithValue("all_changes_deployed", true))
	g.Expect(action).To(HaveKeyWithValue("secrets", []any{}))
	g.Expect(action["deployed_version"]).To(HaveKeyWithValue("number", 1.0))
	g.Expect(action["deployed_version"]).To(HaveKeyWithValue("deployed", true))
	g.Expect(a.do("GET", "/api/v2/actions/actions/"+draft, nil).JSON()).NotTo(HaveKey("deployed_version"))

	names := func(path string) []any {
		var out []any
		for _, x := range a.do("GET", path, nil).JSON()["actions"].([]any) {
			out = append(out, x.(map[string]any)["name"])
		}
		return out
	}
	g.Expect(names("/api/v2/actions/actions?triggerId=post-login")).To(Equal([]any{"add-roles", "deny-blocked-ips"}))
	g.Expect(names("/api/v2/actions/actions?deployed=false")).To(Equal([]any{"draft"}))
	g.Expect(names("/api/v2/actions/actions?actionName=deny-blocked-ips")).To(Equal([]any{"deny-blocked-ips"}))
	g.Expect(names("/api/v2/actions/actions?installed=true")).To(BeEmpty())
	page := a.do("GET", "/api/v2/actions/actions?page=1&per_page=2", nil).JSON()
	g.Expect(page).To(HaveKeyWithValue("total", 3.0))
	g.Expect(page).To(HaveKeyWithValue("page", 1.0))
	g.Expect(page).To(HaveKeyWithValue("per_page", 2.0))
	g.Expect(page["actions"]).To(HaveLen(1))

	bindings := a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()
	g.Expect(bindings).To(HaveKeyWithValue("total", 2.0))
	list := bindings["bindings"].([]any)
	g.Expect(list[0]).To(HaveKeyWithValue("trigger_id", "post-login"))
	g.Expect(list[0]).To(HaveKeyWithValue("display_name", "add-roles"))
	g.Expect(list[0].(map[string]any)["action"]).To(HaveKeyWithValue("id", first), "bindings run in order, each with its action")
	g.Expect(list[1].(map[string]any)["action"]).To(HaveKeyWithValue("id", second))
	g.Expect(a.do("GET", "/api/v2/actions/triggers/post-change-password/bindings", nil).JSON()["bindings"]).To(BeEmpty(), "an undeployed action is bound nowhere")

	r := a.do("GET", "/api/v2/actions/actions/00000000-0000-4000-8000-000000000000", nil)
	g.Expect(r.Status).To(Equal(404))
	g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "inexistent_action"))

	e.Restart()
	g.Expect(a.do("GET", "/api/v2/actions/actions/"+first, nil).JSON()).To(Equal(action), "actions are kept")
}

func TestTheAdminAPISeedsActions(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "seeded.emulator.local")
	tok := e.Server().AdminToken()
	status, body := admin(t, e, tok, "POST", "/admin/v1/tenants/seeded.emulator.local/actions", map[string]any{"name": "tag-users", "bind": true})
	g.Expect(status).To(Equal(201), string(body))
	g.Expect(a.do("GET", "/api/v2/actions/triggers/post-login/bindings", nil).JSON()).To(HaveKeyWithValue("total", 1.0))
	status, _ = admin(t, e, tok, "POST", "/admin/v1/tenants/seeded.emulator.local/actions", map[string]any{"name": "tag-users"})
	g.Expect(status).To(Equal(400), "names are unique on a tenant")
}
