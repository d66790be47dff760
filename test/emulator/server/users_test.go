package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

func TestUsersAreSearchedByConnectionAndEmailWithTotals(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "search.emulator.local")
	a.createDatabase("db-a", nil)
	a.createDatabase("db-b", nil)
	for i := 0; i < 5; i++ {
		e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db-a", Email: fmt.Sprintf("a%d@example.com", i), Password: "Passw0rd!x"})
	}
	e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db-b", Email: "a1@example.com", Password: "Passw0rd!x"})

	cases := []struct {
		name, q       string
		total, length int
	}{
		{"by connection", `identities.connection:"db-a"`, 5, 2},
		{"by email", `email:"a1@example.com"`, 2, 2},
		{"by email, any case", `email:"A1@Example.com"`, 2, 2},
		{"by connection and email", `identities.connection:"db-b" AND email:"a1@example.com"`, 1, 1},
		{"unquoted", `identities.connection:db-b`, 1, 1},
		{"no match", `email:"zz@example.com"`, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			q := url.Values{"q": {c.q}, "search_engine": {"v3"}, "include_totals": {"true"}, "per_page": {"2"}}
			r := a.do("GET", "/api/v2/users?"+q.Encode(), nil)
			g.Expect(r.Status).To(Equal(200), string(r.Body))
			body := r.JSON()
			g.Expect(body).To(HaveKeyWithValue("total", float64(c.total)))
			g.Expect(body).To(HaveKeyWithValue("length", float64(c.length)))
			g.Expect(body).To(HaveKeyWithValue("start", 0.0))
			g.Expect(body).To(HaveKeyWithValue("limit", 2.0))
			g.Expect(body["users"]).To(HaveLen(c.length))
		})
	}
	t.Run("without totals the answer is a bare array", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("GET", "/api/v2/users?"+url.Values{"q": {`identities.connection:"db-a"`}, "page": {"2"}, "per_page": {"2"}}.Encode(), nil)
		g.Expect(r.Array()).To(HaveLen(1))
	})
	t.Run("only the first 1000 records can be paged", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("GET", "/api/v2/users?page=20&per_page=50", nil)
		g.Expect(r.Status).To(Equal(400))
	})
	t.Run("an unsupported query is 400", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("GET", "/api/v2/users?"+url.Values{"q": {`logins_count:[1 TO 5]`}}.Encode(), nil)
		g.Expect(r.Status).To(Equal(400))
		g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "invalid_query_string"))
	})
}

func TestUserGetPatchDeleteAndUsersByEmail(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "users.emulator.local")
	a.createDatabase("db", nil)
	id := e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "dora@example.com", Password: "Passw0rd!x"})
	other := e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "eve@example.com", Password: "Passw0rd!x"})
	g.Expect(id).To(MatchRegexp(`^auth0\|[0-9a-f]{24}$`))
	path := "/api/v2/users/" + url.PathEscape(id)
	g.Expect(path).To(ContainSubstring("auth0%7C"), "clients escape the pipe; the route must still match")

	u := a.do("GET", path, nil)
	g.Expect(u.Status).To(Equal(200))
	g.Expect(u.JSON()).To(HaveKeyWithValue("user_id", id))
	g.Expect(u.JSON()).To(HaveKeyWithValue("identities", []any{map[string]any{"connection": "db", "user_id": strings.TrimPrefix(id, "auth0|"), "provider": "auth0", "isSocial": false}}))

	cases := []struct {
		name    string
		body    map[string]any
		status  int
		message string
	}{
		{"email and password together", map[string]any{"email": "x@example.com", "password": "Passw0rd!y", "connection": "db"}, 400, "Cannot update password and email simultaneously"},
		{"a password without the connection", map[string]any{"password": "Passw0rd!y"}, 400, "Payload validation error: 'connection is required when updating password, email or username'."},
		{"a weak password", map[string]any{"password": "abc", "connection": "db"}, 400, "PasswordStrengthError: Password is too weak"},
		{"another user's email", map[string]any{"email": "eve@example.com", "connection": "db"}, 409, "The specified new email already exists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.do("PATCH", path, c.body)
			g.Expect(r.Status).To(Equal(c.status), string(r.Body))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", c.message))
		})
	}
	r := a.do("PATCH", path, map[string]any{"email": "dora@new.example", "connection": "db", "user_metadata": map[string]any{"lang": "de"}})
	g.Expect(r.Status).To(Equal(200))
	g.Expect(r.JSON()).To(HaveKeyWithValue("email", "dora@new.example"))
	g.Expect(r.JSON()).To(HaveKeyWithValue("user_metadata", map[string]any{"lang": "de"}))

	byEmail := a.do("GET", "/api/v2/users-by-email?email="+url.QueryEscape("Dora@New.example"), nil)
	g.Expect(byEmail.Array()).To(HaveLen(1))
	g.Expect(byEmail.Array()[0]).To(HaveKeyWithValue("user_id", id))

	g.Expect(a.do("DELETE", path, nil).Status).To(Equal(204))
	r = a.do("GET", path, nil)
	g.Expect(r.Status).To(Equal(404))
	g.Expect(r.JSON()).To(Equal(map[string]any{"statusCode": 404.0, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"}))
	g.Expect(a.do("GET", "/api/v2/users-by-email?email=dora@new.example", nil).Array()).To(BeEmpty())
	g.Expect(a.do("GET", "/api/v2/users/"+url.PathEscape(other), nil).Status).To(Equal(200))
}

// linkedUser seeds a database user with a linked Google identity that
// carries identity-provider tokens.
func linkedUser(t *testing.T, e *emulatortest.Emulator, a *api) string {
	t.Helper()
	a.createDatabase("db", nil)
	return e.CreateUser(a.domain, emulatortest.UserSeed{Connection: "db", Email: "gil@example.com", Password: "Passw0rd!x",
		Identities: []map[string]any{{"provider": "google-oauth2", "user_id": "1234", "connection": "google-oauth2", "isSocial": true,
			"access_token": "ya29.idp-access", "refresh_token": "1//idp-refresh"}}})
}

func TestIdPTokensAreAnsweredOnlyToATokenWithReadUserIdpTokens(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "idp.emulator.local")
	id := linkedUser(t, e, a)
	path := "/api/v2/users/" + url.PathEscape(id)

	full := a.do("GET", path, nil).JSON()["identities"].([]any)[1].(map[string]any)
	g.Expect(full).To(HaveKeyWithValue("access_token", "ya29.idp-access"))
	g.Expect(full).To(HaveKeyWithValue("refresh_token", "1//idp-refresh"))

	reader := a.with(e.Token(e.MintClient(a.domain, "read:users")))
	plain := reader.do("GET", path, nil).JSON()["identities"].([]any)[1].(map[string]any)
	g.Expect(plain).NotTo(HaveKey("access_token"))
	g.Expect(plain).NotTo(HaveKey("refresh_token"))
	g.Expect(plain).To(HaveKeyWithValue("provider", "google-oauth2"))

	for _, list := range []string{"/api/v2/users?q=" + url.QueryEscape(`email:"gil@example.com"`), "/api/v2/users-by-email?email=gil@example.com"} {
		ids := a.do("GET", list, nil).Array()[0].(map[string]any)["identities"].([]any)
		g.Expect(ids[1]).NotTo(HaveKey("access_token"), "lists never carry IdP tokens: %s", list)
	}
}

func idTokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTheIdTokenCarriesIdPTokensOnlyWhileTheLegacyProfileIsOn(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "legacyprofile.emulator.local", emulatortest.Legacy())
	id := linkedUser(t, e, a)

	r := a.login("db", "gil@example.com", "Passw0rd!x", "openid", "email")
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	_, c := verifyJWT(t, a, r.secret("id_token"))
	g.Expect(c).To(HaveKeyWithValue("sub", id))
	g.Expect(c).To(HaveKeyWithValue("aud", a.creds.ClientID))
	g.Expect(c["identities"].([]any)[1]).To(HaveKeyWithValue("access_token", "ya29.idp-access"), "legacy profile: the whole profile")

	g.Expect(a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"flags": map[string]any{"enable_legacy_profile": false}}).Status).To(Equal(200))
	r = a.login("db", "gil@example.com", "Passw0rd!x", "openid", "email")
	c = idTokenClaims(t, r.secret("id_token"))
	g.Expect(c).NotTo(HaveKey("identities"))
	g.Expect(c).To(HaveKeyWithValue("email", "gil@example.com"))
	g.Expect(c).NotTo(HaveKey("name"), "only the claims the scopes ask for")

	t.Run("without openid there is no id_token", func(t *testing.T) {
		g := NewWithT(t)
		r := a.login("db", "gil@example.com", "Passw0rd!x", "email")
		g.Expect(r.JSON()).NotTo(HaveKey("id_token"))
		g.Expect(r.JSON()).To(HaveKeyWithValue("token_type", "Bearer"))
	})
}

func TestSignupCreatesADatabaseUser(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "signup.emulator.local")
	a.createDatabase("db", map[string]any{"passwordPolicy": "fair", "strategy_version": 2})
	a.createDatabase("closed", map[string]any{"disable_signup": true})
	signup := func(conn, email, pw string) response {
		return a.form("/dbconnections/signup", url.Values{"client_id": {a.creds.ClientID}, "connection": {conn}, "email": {email}, "password": {pw}})
	}
	g := NewWithT(t)
	r := signup("db", "Rae@Example.com", "Signup-pw1")
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKeyWithValue("email", "rae@example.com"))
	g.Expect(r.JSON()).To(HaveKeyWithValue("email_verified", false))
	g.Expect(r.JSON()["_id"]).To(MatchRegexp(`^[0-9a-f]{24}$`))
	g.Expect(a.login("db", "rae@example.com", "Signup-pw1").Status).To(Equal(200))

	cases := []struct {
		name, conn, email, pw, code string
	}{
		{"an existing user", "db", "rae@example.com", "Signup-pw1", "user_exists"},
		{"a weak password", "db", "sam@example.com", "weakpass", "invalid_password"},
		{"a closed connection", "closed", "sam@example.com", "Signup-pw1", "operation_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			r := signup(c.conn, c.email, c.pw)
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()).To(HaveKeyWithValue("code", c.code))
			g.Expect(r.JSON()).To(HaveKeyWithValue("statusCode", 400.0))
		})
	}
	r = signup("db", "rae@example.com", "Signup-pw1")
	g.Expect(r.JSON()).To(Equal(map[string]any{"name": "BadRequestError", "code": "user_exists", "description": "The user already exists.", "statusCode": 400.0}))
}

func TestUserinfoFollowsTheLegacyProfileFlag(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "userinfo.emulator.local", emulatortest.Legacy())
	linkedUser(t, e, a)
	userinfo := func() map[string]any {
		tok := a.login("db", "gil@example.com", "Passw0rd!x", "openid", "email").secret("access_token")
		r := a.with(tok).do("GET", "/userinfo", nil)
		g.Expect(r.Status).To(Equal(200), string(r.Body))
		return r.JSON()
	}
	g.Expect(userinfo()).To(HaveKey("identities"))
	e.PatchSettings(a.domain, map[string]any{"flags": map[string]any{"enable_legacy_profile": false}})
	info := userinfo()
	g.Expect(info).NotTo(HaveKey("identities"))
	g.Expect(info).To(HaveKeyWithValue("email", "gil@example.com"))
	g.Expect(a.with(a.token).do("GET", "/userinfo", nil).Status).To(Equal(401), "a client-credentials token is not for /userinfo")
}
