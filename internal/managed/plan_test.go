package managed

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// change is a PlannedChange in one line, for tables.
func change(field, from, to string) identityv1alpha1.PlannedChange {
	return identityv1alpha1.PlannedChange{Field: field, From: from, To: to}
}

func secret(field string, s identityv1alpha1.SecretChange) identityv1alpha1.PlannedChange {
	return identityv1alpha1.PlannedChange{Field: field, Secret: s}
}

func TestRenderListsWhatTheBodyChanges(t *testing.T) {
	tests := []struct {
		name string
		body Body
		want []identityv1alpha1.PlannedChange
	}{{
		name: "settings PATCH: each sent key against the value read; flags one by one",
		body: Body{Prefix: "settings.", Expand: []string{"flags"},
			Value: func() identity.SettingsPatch {
				p := identity.SettingsPatch{FriendlyName: ptr.To("Acme"), SessionCookie: &identity.SessionCookie{Mode: "persistent"}}
				p.SetFlag("change_pwd_flow_v1", false)
				p.SetFlag("new_flag", false)
				return p
			}(),
			Current: &identity.TenantSettings{FriendlyName: "Old", Flags: map[string]bool{"change_pwd_flow_v1": true, "other": true}}},
		want: []identityv1alpha1.PlannedChange{
			change("settings.flags.change_pwd_flow_v1", "true", "false"),
			// Absent is the platform's default, not false: a change.
			change("settings.flags.new_flag", "", "false"),
			change("settings.friendly_name", `"Old"`, `"Acme"`),
			change("settings.session_cookie", "", `{"mode":"persistent"}`),
		},
	}, {
		name: "a key sent with the value held is not a change",
		body: Body{Value: identity.EmailProviderUpdate{Name: ptr.To("smtp"), DefaultFromAddress: ptr.To("a@b.example")},
			Current: &identity.EmailProvider{Name: "smtp", DefaultFromAddress: "old@b.example"}},
		want: []identityv1alpha1.PlannedChange{change("default_from_address", `"old@b.example"`, `"a@b.example"`)},
	}, {
		name: "create: every field, from nothing; secrets by word only",
		body: Body{Expand: []string{"credentials"},
			Secrets: map[string]identityv1alpha1.SecretChange{"credentials.smtp_pass": identityv1alpha1.SecretChanged},
			Value: identity.EmailProviderCreate{Name: "smtp", Enabled: ptr.To(true), DefaultFromAddress: "a@b.example",
				Credentials: identity.EmailCredentials{SMTPHost: "mail.example", SMTPPort: 587, SMTPUser: "u", SMTPPass: "hunter2"}}},
		want: []identityv1alpha1.PlannedChange{
			change("credentials.smtp_host", "", `"mail.example"`),
			secret("credentials.smtp_pass", identityv1alpha1.SecretChanged),
			change("credentials.smtp_port", "", "587"),
			change("credentials.smtp_user", "", `"u"`),
			change("default_from_address", "", `"a@b.example"`),
			change("enabled", "", "true"),
			change("name", "", `"smtp"`),
		},
	}, {
		name: "update carrying a secret unchanged: listed, with its word",
		body: Body{Expand: []string{"credentials"},
			Secrets: map[string]identityv1alpha1.SecretChange{"credentials.api_key": identityv1alpha1.SecretUnchanged},
			Value:   identity.EmailProviderUpdate{Enabled: ptr.To(false), Credentials: &identity.EmailCredentials{APIKey: "k"}},
			Current: &identity.EmailProvider{Name: "sendgrid", Enabled: true}},
		want: []identityv1alpha1.PlannedChange{
			secret("credentials.api_key", identityv1alpha1.SecretUnchanged),
			change("enabled", "true", "false"),
		},
	}, {
		name: "options sent whole: scripts one by one, false for an absent option no change, a dropped key removed",
		body: Body{Expand: []string{"options", "options.customScripts"}, Replaces: []string{"options"}, AbsentIsZero: true,
			Secrets: map[string]identityv1alpha1.SecretChange{"options.configuration": identityv1alpha1.SecretUnchanged},
			Value: identity.ConnectionUpdate{Options: &identity.ConnectionOptions{
				CustomScripts: map[string]string{"login": "new", "get_user": "same"},
				Configuration: map[string]string{"DB": "postgres://secret"},
				Extra:         map[string]json.RawMessage{"disable_signup": json.RawMessage("false")}}},
			Current: &identity.Connection{Options: identity.ConnectionOptions{
				CustomScripts: map[string]string{"login": "old", "get_user": "same"},
				Configuration: map[string]string{"DB": "ciphertext"},
				Extra:         map[string]json.RawMessage{"legacy_store": json.RawMessage(`"mysql"`)}}}},
		want: []identityv1alpha1.PlannedChange{
			secret("options.configuration", identityv1alpha1.SecretUnchanged),
			change("options.customScripts.login", `"old"`, `"new"`),
			change("options.legacy_store", `"mysql"`, "null"),
		},
	}, {
		name: "a long value is shown by its beginning and size",
		body: Body{Value: identity.EmailTemplateUpdate{Body: ptr.To(strings.Repeat("x", 2000))}, Current: &identity.EmailTemplate{}},
		want: []identityv1alpha1.PlannedChange{change("body", "", `"`+strings.Repeat("x", 255)+`... (2002 bytes)`)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := Render(tt.body)
			g.Expect(got).To(Equal(tt.want))
			data, _ := json.Marshal(got)
			g.Expect(string(data)).NotTo(ContainSubstring("hunter2"))
			g.Expect(string(data)).NotTo(ContainSubstring("postgres://secret"))
			g.Expect(string(data)).NotTo(ContainSubstring("ciphertext"))
		})
	}
}

func TestCountAndSummary(t *testing.T) {
	due := &metav1.Time{Time: time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name    string
		plan    identityv1alpha1.ManagementPlan
		pending int32
		summary string
	}{
		{"nothing", identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanNone}, 0, "nothing to change now"},
		{"one", identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanUpdate, Changes: []identityv1alpha1.PlannedChange{change("a", "1", "2")}}, 1, "1 change pending: a"},
		{"secrets and due", identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanUpdate, Changes: []identityv1alpha1.PlannedChange{
			change("a", "1", "2"), secret("s", identityv1alpha1.SecretChanged), secret("u", identityv1alpha1.SecretUnchanged),
			{Field: "settings.flags.f", To: "false", Due: due}}},
			2, "2 changes pending: a, s (secret changed); 1 due later: settings.flags.f at 2027-01-15T00:00:00Z"},
		{"observed drift", identityv1alpha1.ManagementPlan{Policy: identityv1alpha1.ManagementPolicyObserve, Action: identityv1alpha1.PlanUpdate,
			Changes: []identityv1alpha1.PlannedChange{change("a", "1", "2"), change("b", "1", "2")}}, 2, "2 fields differ: a, b"},
		{"create", identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanCreate, Changes: []identityv1alpha1.PlannedChange{change("name", "", `"x"`)}},
			1, `the remote object does not exist: Apply would create it with 1 fields: name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Count(tt.plan.Changes)).To(Equal(tt.pending))
			g.Expect(Summary(&tt.plan)).To(Equal(tt.summary))
		})
	}
}

// Plan and Observe make one Observe, never a write, and never adopt.
func TestManageWritesOnlyUnderApply(t *testing.T) {
	tests := []struct {
		policy    identityv1alpha1.ManagementPolicy
		obs       Observation
		action    identityv1alpha1.PlanAction
		wantWrite bool
	}{
		{identityv1alpha1.ManagementPolicyPlan, Observation{}, identityv1alpha1.PlanCreate, false},
		{identityv1alpha1.ManagementPolicyPlan, Observation{Exists: true}, identityv1alpha1.PlanUpdate, false},
		{identityv1alpha1.ManagementPolicyObserve, Observation{Exists: true, UpToDate: true}, identityv1alpha1.PlanNone, false},
		{identityv1alpha1.ManagementPolicyObserve, Observation{Exists: true}, identityv1alpha1.PlanUpdate, false},
		{identityv1alpha1.ManagementPolicyApply, Observation{Exists: true}, "", true},
		{"", Observation{}, "", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/"+string(tt.action), func(t *testing.T) {
			g := NewWithT(t)
			rec := record.NewFakeRecorder(10)
			s := &Step{Recorder: rec}
			ext := &fakeExternal{obs: tt.obs}
			ownership := identityv1alpha1.RemoteOwnership("")
			out, err := s.Manage(context.Background(), tenantObj(), tt.policy, &ownership, ext)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ext.created || ext.updated).To(Equal(tt.wantWrite))
			if !tt.wantWrite {
				g.Expect(ownership).To(BeEmpty(), "adopted without writing")
				g.Expect(rec.Events).To(BeEmpty())
				g.Expect(out.Plan.Action).To(Equal(tt.action))
				g.Expect(out.Plan.Policy).To(Equal(tt.policy))
				g.Expect(out.Plan.Pending).To(Equal(int32(len(out.Plan.Changes))))
			} else {
				g.Expect(out.Plan).To(BeNil())
			}
		})
	}
}

func tenantObj() *identityv1alpha1.Tenant {
	return &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: "ns", Generation: 3}}
}

func TestReportSetsReadyAndThePolicysCondition(t *testing.T) {
	update := &identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanUpdate, Pending: 1, Changes: []identityv1alpha1.PlannedChange{change("a", "1", "2")}}
	tests := []struct {
		name        string
		policy      identityv1alpha1.ManagementPolicy
		plan        identityv1alpha1.ManagementPlan
		condition   string
		status      metav1.ConditionStatus
		reason      string
		readyReason string
		stalled     bool
	}{
		{"plan, changes", identityv1alpha1.ManagementPolicyPlan, *update, identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, identityv1alpha1.ReasonChangesPending, identityv1alpha1.ReasonPlanned, false},
		{"plan, none", identityv1alpha1.ManagementPolicyPlan, identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanNone}, identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, identityv1alpha1.ReasonNoChanges, identityv1alpha1.ReasonPlanned, false},
		{"observe, drift", identityv1alpha1.ManagementPolicyObserve, *update, identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonDriftDetected, identityv1alpha1.ReasonObserved, false},
		{"observe, in sync", identityv1alpha1.ManagementPolicyObserve, identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanNone}, identityv1alpha1.ConditionDrifted, metav1.ConditionFalse, identityv1alpha1.ReasonInSync, identityv1alpha1.ReasonObserved, false},
		{"observe, missing", identityv1alpha1.ManagementPolicyObserve, identityv1alpha1.ManagementPlan{Action: identityv1alpha1.PlanCreate, Pending: 1}, identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonRemoteMissing, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := tenantObj()
			plan := tt.plan
			plan.Policy = tt.policy
			success, err := Report(obj, &obj.Status.Plan, &plan, "the tenant", time.Minute)
			c := meta.FindStatusCondition(obj.Status.Conditions, tt.condition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(tt.status))
			g.Expect(c.Reason).To(Equal(tt.reason))
			g.Expect(c.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(obj.Status.Plan).To(Equal(&plan))
			if tt.stalled {
				var stalling *reconcile.StallingError
				g.Expect(err).To(BeAssignableToTypeOf(stalling))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(success.Reason).To(Equal(tt.readyReason))
			g.Expect(success.RequeueAfter).To(Equal(time.Minute))

			Clear(obj, &obj.Status.Plan)
			g.Expect(obj.Status.Plan).To(BeNil())
			g.Expect(obj.Status.Conditions).To(BeEmpty())
		})
	}
}

// A deletion under Plan or Observe never runs del, whatever deletionPolicy
// says; with Delete it says why in an event.
func TestDeleteUnderPlanOrObserveLeavesTheRemoteObject(t *testing.T) {
	for _, policy := range []identityv1alpha1.ManagementPolicy{identityv1alpha1.ManagementPolicyPlan, identityv1alpha1.ManagementPolicyObserve} {
		t.Run(string(policy), func(t *testing.T) {
			g := NewWithT(t)
			rec := record.NewFakeRecorder(10)
			s := &Step{Recorder: rec}
			obj := tenantObj()
			obj.Spec.ManagementPolicy = policy
			called := false
			err := s.Delete(context.Background(), obj, identityv1alpha1.DeletionPolicyDelete, identityv1alpha1.OwnershipCreated, "the tenant's provider",
				func(context.Context) error { called = true; return nil })
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(called).To(BeFalse())
			g.Expect(<-rec.Events).To(ContainSubstring("managementPolicy is " + string(policy)))
		})
	}
}
