package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// setPolicy switches an object's spec.managementPolicy, as a user editing
// it in Git would.
func (f *fixture) setPolicy(obj client.Object, policy identityv1alpha1.ManagementPolicy) {
	f.t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"managementPolicy":%q}}`, policy))
	f.g.Expect(k8s.Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", patch))).To(Succeed())
}

// planned waits until obj (Tenant, EmailProvider or CustomDatabaseConnection)
// is Ready with the policy's reason for its current generation, and returns
// its plan.
func (f *fixture) planned(obj client.Object, readyReason string) *identityv1alpha1.ManagementPlan {
	f.t.Helper()
	var plan *identityv1alpha1.ManagementPlan
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: obj.GetName()}, obj)).To(Succeed())
		c := meta.FindStatusCondition(conditionsOf(obj), identityv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(readyReason), c.Message)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(obj.GetGeneration()))
		plan = planOf(obj)
		g.Expect(plan).NotTo(BeNil())
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	return plan
}

func planOf(obj client.Object) *identityv1alpha1.ManagementPlan {
	switch o := obj.(type) {
	case *identityv1alpha1.Tenant:
		return o.Status.Plan
	case *identityv1alpha1.EmailProvider:
		return o.Status.Plan
	case *identityv1alpha1.CustomDatabaseConnection:
		return o.Status.Plan
	case *identityv1alpha1.Action:
		return o.Status.Plan
	}
	return nil
}

// leaves flattens a JSON object into its fields, by the same paths a plan
// names them: the objects under expand are walked into, the rest kept whole.
func leaves(prefix string, obj map[string]any, expand ...string) map[string]any {
	out := map[string]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, isMap := v.(map[string]any)
		walkInto := path == ""
		for _, e := range expand {
			walkInto = walkInto || e == path
		}
		if !isMap || !walkInto {
			out[prefix+path] = v
			return
		}
		for k, sub := range m {
			if path == "" {
				walk(k, sub)
			} else {
				walk(path+"."+k, sub)
			}
		}
	}
	walk("", obj)
	return out
}

func decode(g Gomega, data []byte) map[string]any {
	var m map[string]any
	g.Expect(json.Unmarshal(data, &m)).To(Succeed())
	return m
}

// sentAsPlanned checks, key by key, that a write's body is what the plan
// listed under prefix: every planned field is sent with the planned value
// (a secret: sent, its value never compared in a way that prints it), and
// every other field of the body carries the value the remote object held
// before (before, flattened alike) - sent again, changing nothing.
// absentIsZero: the remote reads false, null or {} as absent.
func sentAsPlanned(g Gomega, w emulatortest.Write, plan *identityv1alpha1.ManagementPlan, prefix string, before map[string]any, absentIsZero bool, expand ...string) {
	body := leaves(prefix, decode(g, w.Body), expand...)
	planned := map[string]identityv1alpha1.PlannedChange{}
	for _, c := range plan.Changes {
		if c.Due == nil && strings.HasPrefix(c.Field, prefix) {
			planned[c.Field] = c
		}
	}
	g.Expect(planned).NotTo(BeEmpty(), "the plan lists nothing under %s", prefix)
	for field, c := range planned {
		sent, ok := body[field]
		if c.To == "null" && c.Secret == "" && !ok {
			g.Expect(before).To(HaveKey(field), "%s is planned for removal but was never there", field)
			continue
		}
		g.Expect(ok).To(BeTrue(), "%s is in the plan but not in the %s %s", field, w.Method, w.Pattern)
		if c.Secret != "" {
			g.Expect(c.From + c.To).To(BeEmpty())
			continue
		}
		var want any
		g.Expect(json.Unmarshal([]byte(c.To), &want)).To(Succeed())
		g.Expect(sent).To(Equal(want), "%s: sent %v, planned %s", field, sent, c.To)
	}
	for field, sent := range body {
		if _, ok := planned[field]; ok {
			continue
		}
		held, ok := before[field]
		if !ok && absentIsZero {
			g.Expect(sent).To(Or(BeNil(), Equal(false), BeEmpty()), "%s is sent but not in the plan", field)
			continue
		}
		g.Expect(ok).To(BeTrue(), "%s is sent but not in the plan", field)
		g.Expect(sent).To(Equal(held), "%s is sent with a value the plan does not list", field)
	}
}

// writesTo lists the writes of one route.
func writesTo(writes []emulatortest.Write, method, pattern string) []emulatortest.Write {
	var out []emulatortest.Write
	for _, w := range writes {
		if w.Method == method && w.Pattern == pattern {
			out = append(out, w)
		}
	}
	return out
}

// noWritesOver waits n resyncs and checks that the tenant received no
// Management API write meanwhile, and at most reads reads.
func (f *fixture) noWritesOver(domain string, n int, maxReads int) {
	f.t.Helper()
	time.Sleep(resync / 2)
	f.emu.ResetRequests(domain)
	time.Sleep(time.Duration(n) * resync)
	reqs := f.emu.Requests(domain)
	f.g.Expect(reqs.ManagementWrites()).To(BeZero(), "wrote under Plan or Observe: %v", reqs.Lines())
	f.g.Expect(f.emu.Writes(domain)).To(BeEmpty())
	f.g.Expect(reqs.ManagementReads()).To(BeNumerically("<=", maxReads), "reads: %v", reqs.Lines())
	f.g.Expect(reqs.ManagementReads()).To(BeNumerically(">=", n-1), "the resync did not read: %v", reqs.Lines())
}

func TestTenantPlanWritesNothingAndApplyThenSendsExactlyThePlan(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("review", indent(`
managementPolicy: Plan
settings: {friendlyName: Review Corp, supportEmail: help@review.example, sessionCookieMode: non-persistent}
flags: {enable_sso: true, enable_apis_section: false}
resetEmail:
  urlLifetimeSeconds: 900
  resultURL: https://app.review.example/login
`), emulatortest.WithSettings(map[string]any{"friendly_name": "Review (old)", "flags": map[string]any{"enable_sso": false}}))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "review"}}
	plan := f.planned(tenant, identityv1alpha1.ReasonPlanned)

	f.g.Expect(plan.Policy).To(Equal(identityv1alpha1.ManagementPolicyPlan))
	f.g.Expect(plan.Action).To(Equal(identityv1alpha1.PlanUpdate))
	fields := map[string]identityv1alpha1.PlannedChange{}
	for _, c := range plan.Changes {
		fields[c.Field] = c
	}
	f.g.Expect(fields).To(HaveKeyWithValue("settings.friendly_name", HaveField("From", `"Review (old)"`)))
	f.g.Expect(fields["settings.friendly_name"].To).To(Equal(`"Review Corp"`))
	f.g.Expect(fields["settings.flags.enable_sso"]).To(And(HaveField("From", "false"), HaveField("To", "true")))
	f.g.Expect(fields).NotTo(HaveKey("settings.flags.enable_apis_section"), "the tenant holds it already: not a change")
	f.g.Expect(fields).To(HaveKey("settings.session_cookie"))
	// The template does not exist yet: Apply would create it.
	f.g.Expect(fields).To(HaveKeyWithValue("email_templates.reset_email.urlLifetimeInSeconds", HaveField("To", "900")))
	f.g.Expect(fields["email_templates.reset_email.urlLifetimeInSeconds"].From).To(BeEmpty())
	f.g.Expect(plan.Pending).To(Equal(int32(len(plan.Changes))))
	msg := f.condition(tenant, identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, identityv1alpha1.ReasonChangesPending)
	f.g.Expect(msg).To(HavePrefix(fmt.Sprintf("%d changes pending: ", plan.Pending)))
	f.g.Expect(tenant.Status.Settings.FriendlyName).To(Equal(ptrTo("Review (old)")), "status shows the remote state")
	f.g.Expect(tenant.Status.AppliedHash).To(BeEmpty(), "nothing was applied")
	f.g.Expect(f.row("tenants", "review")).To(And(HaveKeyWithValue("Policy", "Plan"), HaveKeyWithValue("Ready", "True"),
		HaveKeyWithValue("Reason", "Planned"), HaveKeyWithValue("Planned", fmt.Sprint(plan.Pending))))

	// Three resyncs: the settings and the template read, nothing written.
	f.noWritesOver(domain, 3, 2*4)
	f.g.Expect(f.emu.Settings(domain)["friendly_name"]).To(Equal("Review (old)"))
	_, exists := f.emu.EmailTemplate(domain, "reset_email")
	f.g.Expect(exists).To(BeFalse())

	// Switch to Apply: one PATCH of the settings and one POST of the
	// template, each exactly what the plan listed.
	before := leaves("settings.", f.emu.Settings(domain), "flags")
	f.emu.ResetRequests(domain)
	f.setPolicy(tenant, identityv1alpha1.ManagementPolicyApply)
	f.ready(tenant)
	writes := f.emu.Writes(domain)
	f.g.Expect(writes).To(HaveLen(2), "%d writes", len(writes))
	patches := writesTo(writes, "PATCH", "/api/v2/tenants/settings")
	f.g.Expect(patches).To(HaveLen(1))
	sentAsPlanned(f.g, patches[0], plan, "settings.", before, false, "flags")
	f.g.Expect(leaves("settings.", decode(f.g, patches[0].Body), "flags")).To(HaveLen(int(countPrefix(plan, "settings."))), "the PATCH sends only the planned keys")
	creates := writesTo(writes, "POST", "/api/v2/email-templates")
	f.g.Expect(creates).To(HaveLen(1))
	sentAsPlanned(f.g, creates[0], plan, "email_templates.reset_email.", map[string]any{}, false)
	f.g.Expect(tenant.Status.Plan).To(BeNil())
	f.g.Expect(meta.FindStatusCondition(tenant.Status.Conditions, identityv1alpha1.ConditionPlanned)).To(BeNil())
	f.g.Expect(f.emu.Settings(domain)["friendly_name"]).To(Equal("Review Corp"))
}

func countPrefix(plan *identityv1alpha1.ManagementPlan, prefix string) int32 {
	n := int32(0)
	for _, c := range plan.Changes {
		if strings.HasPrefix(c.Field, prefix) && c.Due == nil {
			n++
		}
	}
	return n
}

func TestTenantObserveReportsDriftWritesNothingAndItsDeletionLeavesTheTenant(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("adopted", indent(`
managementPolicy: Observe
deletionPolicy: Delete
settings: {friendlyName: Adopted Inc, supportURL: https://help.adopted.example}
flags: {enable_sso: true}
`), emulatortest.WithSettings(map[string]any{"friendly_name": "Adopted by hand", "support_url": "https://help.adopted.example"}))
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "adopted"}}
	plan := f.planned(tenant, identityv1alpha1.ReasonObserved)
	f.g.Expect(plan.Policy).To(Equal(identityv1alpha1.ManagementPolicyObserve))
	msg := f.condition(tenant, identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonDriftDetected)
	f.g.Expect(msg).To(And(ContainSubstring("settings.friendly_name"), ContainSubstring("does not correct it")))
	f.g.Expect(msg).NotTo(ContainSubstring("support_url"), "a value the tenant already holds is no drift")
	f.g.Expect(tenant.Status.Settings.FriendlyName).To(Equal(ptrTo("Adopted by hand")))
	f.g.Expect(f.row("tenants", "adopted")).To(HaveKeyWithValue("Policy", "Observe"))

	f.noWritesOver(domain, 3, 4)
	f.g.Expect(f.events("adopted")).NotTo(ContainElement(HavePrefix("Warning DriftCorrected")))

	// Deleted with deletionPolicy Delete: the settings stay.
	f.emu.ResetRequests(domain)
	f.g.Expect(k8s.Delete(context.Background(), tenant)).To(Succeed())
	f.gone(tenant)
	f.g.Expect(f.emu.Writes(domain)).To(BeEmpty())
	f.g.Expect(f.emu.Settings(domain)["friendly_name"]).To(Equal("Adopted by hand"))
	f.g.Expect(f.events("adopted")).To(ContainElement(And(HavePrefix("Normal RemoteObjectLeft"), ContainSubstring("managementPolicy is Observe"))))
}

func TestEmailProviderPlanThenApplyAndASecretChangedUnderPlanIsOnlyChanged(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("acme", "")
	f.apply(strings.Replace(smtpProvider("acme", smtp, "first-relay-password"), "  tenantRef:", "  managementPolicy: Plan\n  tenantRef:", 1))
	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}}
	plan := f.planned(provider, identityv1alpha1.ReasonPlanned)
	f.g.Expect(plan.Action).To(Equal(identityv1alpha1.PlanCreate))
	f.g.Expect(plan.Changes).To(ContainElements(
		identityv1alpha1.PlannedChange{Field: "credentials.smtp_pass", Secret: identityv1alpha1.SecretChanged},
		identityv1alpha1.PlannedChange{Field: "name", To: `"smtp"`},
		identityv1alpha1.PlannedChange{Field: "credentials.smtp_user", To: `"mailer"`}))
	f.g.Expect(f.row("emailproviders", "acme-mail")).To(HaveKeyWithValue("Policy", "Plan"))
	f.noWritesOver(domain, 3, 2*4)
	_, exists := f.emu.EmailProvider(domain)
	f.g.Expect(exists).To(BeFalse())

	// Apply: one POST, as planned.
	f.emu.ResetRequests(domain)
	f.setPolicy(provider, identityv1alpha1.ManagementPolicyApply)
	f.ready(provider)
	posts := writesTo(f.emu.Writes(domain), "POST", "/api/v2/emails/provider")
	f.g.Expect(posts).To(HaveLen(1))
	f.g.Expect(f.emu.Writes(domain)).To(HaveLen(1))
	sentAsPlanned(f.g, posts[0], plan, "", map[string]any{}, false, "credentials")

	// Back to Plan, and the password rotated: the plan says the secret
	// changed, and nothing else; the password is nowhere to be read.
	f.setPolicy(provider, identityv1alpha1.ManagementPolicyPlan)
	f.planned(provider, identityv1alpha1.ReasonPlanned)
	f.apply(`
apiVersion: v1
kind: Secret
metadata: {name: acme-smtp}
stringData: {smtp_pass: second-relay-password}
`)
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(provider), provider)).To(Succeed())
		g.Expect(provider.Status.Plan).NotTo(BeNil())
		g.Expect(provider.Status.Plan.Action).To(Equal(identityv1alpha1.PlanUpdate))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	plan = provider.Status.Plan
	f.g.Expect(plan.Changes).To(Equal([]identityv1alpha1.PlannedChange{{Field: "credentials.smtp_pass", Secret: identityv1alpha1.SecretChanged}}))
	f.g.Expect(plan.Pending).To(Equal(int32(1)))
	f.condition(provider, identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, identityv1alpha1.ReasonChangesPending)
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(identityv1alpha1.GroupVersion.WithKind("EmailProvider"))
	f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "acme-mail"}, stored)).To(Succeed())
	data, err := json.Marshal(stored.Object)
	f.g.Expect(err).NotTo(HaveOccurred())
	for _, password := range []string{"first-relay-password", "second-relay-password"} {
		f.g.Expect(strings.Contains(string(data), password)).To(BeFalse(), "a password is in the stored object")
		f.g.Expect(strings.Contains(strings.Join(f.events("acme-mail"), "\n"), password)).To(BeFalse(), "a password is in an event")
	}
	remote, _ := f.emu.EmailProvider(domain)
	f.g.Expect(remote["credentials"].(map[string]any)["smtp_pass"] == "first-relay-password").To(BeTrue(), "the new password was sent under Plan")

	// Apply sends it: one PATCH, whose other credentials are as they were.
	before := leaves("", remote, "credentials")
	f.emu.ResetRequests(domain)
	f.setPolicy(provider, identityv1alpha1.ManagementPolicyApply)
	f.ready(provider)
	f.g.Expect(f.emu.Writes(domain)).To(HaveLen(1))
	patches := writesTo(f.emu.Writes(domain), "PATCH", "/api/v2/emails/provider")
	f.g.Expect(patches).To(HaveLen(1))
	sentAsPlanned(f.g, patches[0], plan, "", before, false, "credentials")
	remote, _ = f.emu.EmailProvider(domain)
	f.g.Expect(remote["credentials"].(map[string]any)["smtp_pass"] == "second-relay-password").To(BeTrue(), "the rotated password was not sent")
}

func TestCustomDatabaseConnectionPlanThenApplyAndObserveNeverDeletes(t *testing.T) {
	f := newFixture(t)
	legacy := startLegacyStore(t, "service-pw-1", ann)
	domain, _ := f.tenant("acme", "")
	f.apply(legacyConnection(legacy, "service-pw-1", "  managementPolicy: Plan\n  deletionPolicy: Delete\n"))
	conn := legacyUsersObject()
	plan := f.planned(conn, identityv1alpha1.ReasonPlanned)
	f.g.Expect(plan.Action).To(Equal(identityv1alpha1.PlanCreate))
	f.g.Expect(plan.Changes).To(ContainElements(
		identityv1alpha1.PlannedChange{Field: "options.configuration", Secret: identityv1alpha1.SecretChanged},
		identityv1alpha1.PlannedChange{Field: "display_name", To: `"Acme accounts"`},
		identityv1alpha1.PlannedChange{Field: "options.import_mode", To: "true"}))
	f.g.Expect(plan.Changes).To(ContainElement(HaveField("Field", "options.customScripts.login")))
	f.g.Expect(f.row("customdatabaseconnections", "legacy-users")).To(HaveKeyWithValue("Policy", "Plan"))
	f.noWritesOver(domain, 3, 2*4)
	_, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeFalse())

	// Apply: one POST, as planned.
	f.emu.ResetRequests(domain)
	f.setPolicy(conn, identityv1alpha1.ManagementPolicyApply)
	f.ready(conn)
	f.g.Expect(f.emu.Writes(domain)).To(HaveLen(1))
	posts := writesTo(f.emu.Writes(domain), "POST", "/api/v2/connections")
	f.g.Expect(posts).To(HaveLen(1))
	sentAsPlanned(f.g, posts[0], plan, "", map[string]any{}, false, "options", "options.customScripts")

	// Observe, with a display name the connection does not have: drift,
	// reported and left; the deletion (deletionPolicy Delete) leaves the
	// connection.
	f.apply(legacyConnectionSpec("  managementPolicy: Observe\n  deletionPolicy: Delete\n") + "---" + legacyScripts(legacyGetUserScript))
	f.g.Expect(k8s.Patch(context.Background(), conn, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"displayName":"Acme (renamed)"}}`)))).To(Succeed())
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(conn), conn)).To(Succeed())
		g.Expect(conn.Status.Plan).NotTo(BeNil())
		g.Expect(conn.Status.Plan.Changes).To(ContainElement(identityv1alpha1.PlannedChange{Field: "display_name", From: `"Acme accounts"`, To: `"Acme (renamed)"`}))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	f.condition(conn, identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonDriftDetected)
	f.condition(conn, identityv1alpha1.ConditionReady, metav1.ConditionTrue, identityv1alpha1.ReasonObserved)
	f.noWritesOver(domain, 3, 2*4)

	f.emu.ResetRequests(domain)
	f.g.Expect(k8s.Delete(context.Background(), conn)).To(Succeed())
	f.gone(conn)
	f.g.Expect(f.emu.Writes(domain)).To(BeEmpty())
	remote, exists := f.emu.Connection(domain, "legacy-users")
	f.g.Expect(exists).To(BeTrue(), "Observe deleted the connection")
	f.g.Expect(remote["display_name"]).To(Equal("Acme accounts"))
	f.g.Expect(f.events("legacy-users")).To(ContainElement(And(HavePrefix("Normal RemoteObjectLeft"), ContainSubstring("managementPolicy is Observe"))))
}

// An EmailProvider under Observe whose tenant has no provider: nothing to
// observe, and nothing created.
func TestEmailProviderObserveOfAMissingProviderIsStalledAndCreatesNothing(t *testing.T) {
	f := newFixture(t)
	smtp := emulatortest.StartSMTP(t, "")
	domain, _ := f.tenant("acme", "")
	f.apply(strings.Replace(smtpProvider("acme", smtp, "relay-password"), "  tenantRef:", "  managementPolicy: Observe\n  tenantRef:", 1))
	provider := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail"}}
	msg := f.condition(provider, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonRemoteMissing)
	f.g.Expect(msg).To(ContainSubstring("Observe never creates it"))
	f.condition(provider, identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonRemoteMissing)
	f.g.Expect(f.emu.Writes(domain)).To(BeEmpty())
	_, exists := f.emu.EmailProvider(domain)
	f.g.Expect(exists).To(BeFalse())
}

func TestTenantsInPlanAndObserveGetNoPatchAtAMigrationsDate(t *testing.T) {
	f := newFixture(t)
	now := clock.Now()
	deadline := wholeSecond(now.Add(12 * time.Second)).Add(time.Second)
	name := "plandate-" + f.ns
	long := indent(createdAt(now.AddDate(-1, 0, 0)))
	applied, _ := f.tenant("applied", long, emulatortest.Legacy())
	planned, _ := f.tenant("planned", long+"  managementPolicy: Plan\n", emulatortest.Legacy())
	observed, _ := f.tenant("observed", long+"  managementPolicy: Observe\n", emulatortest.Legacy())
	// switched is under Apply when the date's PATCH is prepared for it, and
	// moves to Plan before the date: what was prepared must not be sent.
	switched, _ := f.tenant("switched", long, emulatortest.Legacy())
	m := f.migration(name, wholeSecond(now.Add(-time.Hour)), &deadline, "  change:\n    flags: {change_pwd_flow_v1: false}\n")
	f.migrationStatus(m, 10*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Tenants.Selected).To(BeNumerically("==", 4))
	})
	switchedTenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "switched", Namespace: f.ns}}
	// Its pass under Apply, within migration.PrepareAhead of the date,
	// prepared the date's PATCH.
	f.tenantMigration("switched", name, 10*time.Second, func(g Gomega, s identityv1alpha1.TenantMigrationStatus) {
		g.Expect(s.State).To(Equal(identityv1alpha1.MigrationPending))
	})
	f.setPolicy(switchedTenant, identityv1alpha1.ManagementPolicyPlan)
	f.planned(switchedTenant, identityv1alpha1.ReasonPlanned)

	// Before the date, the Plan tenant shows the flag due at the date.
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "planned", Namespace: f.ns}}
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(tenant), tenant)).To(Succeed())
		g.Expect(tenant.Status.Plan).NotTo(BeNil())
		g.Expect(tenant.Status.Plan.Changes).To(ContainElement(And(
			HaveField("Field", "settings.flags.change_pwd_flow_v1"), HaveField("From", "true"), HaveField("To", "false"),
			HaveField("Migration", name), HaveField("Due", HaveField("Time", BeTemporally("==", deadline))))))
		g.Expect(tenant.Status.Plan.Pending).To(BeZero(), "a change due at the date is not pending now")
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	msg := f.condition(tenant, identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, identityv1alpha1.ReasonNoChanges)
	f.g.Expect(msg).To(ContainSubstring("1 due later: settings.flags.change_pwd_flow_v1 at " + deadline.UTC().Format(time.RFC3339)))
	f.g.Expect(clock.Now().Before(deadline)).To(BeTrue(), "the setup took longer than the deadline allows")

	f.emu.ResetRequests(planned)
	f.emu.ResetRequests(observed)
	f.emu.ResetRequests(switched)
	// The date passes: the Apply tenant is changed by the transition; the
	// others get no write at all.
	f.g.Eventually(func() any { return f.flag(applied, "change_pwd_flow_v1") }, 20*time.Second, 50*time.Millisecond).Should(Equal(false))
	time.Sleep(2 * resync)
	for _, d := range []string{planned, observed, switched} {
		f.g.Expect(f.emu.Writes(d)).To(BeEmpty(), "%s was written at the date", d)
		f.g.Expect(f.flag(d, "change_pwd_flow_v1")).To(Equal(true))
	}

	// After it, the plan lists the flag as pending now, and the migration
	// is not enabled on either.
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(tenant), tenant)).To(Succeed())
		g.Expect(tenant.Status.Plan.Changes).To(ContainElement(identityv1alpha1.PlannedChange{
			Field: "settings.flags.change_pwd_flow_v1", From: "true", To: "false", Migration: name}))
		g.Expect(tenant.Status.Plan.Pending).To(Equal(int32(1)))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	for _, n := range []string{"planned", "observed"} {
		got := f.tenantMigration(n, name, 20*time.Second, func(g Gomega, s identityv1alpha1.TenantMigrationStatus) {
			g.Expect(s.State).To(Equal(identityv1alpha1.MigrationPending))
			g.Expect(s.Reason).To(Equal(identityv1alpha1.ReasonNotApplied))
		})
		f.g.Expect(got.Status.Flags).To(HaveKeyWithValue("change_pwd_flow_v1", true), "status shows the flag as the tenant holds it")
		f.g.Expect(got.Status.MigrationsPending).To(Equal(int32(1)))
	}
	f.condition(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "observed"}}, identityv1alpha1.ConditionDrifted,
		metav1.ConditionTrue, identityv1alpha1.ReasonDriftDetected)
	for _, d := range []string{planned, observed, switched} {
		f.g.Expect(f.emu.Writes(d)).To(BeEmpty(), "%s was written after the date", d)
	}
}
