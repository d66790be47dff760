package helm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// A namespace-scoped release of its own (release name, namespace and
// ServiceAccount apart from the cluster-wide release the other tests
// apply), watching two namespaces.
const (
	scopedRelease   = "scoped"
	scopedNamespace = "identity-scoped"
	scopedAccount   = "scoped-identity-operator"
)

var scopedNamespaces = []string{"team-a", "team-b"}

var namespaceScoped = []string{"--set", "watchNamespaces={team-a,team-b}"}

func renderScoped(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, err := runHelm(append([]string{"template", scopedRelease, chart, "--namespace", scopedNamespace, "--kube-version", "1.36.0"}, namespaceScoped...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	return decode(t, out)
}

// The namespace-scoped mode grants per namespace what the default grants
// cluster-wide, and cluster-wide only the reading of PlatformMigrations and
// Namespaces: no Secret, ConfigMap or identity object outside the list.
func TestNamespaceScopedRBACIsPerNamespace(t *testing.T) {
	g := NewWithT(t)
	roles := map[string][]rbacv1.PolicyRule{} // kind/namespace -> rules
	bindings := map[string]string{}           // kind/namespace -> role
	for _, o := range renderScoped(t) {
		switch o.GetKind() {
		case "ClusterRole", "Role":
			var role rbacv1.ClusterRole
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role)).To(Succeed())
			roles[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = role.Rules
		case "ClusterRoleBinding", "RoleBinding":
			var b rbacv1.RoleBinding
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b)).To(Succeed())
			g.Expect(b.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: scopedAccount, Namespace: scopedNamespace}))
			bindings[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = b.RoleRef.Kind + "/" + b.RoleRef.Name
		}
	}
	g.Expect(roles).To(HaveLen(4), "a ClusterRole, a Role per watched namespace, the leader-election Role")
	g.Expect(roles["ClusterRole//"+scopedAccount]).To(ConsistOf(
		rbacv1.PolicyRule{APIGroups: []string{"identity.tenantops.io"}, Resources: []string{"platformmigrations"}, Verbs: []string{"get", "list", "watch"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}}))
	for _, ns := range scopedNamespaces {
		rules := roles["Role/"+ns+"/"+scopedAccount]
		g.Expect(rules).NotTo(BeEmpty(), "no Role in %s", ns)
		var resources []string
		for _, r := range rules {
			resources = append(resources, r.Resources...)
			for _, res := range r.Resources {
				if res == "secrets" || res == "configmaps" {
					g.Expect(r.Verbs).To(ConsistOf("get", "list", "watch"))
				}
			}
		}
		g.Expect(resources).To(ContainElements("secrets", "configmaps", "events", "tenants", "tenants/status", "tenants/finalizers",
			"emailproviders", "customdatabaseconnections/status"))
		g.Expect(resources).NotTo(ContainElements("platformmigrations", "platformmigrations/status", "namespaces"))
		g.Expect(bindings["RoleBinding/"+ns+"/"+scopedAccount]).To(Equal("Role/" + scopedAccount))
	}
	g.Expect(roles).To(HaveKey("Role/" + scopedNamespace + "/" + scopedAccount + "-leader-election"))
	g.Expect(bindings).To(HaveKeyWithValue("ClusterRoleBinding//"+scopedAccount, "ClusterRole/"+scopedAccount))

	deployments, _ := instances(t, renderScoped(t))
	g.Expect(deployments).To(HaveLen(1))
	g.Expect(deployments[0].migrationStatus).To(BeFalse(), "a namespace-scoped release must not write PlatformMigration status")
}

// TestNamespaceScopedInstallReadsOnlyItsNamespaces server-side applies the
// namespace-scoped mode, then acts as its ServiceAccount: a Secret in a
// watched namespace can be read, one elsewhere is refused; and the operator,
// run with those permissions and --watch-namespaces, reconciles a Tenant in
// a watched namespace against the emulator and leaves one elsewhere alone.
func TestNamespaceScopedInstallReadsOnlyItsNamespaces(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c := env.Client
	for _, ns := range append([]string{scopedNamespace, "elsewhere"}, scopedNamespaces...) {
		ensureNamespace(t, c, ns)
	}
	var rbac []*unstructured.Unstructured
	for _, o := range renderScoped(t) {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, o)
		}
	}
	g.Expect(applyAll(ctx, c, rbac)).To(Succeed())

	emu := emulatortest.Start(t)
	secrets := map[string]emulatortest.Credentials{}
	for _, ns := range []string{"team-a", "elsewhere"} {
		domain := "acme." + ns + ".identity.test"
		creds := emu.CreateTenant(domain)
		secrets[ns] = creds
		g.Expect(applyAll(ctx, c, decode(t, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: acme-credentials, namespace: %[1]s}
stringData: {client_id: %[2]q, client_secret: %[3]q}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: emulator-ca, namespace: %[1]s}
data:
  ca.crt: %[4]q
`, ns, creds.ClientID, creds.ClientSecret, string(emu.CACertPEM()))))).To(Succeed())
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + scopedNamespace + ":" + scopedAccount}
	as, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())

	// As the ServiceAccount: its namespaces' Secrets, and nobody else's.
	secret := &corev1.Secret{}
	g.Expect(as.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "acme-credentials"}, secret)).To(Succeed())
	g.Expect(secret.Data).To(HaveKey("client_secret"))
	err = as.Get(ctx, client.ObjectKey{Namespace: "elsewhere", Name: "acme-credentials"}, &corev1.Secret{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "reading a Secret outside the watched namespaces: %v", err)
	err = as.List(ctx, &corev1.SecretList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing Secrets cluster-wide: %v", err)
	g.Expect(as.List(ctx, &identityv1alpha1.PlatformMigrationList{})).To(Succeed(), "PlatformMigrations are read cluster-wide")
	err = as.Create(ctx, &identityv1alpha1.PlatformMigration{ObjectMeta: metav1.ObjectMeta{Name: "scoped-may-not"},
		Spec: identityv1alpha1.PlatformMigrationSpec{Severity: identityv1alpha1.SeverityLow, GracePeriodStart: metav1.Now()}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "writing a PlatformMigration: %v", err)

	// The operator with those permissions, as the chart runs it.
	operator, err := env.StartOperator(cfg, controllers.ManagerOptions{
		Options: controllers.Options{Pool: identity.NewPool(identity.Options{}), WatchNamespaces: scopedNamespaces,
			SkipPlatformMigrations: true, ResyncInterval: time.Minute},
		LeaderElection:          true,
		LeaderElectionNamespace: scopedNamespace,
	})
	g.Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{"team-a", "elsewhere"} {
		g.Expect(applyAll(ctx, c, decode(t, fmt.Sprintf(`
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: acme, namespace: %[1]s}
spec:
  domain: acme.%[1]s.identity.test
  dialAddress: %[2]s
  caBundleRef: {name: emulator-ca, key: ca.crt}
  credentialsSecretRef: {name: acme-credentials}
  settings: {friendlyName: "Acme (%[1]s)"}
`, ns, emu.Addr())))).To(Succeed())
	}
	t.Cleanup(func() {
		for _, ns := range []string{"team-a", "elsewhere"} {
			tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
			_ = c.Delete(ctx, tenant)
		}
	})

	watched := &identityv1alpha1.Tenant{}
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "acme"}, watched)).To(Succeed())
		ready := meta.FindStatusCondition(watched.Status.Conditions, identityv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal("Synced"), ready.Message)
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(emu.Settings("acme.team-a.identity.test")).To(HaveKeyWithValue("friendly_name", "Acme (team-a)"))
	var events corev1.EventList
	g.Expect(c.List(ctx, &events, client.InNamespace("team-a"))).To(Succeed())
	g.Expect(events.Items).NotTo(BeEmpty(), "the operator could not record events in its namespace")

	// The Tenant elsewhere is not this release's: untouched, and its
	// tenant never called.
	g.Consistently(func(g Gomega) {
		other := &identityv1alpha1.Tenant{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "elsewhere", Name: "acme"}, other)).To(Succeed())
		g.Expect(other.Finalizers).To(BeEmpty())
		g.Expect(other.Status.Conditions).To(BeEmpty())
	}, 3*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(emu.Requests("acme.elsewhere.identity.test").Total()).To(BeZero())

	// Deleting the watched Tenant releases it under the same permissions.
	g.Expect(c.Delete(ctx, watched)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(watched), &identityv1alpha1.Tenant{}))
	}, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
	g.Expect(operator.Stop()).To(Succeed(), "the operator failed under the namespace-scoped permissions")
}
