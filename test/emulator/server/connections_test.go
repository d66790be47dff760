package server_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

func TestConnectionNamesFollowThePlatformsRules(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "names.emulator.local")
	cases := []struct {
		name string
		ok   bool
	}{
		{"legacy-users", true},
		{"Users2024", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"-leading-dash", false},
		{"trailing-dash-", false},
		{"under_score", false},
		{"with space", false},
		{"", false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%.20q", c.name), func(t *testing.T) {
			g := NewWithT(t)
			r := a.do("POST", "/api/v2/connections", map[string]any{"name": c.name, "strategy": "auth0"})
			if c.ok {
				g.Expect(r.Status).To(Equal(201), string(r.Body))
				g.Expect(r.JSON()).To(HaveKeyWithValue("realms", []any{c.name}), "realms default to [name]")
				g.Expect(r.JSON()["id"]).To(HavePrefix("con_"))
			} else {
				g.Expect(r.Status).To(Equal(400), string(r.Body))
				g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "invalid_body"))
			}
		})
	}
	t.Run("the same name twice is a conflict", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("POST", "/api/v2/connections", map[string]any{"name": "legacy-users", "strategy": "auth0"})
		g.Expect(r.Status).To(Equal(409))
		g.Expect(r.JSON()).To(HaveKeyWithValue("message", "A connection with the same name already exists"))
	})
	t.Run("PATCH may not carry name or strategy", func(t *testing.T) {
		g := NewWithT(t)
		id := a.do("GET", "/api/v2/connections?name=legacy-users", nil).Array()[0].(map[string]any)["id"].(string)
		for _, k := range []string{"name", "strategy"} {
			r := a.do("PATCH", "/api/v2/connections/"+id, map[string]any{k: "x"})
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()["message"]).To(ContainSubstring("Additional properties not allowed: " + k))
		}
	})
}

func TestConnectionPatchReplacesOptionsWhole(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "options.emulator.local")
	c := a.createDatabase("db", map[string]any{"requires_username": true, "passwordPolicy": "fair", "brute_force_protection": false})
	g.Expect(c["options"]).To(HaveKeyWithValue("mfa", map[string]any{"active": true, "return_enroll_settings": true}), "the platform adds options of its own")
	g.Expect(c["options"]).To(HaveKeyWithValue("brute_force_protection", false), "what the request sets wins")
	r := a.do("PATCH", "/api/v2/connections/"+c["id"].(string), map[string]any{"options": map[string]any{"passwordPolicy": "good"}})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()["options"]).To(Equal(map[string]any{"passwordPolicy": "good"}))
	got := a.do("GET", "/api/v2/connections/"+c["id"].(string), nil).JSON()
	g.Expect(got["options"]).To(Equal(map[string]any{"passwordPolicy": "good"}), "what the PATCH left out of options is gone")

	r = a.do("PATCH", "/api/v2/connections/"+c["id"].(string), map[string]any{"display_name": "Database"})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.JSON()["options"]).To(Equal(map[string]any{"passwordPolicy": "good"}), "a PATCH without options leaves them alone")
	g.Expect(r.JSON()).To(HaveKeyWithValue("display_name", "Database"))
}

func TestConnectionConfigurationIsAnsweredAsCiphertextThatChangesOnEveryWrite(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "config.emulator.local")
	opts := map[string]any{"enabledDatabaseCustomization": true, "configuration": map[string]any{"API_KEY": "s3cret", "BASE": "http://127.0.0.1:1"}}
	c := a.createDatabase("legacy", opts)
	first := c["options"].(map[string]any)["configuration"].(map[string]any)
	g.Expect(first).To(HaveLen(2))
	for k, v := range first {
		g.Expect(v).NotTo(Equal(opts["configuration"].(map[string]any)[k]), "no plain value comes back")
		_, err := base64.StdEncoding.DecodeString(v.(string))
		g.Expect(err).NotTo(HaveOccurred(), "the value is base64")
	}
	id := c["id"].(string)
	again := a.do("GET", "/api/v2/connections/"+id, nil).JSON()["options"].(map[string]any)["configuration"]
	g.Expect(again).To(Equal(first), "a read answers the stored ciphertext")

	patched := a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"options": opts}).JSON()["options"].(map[string]any)["configuration"].(map[string]any)
	g.Expect(patched["API_KEY"]).NotTo(Equal(first["API_KEY"]), "the same plain value gives new ciphertext on a write")
	stored, _ := e.Connection(a.domain, "legacy")
	g.Expect(stored["options"].(map[string]any)["configuration"]).To(Equal(opts["configuration"]))

	// Sending back what was read stores the ciphertext as the plain value: a
	// client must send the plain values on every PATCH.
	a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"options": map[string]any{"enabledDatabaseCustomization": true, "configuration": patched}})
	stored, _ = e.Connection(a.domain, "legacy")
	g.Expect(stored["options"].(map[string]any)["configuration"].(map[string]any)["API_KEY"]).To(Equal(patched["API_KEY"]))
}

func TestConnectionRefusesTogglingCustomizationOnceItHasUsers(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "toggle.emulator.local")
	c := a.createDatabase("db", map[string]any{"enabledDatabaseCustomization": true, "import_mode": true})
	id := c["id"].(string)
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "someone@example.com", Password: "Passw0rd!x"})

	// Leaving the key out of a whole-options PATCH turns it off: refused too.
	for _, opts := range []map[string]any{{"enabledDatabaseCustomization": false}, {"import_mode": true}} {
		r := a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"options": opts})
		g.Expect(r.Status).To(Equal(400))
		g.Expect(r.JSON()).To(HaveKeyWithValue("message", `This database contains users. You cannot change "options.enabledDatabaseCustomization" setting.`))
	}
	stored, _ := e.Connection(a.domain, "db")
	g.Expect(stored["options"]).To(HaveKeyWithValue("enabledDatabaseCustomization", true))
	r := a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"options": map[string]any{"enabledDatabaseCustomization": true, "import_mode": false}})
	g.Expect(r.Status).To(Equal(200), "other options may change")
}

func TestConnectionDeleteAnswers202ThenFor204(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "delete.emulator.local")
	id := a.createDatabase("db", nil)["id"].(string)
	r := a.do("DELETE", "/api/v2/connections/"+id, nil)
	g.Expect(r.Status).To(Equal(202))
	g.Expect(r.JSON()).To(HaveKey("deleted_at"))
	g.Expect(a.do("DELETE", "/api/v2/connections/"+id, nil).Status).To(Equal(204))
	r = a.do("GET", "/api/v2/connections/"+id, nil)
	g.Expect(r.Status).To(Equal(404))
	g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "inexistent_connection"))
}

func TestConnectionListFiltersAndPaginatesBothWays(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "list.emulator.local")
	for i := 0; i < 7; i++ {
		a.createDatabase(fmt.Sprintf("db-%d", i), nil)
	}
	g := NewWithT(t)
	g.Expect(a.do("POST", "/api/v2/connections", map[string]any{"name": "google", "strategy": "google-oauth2"}).Status).To(Equal(201))

	t.Run("filter by strategy and exact name", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(a.do("GET", "/api/v2/connections?strategy=auth0", nil).Array()).To(HaveLen(7))
		one := a.do("GET", "/api/v2/connections?strategy=auth0&name=db-3", nil).Array()
		g.Expect(one).To(HaveLen(1))
		g.Expect(one[0]).To(HaveKeyWithValue("name", "db-3"))
		g.Expect(a.do("GET", "/api/v2/connections?strategy=auth0&name=db", nil).Array()).To(BeEmpty())
	})
	t.Run("offset pagination with totals", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("GET", "/api/v2/connections?strategy=auth0&page=1&per_page=3&include_totals=true", nil).JSON()
		g.Expect(r).To(HaveKeyWithValue("start", 3.0))
		g.Expect(r).To(HaveKeyWithValue("limit", 3.0))
		g.Expect(r).To(HaveKeyWithValue("total", 7.0))
		g.Expect(r["connections"]).To(HaveLen(3))
		g.Expect(r["connections"].([]any)[0]).To(HaveKeyWithValue("name", "db-3"))
	})
	t.Run("checkpoint pagination", func(t *testing.T) {
		g := NewWithT(t)
		var names []string
		q := url.Values{"strategy": {"auth0"}, "take": {"3"}, "per_page": {"50"}}
		for pages := 0; ; pages++ {
			g.Expect(pages).To(BeNumerically("<", 4))
			r := a.do("GET", "/api/v2/connections?"+q.Encode(), nil).JSON()
			for _, c := range r["connections"].([]any) {
				names = append(names, c.(map[string]any)["name"].(string))
			}
			next, ok := r["next"].(string)
			if !ok {
				break
			}
			q.Set("from", next)
		}
		g.Expect(names).To(Equal([]string{"db-0", "db-1", "db-2", "db-3", "db-4", "db-5", "db-6"}))
	})
	t.Run("offset pagination stops at 1000 records", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("GET", "/api/v2/connections?page=10&per_page=100", nil)
		g.Expect(r.Status).To(Equal(400))
		g.Expect(r.JSON()["message"]).To(HavePrefix("You can only page through the first 1000 records"))
	})
}

func TestConnectionScriptSyntaxErrorsAreReportedWhenSaved(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "syntax.emulator.local")
	bad := map[string]any{"enabledDatabaseCustomization": true, "customScripts": map[string]any{
		"login":    "function login(email, password, callback) { callback(null, null); }",
		"get_user": "function getByEmail(email, callback) { callback(null, null) ",
	}}
	r := a.do("POST", "/api/v2/connections", map[string]any{"name": "legacy", "strategy": "auth0", "options": bad})
	g.Expect(r.Status).To(Equal(400))
	g.Expect(r.JSON()["message"]).To(HavePrefix("Error in options.customScripts.get_user script: "))
	_, exists := e.Connection(a.domain, "legacy")
	g.Expect(exists).To(BeFalse())

	id := a.createDatabase("legacy", nil)["id"].(string)
	r = a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"options": map[string]any{"customScripts": map[string]any{"login": "function login( {"}}})
	g.Expect(r.Status).To(Equal(400))
	g.Expect(r.JSON()["message"]).To(HavePrefix("Error in options.customScripts.login script: "))
}

func TestConnectionEnabledClientsMustBeClientsOfTheTenant(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "enabled.emulator.local")
	stranger := e.CreateTenant("stranger.emulator.local")

	r := a.do("POST", "/api/v2/connections", map[string]any{"name": "db", "strategy": "auth0", "enabled_clients": []any{a.creds.ClientID}})
	g.Expect(r.Status).To(Equal(201), string(r.Body))
	id := r.JSON()["id"].(string)
	for _, unknown := range []string{"no-such-client", stranger.ClientID} {
		r = a.do("POST", "/api/v2/connections", map[string]any{"name": "db2", "strategy": "auth0", "enabled_clients": []any{unknown}})
		g.Expect(r.Status).To(Equal(400))
		g.Expect(r.JSON()).To(Equal(map[string]any{"statusCode": 400.0, "error": "Bad Request", "errorCode": "invalid_body", "message": "Client not found: " + unknown}))
		r = a.do("PATCH", "/api/v2/connections/"+id, map[string]any{"enabled_clients": []any{a.creds.ClientID, unknown}})
		g.Expect(r.Status).To(Equal(400))
	}
	g.Expect(a.do("GET", "/api/v2/connections/"+id, nil).JSON()["enabled_clients"]).To(Equal([]any{a.creds.ClientID}), "a refused PATCH changes nothing")
}

// GET/PATCH /api/v2/connections/{id}/clients, the platform's newer
// enabled-clients endpoints: {"clients":[{"client_id"}],"next"} paged by
// take/from, and a PATCH of [{"client_id","status"}] answered 204
// (https://auth0.com/docs/api/management/v2/connections/get-connection-clients,
// https://auth0.com/docs/api/management/v2/connections/patch-clients).
func TestConnectionClientsAreListedAndToggledOneByOne(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "toggle-clients.emulator.local")
	c := a.createDatabase("db", nil)
	id := c["id"].(string)
	web, jobs := e.MintClient(a.domain), e.MintClient(a.domain)

	g.Expect(a.do("GET", "/api/v2/connections/"+id+"/clients", nil).JSON()).To(Equal(map[string]any{"clients": []any{}}))
	r := a.do("PATCH", "/api/v2/connections/"+id+"/clients", []any{
		map[string]any{"client_id": web.ClientID, "status": true}, map[string]any{"client_id": jobs.ClientID, "status": true}})
	g.Expect(r.Status).To(Equal(204), string(r.Body))
	g.Expect(r.Body).To(BeEmpty())
	g.Expect(a.do("GET", "/api/v2/connections/"+id, nil).JSON()["enabled_clients"]).To(Equal([]any{web.ClientID, jobs.ClientID}), "the old field shows the same")

	first := a.do("GET", "/api/v2/connections/"+id+"/clients?take=1", nil).JSON()
	g.Expect(first["clients"]).To(Equal([]any{map[string]any{"client_id": web.ClientID}}))
	second := a.do("GET", "/api/v2/connections/"+id+"/clients?take=1&from="+first["next"].(string), nil).JSON()
	g.Expect(second).To(Equal(map[string]any{"clients": []any{map[string]any{"client_id": jobs.ClientID}}}), "no next on the last page")

	g.Expect(a.do("PATCH", "/api/v2/connections/"+id+"/clients", []any{map[string]any{"client_id": web.ClientID, "status": false}}).Status).To(Equal(204))
	g.Expect(a.do("GET", "/api/v2/connections/"+id+"/clients", nil).JSON()["clients"]).To(Equal([]any{map[string]any{"client_id": jobs.ClientID}}))

	tooMany := make([]any, 51)
	for i := range tooMany {
		tooMany[i] = map[string]any{"client_id": web.ClientID, "status": true}
	}
	for name, c := range map[string]struct {
		body    any
		message string
	}{
		"an object":      {map[string]any{"client_id": web.ClientID, "status": true}, "Invalid request payload JSON format"},
		"nothing":        {[]any{}, "Payload validation error: 'Array is too short (0), minimum 1'."},
		"over 50":        {tooMany, "Payload validation error: 'Array is too long (51), maximum 50'."},
		"no status":      {[]any{map[string]any{"client_id": web.ClientID}}, "Payload validation error: 'Missing required property: status' on property 0."},
		"unknown client": {[]any{map[string]any{"client_id": "nope", "status": true}}, "Client not found: nope"},
	} {
		r := a.do("PATCH", "/api/v2/connections/"+id+"/clients", c.body)
		g.Expect(r.Status).To(Equal(400), name)
		g.Expect(r.JSON()).To(HaveKeyWithValue("message", c.message), name)
	}
	g.Expect(a.do("GET", "/api/v2/connections/con_missing/clients", nil).Status).To(Equal(404))
	reader := a.with(e.Token(e.MintClient(a.domain, "read:connections")))
	g.Expect(reader.do("PATCH", "/api/v2/connections/"+id+"/clients", []any{map[string]any{"client_id": web.ClientID, "status": true}}).Status).To(Equal(403))
}

// TenantSettingsFlags.enable_client_connections: "Whether all current
// connections should be enabled when a new client (application) is created
// (true, default) or not (false)."
func TestANewApplicationGetsEveryConnectionUnlessTheTenantSaysOtherwise(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "auto-enable.emulator.local")
	id := a.createDatabase("db", nil)["id"].(string)
	enabled := func() any { return a.do("GET", "/api/v2/connections/"+id, nil).JSON()["enabled_clients"] }

	app := a.do("POST", "/api/v2/clients", map[string]any{"name": "Web"}).JSON()["client_id"].(string)
	g.Expect(enabled()).To(Equal([]any{app}))

	a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"flags": map[string]any{"enable_client_connections": false}})
	a.do("POST", "/api/v2/clients", map[string]any{"name": "Other"})
	g.Expect(enabled()).To(Equal([]any{app}))

	g.Expect(a.do("DELETE", "/api/v2/clients/"+app, nil).Status).To(Equal(204))
	g.Expect(enabled()).To(Equal([]any{}), "a deleted client leaves the connections it was enabled on")
}
