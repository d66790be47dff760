package crd_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/testenv"
)

func ready(reason string) metav1.Condition {
	return metav1.Condition{Type: identityv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason,
		Message: "for the printer column test", LastTransitionTime: metav1.Now()}
}

func TestPrinterColumnsAnswerTheQuestionOfEachKind(t *testing.T) {
	g := NewWithT(t)
	c := env.Client
	ns := newNamespace(t, c)

	tenant := &identityv1alpha1.Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: ns},
		Spec: identityv1alpha1.TenantSpec{
			Domain:               "acme.identity.test",
			CredentialsSecretRef: identityv1alpha1.LocalObjectReference{Name: "acme-credentials"},
			ManagementPolicy:     identityv1alpha1.ManagementPolicyPlan,
		},
	}
	g.Expect(c.Create(ctx(t), tenant)).To(Succeed())
	tenant.Status.Conditions = []metav1.Condition{ready("CredentialsNotFound")}
	tenant.Status.MigrationsPending = 2
	tenant.Status.Shard = "shard1"
	tenant.Status.Plan = &identityv1alpha1.ManagementPlan{Policy: identityv1alpha1.ManagementPolicyPlan, Action: identityv1alpha1.PlanUpdate, Pending: 3}
	g.Expect(c.Status().Update(ctx(t), tenant)).To(Succeed())

	grace := metav1.Date(2016, 4, 4, 0, 0, 0, 0, time.UTC)
	mandatory := metav1.Date(2016, 5, 11, 0, 0, 0, 0, time.UTC)
	migration := &identityv1alpha1.PlatformMigration{
		ObjectMeta: metav1.ObjectMeta{Name: "printer-columns-email-templates"},
		Spec: identityv1alpha1.PlatformMigrationSpec{
			Severity:         identityv1alpha1.SeverityMedium,
			GracePeriodStart: grace,
			MandatoryOptIn:   &mandatory,
			ReadinessChecks:  []identityv1alpha1.ReadinessCheck{{Type: identityv1alpha1.ReadinessEmailProviderConfigured}},
		},
	}
	g.Expect(c.Create(ctx(t), migration)).To(Succeed())
	t.Cleanup(func() { _ = c.Delete(ctx(t), migration) })
	migration.Status.Phase = identityv1alpha1.PhaseEnforced
	migration.Status.Progress = "7/10"
	migration.Status.Tenants = &identityv1alpha1.MigrationTenantCounts{Selected: 10, Enabled: 7, Pending: 1, NotReady: 1, Affected: 1, NotManaged: 1}
	migration.Status.AtDate = &identityv1alpha1.MigrationAtDate{Passed: true, Changes: 6, PlannedOnly: 2, NotManaged: 1}
	g.Expect(c.Status().Update(ctx(t), migration)).To(Succeed())

	connection := &identityv1alpha1.CustomDatabaseConnection{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy-users", Namespace: ns},
		Spec: identityv1alpha1.CustomDatabaseConnectionSpec{
			TenantRef:      identityv1alpha1.TenantReference{Name: "acme"},
			ConnectionName: "legacy-users",
			ImportMode:     true,
			Scripts: identityv1alpha1.DatabaseScripts{
				Login:   identityv1alpha1.Script{Inline: "function login(email, password, callback) { callback(null, null); }"},
				GetUser: identityv1alpha1.Script{Inline: "function getByEmail(email, callback) { callback(null, null); }"},
			},
		},
	}
	g.Expect(c.Create(ctx(t), connection)).To(Succeed())
	migrated := int64(1234)
	connection.Status.Phase = identityv1alpha1.ConnectionMigrating
	connection.Status.UsersMigrated = &migrated
	connection.Status.Progress = "1234/5000"
	g.Expect(c.Status().Update(ctx(t), connection)).To(Succeed())

	provider := &identityv1alpha1.EmailProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-mail", Namespace: ns},
		Spec: identityv1alpha1.EmailProviderSpec{
			TenantRef:            identityv1alpha1.TenantReference{Name: "acme"},
			Provider:             identityv1alpha1.ProviderSendGrid,
			DefaultFromAddress:   "no-reply@acme.example",
			CredentialsSecretRef: &identityv1alpha1.LocalObjectReference{Name: "acme-sendgrid"},
		},
	}
	g.Expect(c.Create(ctx(t), provider)).To(Succeed())

	action := &identityv1alpha1.Action{
		ObjectMeta: metav1.ObjectMeta{Name: "password-change", Namespace: ns},
		Spec: identityv1alpha1.ActionSpec{
			TenantRef: identityv1alpha1.TenantReference{Name: "acme"},
			Trigger:   identityv1alpha1.TriggerPostLogin,
			Code:      identityv1alpha1.ActionCode{Inline: "exports.onExecutePostLogin = async (event, api) => {};"},
		},
	}
	g.Expect(c.Create(ctx(t), action)).To(Succeed())
	action.Status.DeployedVersion, action.Status.BuildStatus, action.Status.Bound = 3, "built", "2/3"
	action.Status.Conditions = []metav1.Condition{ready("BuildFailed")}
	g.Expect(c.Status().Update(ctx(t), action)).To(Succeed())

	tests := []struct {
		resource, namespace string
		columns             []string
		want                map[string]string
	}{{
		resource: "tenants", namespace: ns,
		columns: []string{"Name", "Domain", "Ready", "Policy", "Migrations Pending", "Reason", "Planned", "Last Sync", "Shard", "Age"},
		want: map[string]string{"Name": "acme", "Domain": "acme.identity.test", "Ready": "False", "Policy": "Plan", "Migrations Pending": "2",
			"Reason": "CredentialsNotFound", "Planned": "3", "Shard": "shard1"},
	}, {
		resource: "platformmigrations",
		columns: []string{"Name", "Severity", "Phase", "Grace Start", "Mandatory", "Enabled", "At Date", "Pending", "Not Ready", "Affected",
			"Planned Only", "Not Managed", "Age"},
		want: map[string]string{"Name": "printer-columns-email-templates", "Severity": "Medium", "Phase": "Enforced",
			"Grace Start": "2016-04-04T00:00:00Z", "Mandatory": "2016-05-11T00:00:00Z", "Enabled": "7/10", "At Date": "6", "Pending": "1",
			"Not Ready": "1", "Affected": "1", "Planned Only": "2", "Not Managed": "1"},
	}, {
		resource: "customdatabaseconnections", namespace: ns,
		columns: []string{"Name", "Tenant", "Connection", "Phase", "Migrated", "Ready", "Reason", "Policy", "Planned", "Shard", "Age"},
		want:    map[string]string{"Name": "legacy-users", "Tenant": "acme", "Connection": "legacy-users", "Phase": "Migrating", "Migrated": "1234/5000", "Policy": "Apply"},
	}, {
		resource: "emailproviders", namespace: ns,
		columns: []string{"Name", "Tenant", "Provider", "From", "Enabled", "Ready", "Reason", "Policy", "Planned", "Shard", "Age"},
		want:    map[string]string{"Name": "acme-mail", "Tenant": "acme", "Provider": "sendgrid", "From": "no-reply@acme.example", "Enabled": "true", "Policy": "Apply"},
	}, {
		resource: "actions", namespace: ns,
		columns: []string{"Name", "Tenant", "Trigger", "Version", "Build", "Bound", "Ready", "Reason", "Policy", "Planned", "Action ID", "Shard", "Age"},
		want: map[string]string{"Name": "password-change", "Tenant": "acme", "Trigger": "post-login", "Version": "3", "Build": "built",
			"Bound": "2/3", "Ready": "False", "Reason": "BuildFailed"},
	}}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			g := NewWithT(t)
			columns, rows, err := env.Table(ctx(t), tt.resource, tt.namespace)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(columns).To(Equal(tt.columns))
			row := testenv.Row(rows, tt.want["Name"])
			g.Expect(row).NotTo(BeNil(), "no row for %s", tt.want["Name"])
			for col, value := range tt.want {
				g.Expect(row).To(HaveKeyWithValue(col, value), "column %q", col)
			}
		})
	}
}

func TestEveryKindIsInTheIdentityCategoryWithAShortName(t *testing.T) {
	g := NewWithT(t)
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	list, err := dc.ServerResourcesForGroupVersion(identityv1alpha1.GroupVersion.String())
	g.Expect(err).NotTo(HaveOccurred())

	want := map[string]struct {
		shortName  string
		namespaced bool
	}{
		"tenants":                   {"tnt", true},
		"platformmigrations":        {"pmig", false},
		"customdatabaseconnections": {"dbconn", true},
		"emailproviders":            {"emailprov", true},
		"actions":                   {"act", true},
	}
	seen := map[string]bool{}
	for _, r := range list.APIResources {
		w, ok := want[r.Name]
		if !ok {
			continue // subresources such as tenants/status
		}
		seen[r.Name] = true
		g.Expect(r.Categories).To(ContainElement("identity"), r.Name)
		g.Expect(r.ShortNames).To(ContainElement(w.shortName), r.Name)
		g.Expect(r.Namespaced).To(Equal(w.namespaced), r.Name)
	}
	g.Expect(seen).To(HaveLen(len(want)))
}
