package controllers

import (
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantops/identity-operator/internal/identity"
)

// The pure parts of the CustomDatabaseConnection reconciler: when users are
// counted, what counts as drift, and what an update sends.

func TestCustomDatabaseConnectionUsersAreCountedOneIntervalAfterTheLastCount(t *testing.T) {
	last := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	at := last.Add(10 * time.Minute)
	cases := []struct {
		name     string
		last     *metav1.Time
		now      time.Time
		due      bool
		waitLeft time.Duration
	}{
		{"never counted", nil, at, true, 0},
		{"1ns before the interval ends", &last, at.Add(-time.Nanosecond), false, time.Nanosecond},
		{"exactly when it ends", &last, at, true, 0},
		{"1ns after", &last, at.Add(time.Nanosecond), true, 0},
		{"just after counting", &last, last.Time, false, 10 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			due, wait := userCountDue(c.last, 10*time.Minute, c.now)
			g.Expect(due).To(Equal(c.due))
			g.Expect(wait).To(Equal(c.waitLeft))
		})
	}
}

func TestCustomDatabaseConnectionProgressReadsMigratedOverExpected(t *testing.T) {
	g := NewWithT(t)
	expected := int64(5000)
	g.Expect(migrationProgress(1234, &expected)).To(Equal("1234/5000"))
	g.Expect(migrationProgress(1234, nil)).To(Equal("1234"))
}

// connectionWith is a connection as the platform returns it, from JSON.
func connectionWith(t *testing.T, doc string) *identity.Connection {
	t.Helper()
	c := &identity.Connection{}
	if err := json.Unmarshal([]byte(doc), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCustomDatabaseConnectionDriftIsOnlyWhatTheSpecManages(t *testing.T) {
	desired := &desiredConnection{DisplayName: ptrString("Acme"), EnabledClients: []string{"a", "b"}, Options: map[string]any{
		"enabledDatabaseCustomization": true,
		optionCustomScripts:            map[string]string{"login": "function login(){}"},
		optionConfiguration:            map[string]string{"URL": "https://legacy", "PASSWORD": "plain"},
		"import_mode":                  true,
		"disable_signup":               false,
		"strategy_version":             2,
		"validation":                   nil,
		"password_dictionary":          map[string]any{"enable": true},
	}}
	const inLine = `"enabledDatabaseCustomization":true,"customScripts":{"login":"function login(){}"},` +
		`"configuration":{"URL":"c2VhbGVk","PASSWORD":"b3BhcXVl"},"import_mode":true,"strategy_version":2`
	cases := []struct {
		name    string
		doc     string
		drifted []string
	}{
		{"in line, with ciphertext, unmanaged keys and a false left out",
			`{"display_name":"Acme","enabled_clients":["b","a"],"options":{` + inLine + `,"password_dictionary":{"enable":true,"dictionary":[]},"mfa":{"active":true},"passwordPolicy":"good"}}`,
			nil},
		{"import mode turned off", `{"display_name":"Acme","enabled_clients":["a","b"],"options":{` +
			`"enabledDatabaseCustomization":true,"customScripts":{"login":"function login(){}"},"configuration":{"URL":"x","PASSWORD":"y"},` +
			`"import_mode":false,"strategy_version":2,"password_dictionary":{"enable":true}}}`,
			[]string{"options.import_mode"}},
		{"configuration wiped, a script added, validation set, a client removed, renamed", `{"display_name":"Old","enabled_clients":["a"],"options":{` +
			`"enabledDatabaseCustomization":true,"customScripts":{"login":"function login(){}","create":"function create(){}"},` +
			`"import_mode":true,"strategy_version":2,"validation":{"username":{"min":1,"max":15}},"password_dictionary":{"enable":true},"disable_signup":true}}`,
			[]string{"display_name", "enabled_clients", "options.configuration", "options.customScripts", "options.disable_signup", "options.validation"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(desired.drift(connectionWith(t, c.doc))).To(Equal(c.drifted))
		})
	}
}

func TestCustomDatabaseConnectionUpdateKeepsUnmanagedOptionsAndSendsThePlainConfiguration(t *testing.T) {
	g := NewWithT(t)
	desired := &desiredConnection{Options: map[string]any{
		optionConfiguration: map[string]string{"PASSWORD": "plain"},
		"import_mode":       true,
		"validation":        nil,
	}}
	current := connectionWith(t, `{"options":{"configuration":{"PASSWORD":"Y2lwaGVy","OLD":"b2xk"},"import_mode":false,`+
		`"validation":{"username":{"min":1,"max":15}},"mfa":{"active":true},"passwordPolicy":"excellent"}}`)

	sent, err := json.Marshal(desired.options(current))
	g.Expect(err).NotTo(HaveOccurred())
	var got map[string]any
	g.Expect(json.Unmarshal(sent, &got)).To(Succeed())
	g.Expect(got).To(Equal(map[string]any{
		"configuration": map[string]any{"PASSWORD": "plain"}, "import_mode": true,
		"mfa": map[string]any{"active": true}, "passwordPolicy": "excellent",
	}))
}

func ptrString(s string) *string { return &s }
