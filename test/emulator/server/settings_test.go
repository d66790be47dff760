package server_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

func TestSettingsPatchMergesTopLevelKeysFlagsKeyByKeyAndNullRemoves(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	a := newTenant(t, e, "settings.emulator.local")

	r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{
		"friendly_name": "Acme", "support_email": "help@acme.example",
		"change_password": map[string]any{"enabled": true, "html": "<p>x</p>"},
		"flags":           map[string]any{"enable_legacy_profile": true},
	})
	g.Expect(r.Status).To(Equal(200), string(r.Body))
	g.Expect(r.JSON()).To(HaveKeyWithValue("friendly_name", "Acme"))

	r = a.do("PATCH", "/api/v2/tenants/settings", map[string]any{
		"support_email":   nil,
		"change_password": map[string]any{"enabled": false},
		"flags":           map[string]any{"enable_sso": false, "enable_legacy_profile": nil},
	})
	g.Expect(r.Status).To(Equal(200))
	got := a.do("GET", "/api/v2/tenants/settings", nil).JSON()
	g.Expect(got).To(HaveKeyWithValue("friendly_name", "Acme"), "keys the PATCH left out stay")
	g.Expect(got).NotTo(HaveKey("support_email"), "null removes a key")
	g.Expect(got).To(HaveKeyWithValue("change_password", map[string]any{"enabled": false}), "a top-level object is replaced whole")
	flags := got["flags"].(map[string]any)
	g.Expect(flags).To(HaveKeyWithValue("enable_sso", false))
	g.Expect(flags).To(HaveKeyWithValue("enable_client_connections", true), "flags the PATCH left out stay")
	g.Expect(flags).NotTo(HaveKey("enable_legacy_profile"), "a null flag is removed")
	g.Expect(got).To(Equal(e.Settings(a.domain)), "the answer is what is stored")
}

func TestANewTenantIsEnrolledInTheMigrationsAndALegacyOneIsNot(t *testing.T) {
	g := NewWithT(t)
	e := emulatortest.Start(t)
	fresh := newTenant(t, e, "new.emulator.local")
	old := newTenant(t, e, "old.emulator.local", emulatortest.Legacy())
	freshFlags := fresh.do("GET", "/api/v2/tenants/settings", nil).JSON()["flags"].(map[string]any)
	g.Expect(freshFlags).NotTo(HaveKey("change_pwd_flow_v1"), "a GET may leave a flag out")
	g.Expect(freshFlags).NotTo(HaveKey("enable_legacy_profile"))
	oldFlags := old.do("GET", "/api/v2/tenants/settings", nil).JSON()["flags"].(map[string]any)
	g.Expect(oldFlags).To(HaveKeyWithValue("change_pwd_flow_v1", true))
	g.Expect(oldFlags).To(HaveKeyWithValue("enable_legacy_profile", true))
}

func TestSettingsPatchRefusesReadOnlyAndConfiguredFlags(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "refuse.emulator.local")
	e.RefuseFlags(a.domain, "disable_impersonation", "enable_apis_section")
	for _, flag := range []string{"disable_impersonation", "enable_apis_section"} {
		t.Run(flag, func(t *testing.T) {
			g := NewWithT(t)
			before := e.Settings(a.domain)
			r := a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"friendly_name": "changed", "flags": map[string]any{"enable_sso": false, flag: false}})
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", "You are not allowed to set flag '"+flag+"'"))
			g.Expect(e.Settings(a.domain)).To(Equal(before), "nothing of a refused PATCH is applied")
		})
	}
	t.Run("other flags still change", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(a.do("PATCH", "/api/v2/tenants/settings", map[string]any{"flags": map[string]any{"enable_sso": false}}).Status).To(Equal(200))
		g.Expect(e.Flags(a.domain)).To(HaveKeyWithValue("enable_sso", false))
	})
}

func TestSettingsPatchValidatesThePayload(t *testing.T) {
	e := emulatortest.Start(t)
	a := newTenant(t, e, "validate.emulator.local")
	cases := map[string]struct {
		body    map[string]any
		message string
	}{
		"unknown key":         {map[string]any{"colour": "red"}, "Payload validation error: 'Additional properties not allowed: colour'"},
		"string for number":   {map[string]any{"session_lifetime": "168"}, "Payload validation error: 'Expected type number but found type string' on property session_lifetime"},
		"non-boolean flag":    {map[string]any{"flags": map[string]any{"enable_sso": "yes"}}, "Payload validation error: 'Expected type boolean but found type string' on property flags.enable_sso"},
		"object for a string": {map[string]any{"friendly_name": map[string]any{}}, "Payload validation error: 'Expected type string but found type object' on property friendly_name"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := a.do("PATCH", "/api/v2/tenants/settings", c.body)
			g.Expect(r.Status).To(Equal(400))
			g.Expect(r.JSON()).To(HaveKeyWithValue("errorCode", "invalid_body"))
			g.Expect(r.JSON()).To(HaveKeyWithValue("message", c.message))
		})
	}
	t.Run("a body that is not JSON", func(t *testing.T) {
		g := NewWithT(t)
		r := a.do("PATCH", "/api/v2/tenants/settings", "just a string")
		g.Expect(r.Status).To(Equal(400))
		g.Expect(r.Header.Get("Content-Type")).To(Equal("application/json; charset=utf-8"))
	})
}
