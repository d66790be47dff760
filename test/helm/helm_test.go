// Package helm_test proves the Helm chart: it lints, its values schema
// refuses bad values, its manifests are accepted by a real API server, and
// its RBAC is enough for the operator (which runs here under the chart's
// ServiceAccount) and no more than the operator declares.
package helm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/testenv"
)

var (
	env   *testenv.Env
	helm  string
	chart string
)

const releaseNamespace = "identity-system"

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	root, err := testenv.RepoRoot()
	if err == nil {
		chart = filepath.Join(root, "charts", "identity-operator")
		helm, err = helmBinary(root)
	}
	if err == nil {
		env, err = testenv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// helmBinary is $HELM, or what hack/helm.sh builds.
func helmBinary(root string) (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	cmd := exec.Command(filepath.Join(root, "hack", "helm.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func runHelm(args ...string) (string, error) {
	cmd := exec.Command(helm, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// everything turns on every optional part of the chart.
var everything = []string{
	"--set", "metrics.serviceMonitor.enabled=true",
	"--set", "metrics.prometheusRule.enabled=true",
	"--set", "smtpRelay.address=smtp.example.com:587",
	"--set", "smtpRelay.username=operator",
	"--set", "smtpRelay.passwordSecretRef.name=smtp-relay",
	"--set", "shards[0].name=shard1",
}

func render(t *testing.T, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", "identity-operator", chart, "--namespace", releaseNamespace, "--kube-version", "1.36.0", "--include-crds"}, extra...)
	out, err := runHelm(args...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	return decode(t, out)
}

func TestChartLints(t *testing.T) {
	for name, args := range map[string][]string{"defaults": nil, "everything on": everything,
		"namespace-scoped": append(append([]string{}, everything...), namespaceScoped...)} {
		t.Run(name, func(t *testing.T) {
			out, err := runHelm(append([]string{"lint", "--strict", chart}, args...)...)
			NewWithT(t).Expect(err).NotTo(HaveOccurred(), out)
		})
	}
}

func TestValuesSchemaRefusesBadValues(t *testing.T) {
	tests := map[string]struct {
		set, want string
	}{
		"a resync that is not a duration":     {"resyncInterval=often", "resyncInterval"},
		"an unknown log level":                {"logLevel=verbose", "logLevel"},
		"a relay without a port":              {"smtpRelay.address=smtp.example.com", "address"},
		"a misspelt key":                      {"resyncIntervall=1m", "resyncIntervall"},
		"zero replicas":                       {"replicaCount=0", "replicaCount"},
		"a shard named default":               {"shards[0].name=default", "shards/0/name"},
		"a shard name that is no label":       {"shards[0].name=Shard_1", "shards/0/name"},
		"a shard without a name":              {"shards[0].resources.limits.memory=1Gi", "name"},
		"a shard listed twice":                {"shards[0].name=a,shards[1].name=a", `"a" is listed twice`},
		"a watched namespace that is no name": {"watchNamespaces={Team_A}", "watchNamespaces/0"},
		"a namespace watched twice":           {"watchNamespaces={a,a}", "watchNamespaces"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			out, err := runHelm("template", "x", chart, "--kube-version", "1.36.0", "--set", tt.set)
			g.Expect(err).To(HaveOccurred(), "helm accepted %s", tt.set)
			g.Expect(out).To(ContainSubstring(tt.want))
		})
	}
}

func TestRenderedChartIsAcceptedByTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c := env.Client
	// The Prometheus Operator's CRDs are not part of this chart; install
	// minimal stand-ins so that its ServiceMonitor and PrometheusRule apply.
	g.Expect(applyAll(ctx, c, monitoringCRDs(t))).To(Succeed())
	ensureNamespace(t, c, releaseNamespace)

	objs := render(t, everything...)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	g.Expect(kinds).To(Equal(map[string]int{"CustomResourceDefinition": 5, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
		"Role": 1, "RoleBinding": 1, "Deployment": 2, "Service": 1, "ServiceMonitor": 1, "PrometheusRule": 1}))
	// The stand-in CRDs take a moment to be served.
	g.Eventually(func() error { return applyAll(ctx, c, objs) }, 30*time.Second, 200*time.Millisecond).Should(Succeed())

	// The namespace-scoped mode: a Role and RoleBinding per watched
	// namespace besides the leader election's.
	for _, ns := range scopedNamespaces {
		ensureNamespace(t, c, ns)
	}
	ensureNamespace(t, c, scopedNamespace)
	kinds = map[string]int{}
	scoped := renderScoped(t)
	for _, o := range scoped {
		kinds[o.GetKind()]++
	}
	g.Expect(kinds).To(Equal(map[string]int{"ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
		"Role": 3, "RoleBinding": 3, "Deployment": 1, "Service": 1}))
	g.Expect(applyAll(ctx, c, scoped)).To(Succeed())
}

func TestChartRBACHasNoWildcardsAndReadsSecretsOnly(t *testing.T) {
	g := NewWithT(t)
	for _, o := range append(render(t), render(t, namespaceScoped...)...) {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		var role rbacv1.ClusterRole
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role)).To(Succeed())
		g.Expect(role.Rules).NotTo(BeEmpty())
		for _, rule := range role.Rules {
			for _, field := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs} {
				g.Expect(field).NotTo(ContainElement("*"), "wildcard in %s: %+v", o.GetName(), rule)
			}
			for _, r := range rule.Resources {
				if r == "secrets" || r == "configmaps" {
					g.Expect(rule.Verbs).To(ConsistOf("get", "list", "watch"), "the operator must not write %s", r)
				}
			}
		}
	}
}

// TestOperatorRunsUnderTheChartsServiceAccount starts the operator with the
// permissions the chart grants (impersonating its ServiceAccount, leader
// election on, in the release namespace) and sees every kind reconciled.
func TestOperatorRunsUnderTheChartsServiceAccount(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := env.Client
	ensureNamespace(t, c, releaseNamespace)
	var rbac []*unstructured.Unstructured
	for _, o := range render(t) {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, o)
		}
	}
	g.Expect(applyAll(ctx, c, rbac)).To(Succeed())

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + releaseNamespace + ":identity-operator"}
	operator := runOperatorAs(t, cfg)

	// Every kind, reconciled under those permissions: a Tenant whose Secret
	// is missing (reads Secrets, writes status and events), an EmailProvider
	// waiting for it, and a PlatformMigration evaluated over the Tenants.
	ns := "rbac-check"
	ensureNamespace(t, c, ns)
	g.Expect(applyAll(ctx, c, decode(t, `
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: acme, namespace: rbac-check}
spec:
  domain: acme.identity.test
  credentialsSecretRef: {name: acme-credentials}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: EmailProvider
metadata: {name: acme-mail, namespace: rbac-check}
spec:
  tenantRef: {name: acme}
  provider: custom
  defaultFromAddress: no-reply@acme.example
---
apiVersion: identity.tenantops.io/v1alpha1
kind: PlatformMigration
metadata: {name: rbac-check}
spec:
  severity: Low
  gracePeriodStart: "2016-03-22T00:00:00Z"
  change: {flags: {change_pwd_flow_v1: false}}
`))).To(Succeed())

	g.Eventually(func(g Gomega) {
		for _, check := range []struct {
			obj    client.Object
			key    client.ObjectKey
			reason string
		}{
			{&unstructured.Unstructured{Object: map[string]any{"apiVersion": "identity.tenantops.io/v1alpha1", "kind": "Tenant"}}, client.ObjectKey{Namespace: ns, Name: "acme"}, "CredentialsSecretNotFound"},
			{&unstructured.Unstructured{Object: map[string]any{"apiVersion": "identity.tenantops.io/v1alpha1", "kind": "EmailProvider"}}, client.ObjectKey{Namespace: ns, Name: "acme-mail"}, "CredentialsSecretNotFound"},
			{&unstructured.Unstructured{Object: map[string]any{"apiVersion": "identity.tenantops.io/v1alpha1", "kind": "PlatformMigration"}}, client.ObjectKey{Name: "rbac-check"}, "Evaluated"},
		} {
			g.Expect(c.Get(ctx, check.key, check.obj)).To(Succeed())
			conds, _, _ := unstructured.NestedSlice(check.obj.(*unstructured.Unstructured).Object, "status", "conditions")
			g.Expect(fmt.Sprint(conds)).To(ContainSubstring("reason:"+check.reason), "%s", check.key)
		}
		var events corev1.EventList
		g.Expect(c.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).NotTo(BeEmpty(), "the operator could not record events")
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	g.Expect(operator.Stop()).To(Succeed(), "the operator failed under the chart's permissions")
}

// runOperatorAs runs every controller with cfg, with leader election in the
// release namespace as the chart configures it.
func runOperatorAs(t *testing.T, cfg *rest.Config) *testenv.Operator {
	t.Helper()
	o, err := env.StartOperator(cfg, controllers.ManagerOptions{
		Options:                 controllers.Options{Pool: identity.NewPool(identity.Options{})},
		LeaderElection:          true,
		LeaderElectionNamespace: releaseNamespace,
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
}

// applyAll server-side applies every object, as `kubectl apply --server-side`.
func applyAll(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		o = o.DeepCopy()
		o.SetManagedFields(nil)
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("helm-test"), client.ForceOwnership); err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

func decode(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.DecodeManifests([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func monitoringCRDs(t *testing.T) []*unstructured.Unstructured {
	var docs []string
	for _, k := range []struct{ kind, plural string }{{"ServiceMonitor", "servicemonitors"}, {"PrometheusRule", "prometheusrules"}} {
		docs = append(docs, fmt.Sprintf(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[2]s.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: %[1]s, plural: %[2]s, listKind: %[1]sList, singular: %[3]s}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, k.kind, k.plural, strings.ToLower(k.kind)))
	}
	return decode(t, strings.Join(docs, "---\n"))
}

// Every argument the chart passes the operator is a flag the operator
// knows (with everything turned on): a flag renamed in main.go and not in
// the chart would crash-loop the Deployment.
func TestDeploymentArgsAreFlagsOfTheOperator(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	binary := filepath.Join(t.TempDir(), "identity-operator")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = root
	out, err := build.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	// The flag package prints its usage, one "  -name" per flag, and exits 0 on -h.
	usage, _ := exec.Command(binary, "-h").CombinedOutput()
	g.Expect(string(usage)).To(ContainSubstring("-resync-interval"), "no usage printed: %s", usage)

	var args []string
	for _, obj := range render(t, everything...) {
		if obj.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			a, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
			args = append(args, a...)
		}
	}
	g.Expect(args).NotTo(BeEmpty(), "no Deployment args rendered")
	for _, arg := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		g.Expect(string(usage)).To(MatchRegexp(`(?m)^\s+-`+regexp.QuoteMeta(name)+`\b`), "the chart passes %s, which the operator does not define", arg)
	}
}

// instance is what matters of one rendered Deployment for sharding.
type instance struct {
	name, shardName, selector string
	migrationStatus           bool
	matchLabels, podLabels    map[string]string
	memoryLimit               string
}

func instances(t *testing.T, objs []*unstructured.Unstructured) (deployments []instance, serviceSelector map[string]string) {
	t.Helper()
	for _, o := range objs {
		switch o.GetKind() {
		case "Service":
			serviceSelector, _, _ = unstructured.NestedStringMap(o.Object, "spec", "selector")
		case "Deployment":
			in := instance{name: o.GetName(), migrationStatus: true}
			in.matchLabels, _, _ = unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
			in.podLabels, _, _ = unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			in.memoryLimit, _, _ = unstructured.NestedString(c, "resources", "limits", "memory")
			args, _, _ := unstructured.NestedStringSlice(c, "args")
			for _, arg := range args {
				name, value, _ := strings.Cut(arg, "=")
				switch name {
				case "--shard-name":
					in.shardName = value
				case "--watch-label-selector":
					in.selector = value
				case "--platform-migration-status":
					in.migrationStatus = value == "true"
				}
			}
			deployments = append(deployments, in)
		}
	}
	return deployments, serviceSelector
}

// matches reports whether selector selects labels.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// A list of shards deploys one instance per shard beside the default one:
// each selects its own objects with Flux's shard label and holds its own
// lease (named after --shard-name), no Deployment selects another's pods,
// the metrics Service reaches them all, and exactly one instance writes
// PlatformMigration status. Without shards, one instance takes everything.
func TestShardsDeployOneInstanceEachWithOneMigrationWriter(t *testing.T) {
	t.Run("unsharded", func(t *testing.T) {
		g := NewWithT(t)
		deployments, _ := instances(t, render(t))
		g.Expect(deployments).To(HaveLen(1))
		g.Expect(deployments[0].selector).To(BeEmpty(), "the only instance reconciles everything")
		g.Expect(deployments[0].shardName).To(BeEmpty())
		g.Expect(deployments[0].migrationStatus).To(BeTrue())
	})

	t.Run("two shards", func(t *testing.T) {
		g := NewWithT(t)
		deployments, service := instances(t, render(t, "--set", "shards[0].name=shard1", "--set", "shards[1].name=shard2",
			"--set", "shards[1].resources.limits.memory=1Gi"))
		g.Expect(deployments).To(HaveLen(3))

		byShard := map[string]instance{}
		writers := 0
		for _, d := range deployments {
			byShard[d.shardName] = d
			if d.migrationStatus {
				writers++
			}
		}
		g.Expect(writers).To(Equal(1), "PlatformMigration status writers")
		g.Expect(byShard).To(HaveLen(3), "each instance has its own --shard-name, hence its own lease")

		def := byShard[""]
		g.Expect(def.name).To(Equal("identity-operator"))
		g.Expect(def.selector).To(Equal("!sharding.fluxcd.io/key"))
		g.Expect(def.migrationStatus).To(BeTrue())
		g.Expect(def.matchLabels).To(Equal(map[string]string{"app.kubernetes.io/name": "identity-operator", "app.kubernetes.io/instance": "identity-operator"}),
			"the default Deployment keeps its selector: it cannot change on upgrade")
		for _, name := range []string{"shard1", "shard2"} {
			d := byShard[name]
			g.Expect(d.name).To(Equal("identity-operator-" + name))
			g.Expect(d.selector).To(Equal("sharding.fluxcd.io/key in (" + name + ")"))
			g.Expect(d.migrationStatus).To(BeFalse())
		}
		g.Expect(byShard["shard1"].memoryLimit).To(Equal("512Mi"), "resources default to the chart's")
		g.Expect(byShard["shard2"].memoryLimit).To(Equal("1Gi"))

		for _, d := range deployments {
			g.Expect(matches(service, d.podLabels)).To(BeTrue(), "the metrics Service does not reach %s", d.name)
			for _, other := range deployments {
				g.Expect(matches(d.matchLabels, other.podLabels)).To(Equal(d.name == other.name), "%s selects the pods of %s", d.name, other.name)
			}
		}
	})
}
