package server_test

import (
	"database/sql"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	_ "modernc.org/sqlite"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
	"github.com/tenantops/identity-operator/test/emulator/internal/password"
)

// clientCredentialsToken runs the client credentials grant for the tenant's
// Management API and returns the answer.
func (a *api) clientCredentialsToken(clientID, secret string, scope ...string) response {
	a.t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"audience": {"https://" + a.domain + "/api/v2/"}}
	if len(scope) > 0 {
		v.Set("scope", strings.Join(scope, " "))
	}
	return a.form("/oauth/token", v)
}

// Shapes from https://auth0.com/docs/api/management/v2/clients/post-clients
// and .../get-clients: client_id, name, app_type, grant_types,
// token_endpoint_auth_method, jwt_configuration {alg, lifetime_in_seconds,
// secret_encoded}, is_first_party, callbacks...; client_secret only on
// create and to a token with read:client_keys.
func TestClientsAreCreatedReadUpdatedAndDeletedWithThePlatformsShapes(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "apps.emulator.local")

	r := a.do("POST", "/api/v2/clients", map[string]any{"name": "Billing worker", "app_type": "non_interactive",
		"description": "Nightly invoices", "client_metadata": map[string]any{"team": "billing"}})
	g.Expect(r.Status).To(Equal(201), string(r.Body))
	created := r.JSON()
	id := created["client_id"].(string)
	g.Expect(id).To(MatchRegexp(`^[A-Za-z0-9]{32}$`))
	g.Expect(r.secret("client_secret")).To(HaveLen(64), "the platform answers the secret on creation")
	g.Expect(created).To(HaveKeyWithValue("name", "Billing worker"))
	g.Expect(created).To(HaveKeyWithValue("app_type", "non_interactive"))
	g.Expect(created).To(HaveKeyWithValue("token_endpoint_auth_method", "client_secret_post"))
	g.Expect(created).To(HaveKeyWithValue("grant_types", ContainElement("client_credentials")))
	g.Expect(created).To(HaveKeyWithValue("jwt_configuration", map[string]any{"alg": "RS256", "lifetime_in_seconds": 36000.0, "secret_encoded": false}))
	g.Expect(created).To(HaveKeyWithValue("client_metadata", map[string]any{"team": "billing"}))

	reader := a.with(e.Token(e.MintClient(a.domain, "read:clients")))
	keys := a.with(e.Token(e.MintClient(a.domain, "read:client_keys")))
	got := reader.do("GET", "/api/v2/clients/"+id, nil)
	g.Expect(got.Status).To(Equal(200))
	g.Expect(got.JSON()).NotTo(HaveKey("client_secret"), "read:clients does not see secrets")
	g.Expect(keys.do("GET", "/api/v2/clients/"+id, nil).secret("client_secret")).To(Equal(r.secret("client_secret")), "read:client_keys does")
	g.Expect(reader.do("GET", "/api/v2/clients/"+id+"?fields=name,app_type", nil).JSON()).To(Equal(map[string]any{"name": "Billing worker", "app_type": "non_interactive"}))

	r = a.do("PATCH", "/api/v2/clients/"+id, map[string]any{"name": "Billing", "callbacks": []any{"https://billing.example/cb"}, "cross_origin_loc": nil})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKeyWithValue("name", "Billing"))
	g.Expect(r.JSON()).To(HaveKeyWithValue("callbacks", []any{"https://billing.example/cb"}))
	g.Expect(r.JSON()).To(HaveKeyWithValue("description", "Nightly invoices"), "a PATCH leaves the rest alone")

	g.Expect(a.with(e.Token(e.MintClient(a.domain, "read:clients"))).do("DELETE", "/api/v2/clients/"+id, nil).Status).To(Equal(403))
	g.Expect(a.do("DELETE", "/api/v2/clients/"+id, nil).Status).To(Equal(204))
	r = a.do("GET", "/api/v2/clients/"+id, nil)
	g.Expect(r.Status).To(Equal(404))
	g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "inexistent_client"))
	g.Expect(a.do("PATCH", "/api/v2/clients/"+id, map[string]any{"name": "x"}).Status).To(Equal(404))
}

func TestClientBodiesAreValidatedLikeThePlatforms(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "badapps.emulator.local")
	id := a.do("POST", "/api/v2/clients", map[string]any{"name": "ok"}).JSON()["client_id"].(string)
	cases := []struct {
		name, method, path string
		body               map[string]any
		message            string
	}{
		{"no name", "POST", "/api/v2/clients", map[string]any{"app_type": "spa"}, "Payload validation error: 'Missing required property: name'."},
		{"angle brackets", "POST", "/api/v2/clients", map[string]any{"name": "<script>"}, "Payload validation error: 'String does not match pattern ^[^<>]+$: <script>' on property name."},
		{"unknown key", "POST", "/api/v2/clients", map[string]any{"name": "x", "colour": "red"}, "Payload validation error: 'Additional properties not allowed: colour'."},
		{"app type", "POST", "/api/v2/clients", map[string]any{"name": "x", "app_type": "mainframe"}, "Payload validation error: 'No enum match for: mainframe' on property app_type."},
		{"long description", "POST", "/api/v2/clients", map[string]any{"name": "x", "description": strings.Repeat("d", 141)}, "Payload validation error: 'String is too long (141 chars), maximum 140' on property description."},
		// github.com/wso2/api-manager/issues/3372 shows this one from the platform.
		{"repeated grant type", "POST", "/api/v2/clients", map[string]any{"name": "x", "grant_types": []any{"password", "client_credentials", "client_credentials"}}, "Payload validation error: 'Array items are not unique (indexes 1 and 2)' on property grant_types."},
		{"PAR expiry", "PATCH", "/api/v2/clients/" + id, map[string]any{"par_request_expiry": 5}, "Payload validation error: 'Value 5 is less than minimum 10' on property par_request_expiry."},
		{"empty PATCH", "PATCH", "/api/v2/clients/" + id, map[string]any{}, "Payload validation error: 'Too few properties defined (0), minimum 1'."},
		{"metadata value", "PATCH", "/api/v2/clients/" + id, map[string]any{"client_metadata": map[string]any{"n": 1}}, "Payload validation error: 'Expected type string but found type integer' on property client_metadata.n."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.do(c.method, c.path, c.body)
			g.Expect(r.Status).To(Equal(400), string(r.Body))
			g.Expect(r.JSON()).To(Equal(map[string]any{"statusCode": 400.0, "error": "Bad Request", "errorCode": "invalid_body", "message": c.message}))
		})
	}
}

func TestClientsListPagesByOffsetAndCheckpointAndFilters(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "manyapps.emulator.local") // its own client is the first
	minted := e.MintClient(a.domain, "read:users")
	for _, spec := range []map[string]any{{"name": "spa", "app_type": "spa"}, {"name": "web", "app_type": "regular_web"}, {"name": "third", "is_first_party": false}} {
		g.Expect(a.do("POST", "/api/v2/clients", spec).Status).To(Equal(201))
	}
	all := a.do("GET", "/api/v2/clients", nil).Array()
	g.Expect(all).To(HaveLen(5), "admin-minted clients and API-made ones are one list")
	g.Expect(all[1]).To(HaveKeyWithValue("client_id", minted.ClientID))

	r := a.do("GET", "/api/v2/clients?include_totals=true&page=1&per_page=2", nil).JSON()
	g.Expect(r).To(HaveKeyWithValue("start", 2.0))
	g.Expect(r).To(HaveKeyWithValue("limit", 2.0))
	g.Expect(r).To(HaveKeyWithValue("total", 5.0))
	g.Expect(r["clients"]).To(HaveLen(2))

	var names []any
	for from := ""; ; {
		p := a.do("GET", "/api/v2/clients?take=2&from="+from, nil).JSON()
		for _, c := range p["clients"].([]any) {
			names = append(names, c.(map[string]any)["name"])
		}
		next, ok := p["next"].(string)
		if !ok {
			break
		}
		from = next
	}
	g.Expect(names).To(HaveLen(5))
	g.Expect(names[2:]).To(Equal([]any{"spa", "web", "third"}))

	spa := a.do("GET", "/api/v2/clients?app_type=spa", nil).Array()
	g.Expect(spa).To(HaveLen(1))
	g.Expect(spa[0]).To(HaveKeyWithValue("token_endpoint_auth_method", "none"), "a public application has no secret to send")
	g.Expect(spa[0]).To(HaveKeyWithValue("grant_types", Not(ContainElement("client_credentials"))))
	g.Expect(a.do("GET", "/api/v2/clients?is_first_party=false", nil).Array()).To(HaveLen(1))
	g.Expect(a.do("GET", "/api/v2/clients?client_ids="+minted.ClientID, nil).Array()).To(HaveLen(1))
}

// The shapes of https://auth0.com/docs/api/management/v2/client-grants/post-client-grants:
// {id, client_id, audience, scope[]}; the 409 message as
// github.com/auth0/terraform-provider-auth0/issues/255 shows it.
func TestAMachineToMachineClientGetsExactlyItsGrantsScopes(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "m2m.emulator.local")
	aud := "https://m2m.emulator.local/api/v2/"

	r := a.do("POST", "/api/v2/clients", map[string]any{"name": "Reporting job", "app_type": "non_interactive", "grant_types": []any{"client_credentials"}})
	g.Expect(r.Status).To(Equal(201))
	id, secret := r.JSON()["client_id"].(string), r.secret("client_secret")

	r = a.clientCredentialsToken(id, secret)
	g.Expect(r.Status).To(Equal(403), "no grant, no token")
	g.Expect(r.JSON()).To(HaveKeyWithValue("error", "access_denied"))

	r = a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": aud, "scope": []any{"read:tenant_settings", "read:connections"}})
	g.Expect(r.Status).To(Equal(201), string(r.Body))
	grant := r.JSON()
	grantID := grant["id"].(string)
	g.Expect(grantID).To(HavePrefix("cgr_"))
	g.Expect(grant).To(HaveKeyWithValue("client_id", id))
	g.Expect(grant).To(HaveKeyWithValue("audience", aud))
	g.Expect(grant).To(HaveKeyWithValue("scope", []any{"read:tenant_settings", "read:connections"}))

	r = a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": aud, "scope": []any{"read:users"}})
	g.Expect(r.Status).To(Equal(409))
	g.Expect(r.JSON()).To(HaveKeyWithValue("message", "A client grant already exists between "+id+" and "+aud))

	r = a.clientCredentialsToken(id, secret)
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKeyWithValue("scope", "read:tenant_settings read:connections"))
	job := a.with(r.secret("access_token"))
	g.Expect(job.do("GET", "/api/v2/tenants/settings", nil).Status).To(Equal(200))
	g.Expect(job.do("GET", "/api/v2/connections", nil).Status).To(Equal(200))
	denied := job.do("PATCH", "/api/v2/tenants/settings", map[string]any{"friendly_name": "x"})
	g.Expect(denied.Status).To(Equal(403))
	g.Expect(denied.JSON()).To(HaveKeyWithValue("errorCode", "insufficient_scope"))
	g.Expect(job.do("GET", "/api/v2/clients", nil).Status).To(Equal(403))
	g.Expect(a.clientCredentialsToken(id, secret, "read:users").Status).To(Equal(403), "a scope outside the grant is refused")

	r = a.do("PATCH", "/api/v2/client-grants/"+grantID, map[string]any{"scope": []any{"read:users"}})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.JSON()).To(HaveKeyWithValue("scope", []any{"read:users"}))
	g.Expect(a.clientCredentialsToken(id, secret).JSON()).To(HaveKeyWithValue("scope", "read:users"), "a new token carries the new scopes")

	g.Expect(a.do("DELETE", "/api/v2/client-grants/"+grantID, nil).Status).To(Equal(204))
	g.Expect(a.clientCredentialsToken(id, secret).Status).To(Equal(403), "the grant is gone")
}

func TestClientGrantsListFiltersPagesAndRefusesWhatTheTenantLacks(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "grants.emulator.local")
	aud := "https://grants.emulator.local/api/v2/"
	minted := e.MintClient(a.domain, "read:users", "update:users")

	all := a.do("GET", "/api/v2/client-grants", nil).Array()
	g.Expect(all).To(HaveLen(2), "the tenant's own client and the minted one have grants")
	mine := a.do("GET", "/api/v2/client-grants?client_id="+minted.ClientID, nil).Array()
	g.Expect(mine).To(HaveLen(1))
	g.Expect(mine[0]).To(HaveKeyWithValue("scope", []any{"read:users", "update:users"}))
	g.Expect(a.do("GET", "/api/v2/client-grants?audience="+url.QueryEscape(aud), nil).Array()).To(HaveLen(2))
	g.Expect(a.do("GET", "/api/v2/client-grants?audience=https://other.example/", nil).Array()).To(BeEmpty())
	page := a.do("GET", "/api/v2/client-grants?include_totals=true&per_page=1", nil).JSON()
	g.Expect(page).To(HaveKeyWithValue("total", 2.0))
	g.Expect(page["client_grants"]).To(HaveLen(1))
	first := a.do("GET", "/api/v2/client-grants?take=1", nil).JSON()
	g.Expect(first).To(HaveKey("next"))
	last := a.do("GET", "/api/v2/client-grants?take=1&from="+first["next"].(string), nil).JSON()
	g.Expect(last).NotTo(HaveKey("next"))
	g.Expect(last["client_grants"]).To(HaveLen(1))

	r := a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": "nope", "audience": aud, "scope": []any{}})
	g.Expect(r.Status).To(Equal(404))
	g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "inexistent_client"))
	r = a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": minted.ClientID, "audience": "https://api.example/", "scope": []any{}})
	g.Expect(r.Status).To(Equal(404), "the Management API is the tenant's one API")
	r = a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": minted.ClientID, "audience": aud, "scope": "read:users"})
	g.Expect(r.Status).To(Equal(400))
	g.Expect(r.JSON()).To(HaveKeyWithValue("message", "Payload validation error: 'Expected type array but found type string' on property scope."))
	r = a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": minted.ClientID, "scope": []any{"read:users"}})
	g.Expect(r.JSON()).To(HaveKeyWithValue("message", "Payload validation error: 'Missing required property: audience'."))
	r = a.do("PATCH", "/api/v2/client-grants/cgr_missing", map[string]any{"scope": []any{}})
	g.Expect(r.Status).To(Equal(404))

	noScope := a.with(e.Token(e.MintClient(a.domain, "read:clients")))
	r = noScope.do("GET", "/api/v2/client-grants", nil)
	g.Expect(r.Status).To(Equal(403))
	g.Expect(r.JSON()).To(HaveKeyWithValue("message", "Insufficient scope, expected any of: read:client_grants"))
}

func TestRotatingASecretRetiresTheOldOneAtOnce(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "rotate.emulator.local")
	worker := e.MintClient(a.domain, "read:tenant_settings")

	r := a.do("POST", "/api/v2/clients/"+worker.ClientID+"/rotate-secret", nil)
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	fresh := r.secret("client_secret")
	g.Expect(fresh).NotTo(BeEmpty())
	g.Expect(fresh).NotTo(Equal(worker.ClientSecret))
	g.Expect(a.clientCredentialsToken(worker.ClientID, worker.ClientSecret).Status).To(Equal(401))
	g.Expect(a.clientCredentialsToken(worker.ClientID, fresh).Status).To(Equal(200))

	// A secret set by PATCH needs update:client_keys, as the platform's
	// Terraform auth0_client_credentials resource relies on.
	g.Expect(a.with(e.Token(e.MintClient(a.domain, "update:clients"))).do("PATCH", "/api/v2/clients/"+worker.ClientID,
		map[string]any{"client_secret": "chosen-secret-of-enough-length"}).Status).To(Equal(403))
	r = a.do("PATCH", "/api/v2/clients/"+worker.ClientID, map[string]any{"client_secret": "chosen-secret-of-enough-length"})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(a.clientCredentialsToken(worker.ClientID, "chosen-secret-of-enough-length").Status).To(Equal(200))
	g.Expect(a.do("POST", "/api/v2/clients/missing/rotate-secret", nil).Status).To(Equal(404))
}

func TestClientsAndGrantsSurviveARestart(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "keep.emulator.local")
	r := a.do("POST", "/api/v2/clients", map[string]any{"name": "Kept", "grant_types": []any{"client_credentials"}})
	id, secret := r.JSON()["client_id"].(string), r.secret("client_secret")
	a.do("POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": "https://keep.emulator.local/api/v2/", "scope": []any{"read:users"}})
	before := a.do("GET", "/api/v2/clients/"+id, nil).JSON()

	e.Restart()

	g.Expect(a.do("GET", "/api/v2/clients/"+id, nil).JSON()).To(Equal(before))
	g.Expect(a.clientCredentialsToken(id, secret).JSON()).To(HaveKeyWithValue("scope", "read:users"))
}

// A data directory written before clients had grants of their own keeps
// working: the client's scopes become its Management API grant.
func TestAClientStoredByAnOlderEmulatorKeepsItsScopes(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "emulator.db"))
	g.Expect(err).NotTo(HaveOccurred())
	domain := "old-data.emulator.local"
	tenant, _ := json.Marshal(map[string]any{"domain": domain, "settings": map[string]any{"friendly_name": "old"}, "refused_flags": []string{}})
	client, _ := json.Marshal(map[string]any{"client_id": "OLDCLIENT", "domain": domain, "name": "Old", "secret_hash": password.Hash("old-secret"),
		"scopes": []string{"read:users"}, "grant_types": []string{"client_credentials"}})
	for _, stmt := range []string{
		`CREATE TABLE tenants (domain TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL)`,
		`CREATE TABLE clients (client_id TEXT PRIMARY KEY, domain TEXT NOT NULL, doc TEXT NOT NULL)`,
		`CREATE TABLE seq (n INTEGER NOT NULL)`,
		`INSERT INTO seq(n) VALUES (1)`,
		`INSERT INTO tenants VALUES ('` + domain + `', 1, '` + string(tenant) + `')`,
		`INSERT INTO clients VALUES ('OLDCLIENT', '` + domain + `', '` + string(client) + `')`,
	} {
		_, err := db.Exec(stmt)
		g.Expect(err).NotTo(HaveOccurred(), stmt)
	}
	g.Expect(db.Close()).To(Succeed())

	e := emulatortest.Start(t, emulatortest.WithDataDir(dir))
	a := &api{t: t, e: e, domain: domain, http: e.HTTPClient()}
	r := a.clientCredentialsToken("OLDCLIENT", "old-secret")
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKeyWithValue("scope", "read:users"))
	a.token = e.Token(e.MintClient(domain, "read:clients", "read:client_grants"))
	g.Expect(a.do("GET", "/api/v2/client-grants?client_id=OLDCLIENT", nil).Array()).To(HaveLen(1))
	g.Expect(a.do("GET", "/api/v2/clients/OLDCLIENT", nil).JSON()).To(HaveKeyWithValue("name", "Old"))
}
