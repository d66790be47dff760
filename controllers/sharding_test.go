package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/shard"
	"github.com/tenantops/identity-operator/internal/testenv"
)

// Two instances run side by side as a sharded install runs them: the
// default one (no shard label, and the only one writing PlatformMigration
// status) and shard b. Each calls only its own tenants; the migration counts
// both shards; and a tenant moved from the default instance to b while the
// default instance is in the middle of a write is written by b only once
// that write is over.
func TestShardsSplitTheFleetAndHandATenantOverWithoutADoubleWrite(t *testing.T) {
	// The suite's operator is unsharded: it would hold every object.
	stopOperator()
	t.Cleanup(func() {
		var err error
		if operator, err = startOperator(); err != nil {
			t.Error(err)
		}
	})
	calls := &callLog{}
	defaultShard := startShard(t, calls, shard.Config{WatchLabelSelector: "!" + identityv1alpha1.ShardLabel}, true, 0)
	shardB := startShard(t, calls, shard.Config{Name: "b", WatchLabelSelector: identityv1alpha1.ShardLabel + " in (b)"}, false, 0)
	f := newFixture(t)
	ctx := context.Background()

	name := "sharded-" + f.ns
	acme := f.shardedTenant("acme", "", "")
	globex := f.shardedTenant("globex", "b", "optInMigrations: ["+name+"]")
	m := f.migration(name, time.Now().Add(-time.Hour), nil, "  change:\n    flags: {change_pwd_flow_v1: false}\n")

	for _, tt := range []struct {
		tenant, shard string
	}{{"acme", "default"}, {"globex", "b"}} {
		for _, obj := range f.tenantObjects(tt.tenant) {
			f.ready(obj)
			f.g.Expect(obj.(shard.Object).GetShard()).To(Equal(tt.shard), "status.shard of %T %s", obj, tt.tenant)
		}
	}

	// Each instance called its own tenant only, and every write the
	// emulator served was one of theirs.
	f.g.Expect(calls.domains("default")).To(ConsistOf(acme))
	f.g.Expect(calls.domains("b")).To(ConsistOf(globex))
	for _, tt := range []struct{ domain, instance, other string }{{acme, "default", "b"}, {globex, "b", "default"}} {
		f.g.Expect(calls.writes(tt.other, tt.domain)).To(BeEmpty())
		f.g.Eventually(func(g Gomega) {
			g.Expect(f.emu.Requests(tt.domain).ManagementWrites()).To(Equal(len(calls.writes(tt.instance, tt.domain))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed(), "writes to %s served by the emulator and sent by %s", tt.domain, tt.instance)
	}

	// The migration counts the tenants of both shards, and only the
	// default instance writes its status.
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(*s.Tenants).To(Equal(identityv1alpha1.MigrationTenantCounts{Selected: 2, Enabled: 1, OptedIn: 1, Pending: 1}))
		g.Expect(s.TenantsNeedingAttention).To(ConsistOf(HaveField("Name", "acme")))
	})
	f.g.Expect(shardB.writes("platformmigrations")).To(BeEmpty(), "shard b wrote PlatformMigrations")
	f.g.Expect(defaultShard.writes("platformmigrations")).To(ContainElement(HavePrefix("PATCH /apis/identity.tenantops.io/v1alpha1/platformmigrations/" + name + "/status")))

	// acme moves to b while the default instance is writing it: its
	// settings change, and while that PATCH is on its way (the emulator
	// answers after a second), acme and its objects are relabelled, with
	// another change of the settings for b to make.
	f.emu.SetFaults(0, time.Second)
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: f.ns}}
	f.g.Expect(k8s.Patch(ctx, tenant, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"settings":{"friendlyName":"Acme two"}}}`)))).To(Succeed())
	f.g.Eventually(func() bool { return calls.inFlight("default", acme) }, 30*time.Second, 10*time.Millisecond).Should(BeTrue())
	moved := fmt.Sprintf(`{"metadata":{"labels":{%q:"b"}}}`, identityv1alpha1.ShardLabel)
	f.g.Expect(k8s.Patch(ctx, tenant, client.RawPatch("application/merge-patch+json",
		[]byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"b"}},"spec":{"settings":{"friendlyName":"Acme three"}}}`, identityv1alpha1.ShardLabel))))).To(Succeed())
	for _, obj := range f.tenantObjects("acme")[1:] {
		f.g.Expect(k8s.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", []byte(moved)))).To(Succeed())
	}

	f.g.Eventually(func() any { return f.emu.Settings(acme)["friendly_name"] }, 60*time.Second, 50*time.Millisecond).Should(Equal("Acme three"))
	for _, obj := range f.tenantObjects("acme") {
		f.g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			g.Expect(obj.(shard.Object).GetShard()).To(Equal("b"))
			g.Expect(meta.IsStatusConditionTrue(conditionsOf(obj), identityv1alpha1.ConditionReady)).To(BeTrue())
		}, 60*time.Second, 100*time.Millisecond).Should(Succeed(), "%T acme did not move to b", obj)
	}
	f.emu.SetFaults(0, 0)

	// Written by one instance at a time: every write of the default
	// instance ended before b's first began.
	before, after := calls.writes("default", acme), calls.writes("b", acme)
	f.g.Expect(before).NotTo(BeEmpty())
	f.g.Expect(after).NotTo(BeEmpty(), "b wrote nothing to acme")
	last := before[len(before)-1]
	f.g.Expect(last.end.IsZero()).To(BeFalse(), "a write of the default instance never ended")
	f.g.Expect(last.end.Before(after[0].start)).To(BeTrue(),
		"the default instance's %s ended at %s, after b's %s began at %s", last.method, last.end.Format(time.StampMicro), after[0].method, after[0].start.Format(time.StampMicro))
	for _, c := range before {
		f.g.Expect(c.end.Before(after[0].start)).To(BeTrue(), "the default instance's %s overlaps b's writes", c.method)
	}

	f.g.Expect(f.events("acme")).To(ContainElements(HavePrefix("Warning ShardHandoff"), HavePrefix("Normal ShardReleased")),
		"b waited for the default instance to let go")

	// Still both shards in the migration's counts; still one writer.
	f.migrationStatus(m, 30*time.Second, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Tenants.Selected).To(BeNumerically("==", 2))
	})
	f.g.Expect(shardB.writes("platformmigrations")).To(BeEmpty())
}

// An instance that is gone never lets go of its objects: the shard that
// selects them now takes them over once it has waited twice the reconcile
// timeout (the longest a pass of the old instance could still run), and
// says so.
func TestAShardThatIsGoneIsTakenOverAfterTwiceTheReconcileTimeout(t *testing.T) {
	stopOperator()
	t.Cleanup(func() {
		var err error
		if operator, err = startOperator(); err != nil {
			t.Error(err)
		}
	})
	const reconcileTimeout = 2 * time.Second
	calls := &callLog{}
	defaultShard := startShard(t, calls, shard.Config{WatchLabelSelector: "!" + identityv1alpha1.ShardLabel}, true, reconcileTimeout)
	startShard(t, calls, shard.Config{Name: "b", WatchLabelSelector: identityv1alpha1.ShardLabel + " in (b)"}, false, reconcileTimeout)
	f := newFixture(t)
	ctx := context.Background()
	acme := f.shardedTenant("acme", "", "")
	for _, obj := range f.tenantObjects("acme") {
		f.ready(obj)
		f.g.Expect(obj.(shard.Object).GetShard()).To(Equal("default"))
	}

	f.g.Expect(defaultShard.Stop()).To(Succeed())
	moved := time.Now()
	tenant := f.tenantObjects("acme")[0]
	f.g.Expect(k8s.Patch(ctx, tenant, client.RawPatch("application/merge-patch+json",
		[]byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"b"}},"spec":{"settings":{"friendlyName":"Acme moved"}}}`, identityv1alpha1.ShardLabel))))).To(Succeed())
	for _, obj := range f.tenantObjects("acme")[1:] {
		f.g.Expect(k8s.Patch(ctx, obj, client.RawPatch("application/merge-patch+json",
			[]byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"b"}}}`, identityv1alpha1.ShardLabel))))).To(Succeed())
	}
	msg := f.condition(tenant, identityv1alpha1.ConditionShardHandoff, metav1.ConditionTrue, shard.ReasonWaitingForRelease)
	f.g.Expect(msg).To(ContainSubstring(`shard "default" holds this object`))

	f.g.Eventually(func() any { return f.emu.Settings(acme)["friendly_name"] }, 30*time.Second, 50*time.Millisecond).Should(Equal("Acme moved"))
	for _, obj := range f.tenantObjects("acme") {
		f.g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			g.Expect(obj.(shard.Object).GetShard()).To(Equal("b"))
			g.Expect(meta.IsStatusConditionTrue(conditionsOf(obj), identityv1alpha1.ConditionReady)).To(BeTrue())
			g.Expect(meta.FindStatusCondition(conditionsOf(obj), identityv1alpha1.ConditionShardHandoff)).To(BeNil())
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "%T acme was not taken over", obj)
	}
	writes := calls.writes("b", acme)
	f.g.Expect(writes).NotTo(BeEmpty())
	f.g.Expect(writes[0].start.Sub(moved)).To(BeNumerically(">=", 2*reconcileTimeout), "b wrote before the takeover time")
	f.g.Expect(f.events("acme")).To(ContainElement(And(HavePrefix("Warning ShardTakeover"), ContainSubstring(`shard "default" did not let go`))))
}

// A selector that does not parse stops the operator at start, naming the
// flag.
func TestAnInvalidWatchLabelSelectorIsRefusedAtStart(t *testing.T) {
	g := NewWithT(t)
	_, err := env.StartOperator(nil, controllers.ManagerOptions{Options: controllers.Options{
		Pool:  identity.NewPool(identity.Options{}),
		Shard: shard.Config{Name: "shard1", WatchLabelSelector: identityv1alpha1.ShardLabel + " in shard1"},
	}})
	g.Expect(err).To(MatchError(ContainSubstring(`invalid --watch-label-selector "sharding.fluxcd.io/key in shard1"`)))
}

// shardedTenant makes a tenant on the emulator and its Tenant, EmailProvider,
// CustomDatabaseConnection and Action, all labelled for shardName (none: the
// default instance's).
func (f *fixture) shardedTenant(name, shardName, specLines string) string {
	f.t.Helper()
	domain := f.tenantDomain(name)
	creds := f.emu.CreateTenant(domain)
	labels := `{sharding-test: "yes"}`
	if shardName != "" {
		labels = fmt.Sprintf(`{sharding-test: "yes", %s: %q}`, identityv1alpha1.ShardLabel, shardName)
	}
	f.apply(fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-credentials}
stringData: {client_id: %[2]q, client_secret: %[3]q}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: %[1]s, labels: %[6]s}
spec:
  domain: %[4]s
  dialAddress: %[5]s
  caBundleRef: {name: emulator-ca, key: ca.crt}
  credentialsSecretRef: {name: %[1]s-credentials}
  createdAt: "2015-01-01T00:00:00Z"
  settings: {friendlyName: %[1]s}
%[7]s
---
apiVersion: identity.tenantops.io/v1alpha1
kind: EmailProvider
metadata: {name: %[1]s-mail, labels: %[6]s}
spec:
  tenantRef: {name: %[1]s}
  provider: custom
  defaultFromAddress: no-reply@%[1]s.example
---
apiVersion: identity.tenantops.io/v1alpha1
kind: CustomDatabaseConnection
metadata: {name: %[1]s-users, labels: %[6]s}
spec:
  tenantRef: {name: %[1]s}
  connectionName: %[1]s-users
  scripts:
    login: {inline: "function login(email, password, callback) { callback(null, null); }"}
    getUser: {inline: "function getByEmail(email, callback) { callback(null, null); }"}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Action
metadata: {name: %[1]s-greeting, labels: %[6]s}
spec:
  tenantRef: {name: %[1]s}
  trigger: post-login
  code: {inline: "exports.onExecutePostLogin = async (event, api) => {};"}
`, name, creds.ClientID, creds.ClientSecret, domain, f.emu.Addr(), labels, indent(specLines)))
	return domain
}

// tenantObjects are the objects shardedTenant made for name, the Tenant first.
func (f *fixture) tenantObjects(name string) []client.Object {
	return []client.Object{
		&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}},
		&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: name + "-mail", Namespace: f.ns}},
		&identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Name: name + "-users", Namespace: f.ns}},
		&identityv1alpha1.Action{ObjectMeta: metav1.ObjectMeta{Name: name + "-greeting", Namespace: f.ns}},
	}
}

// shardInstance is one operator instance of the test, with the writes it
// sent to the kube-apiserver.
type shardInstance struct {
	*testenv.Operator
	mu  sync.Mutex
	api []string // "METHOD /path"
}

// writes are the instance's writes to the API server whose path names
// resource.
func (s *shardInstance) writes(resource string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, w := range s.api {
		if strings.Contains(w, "/"+resource+"/") || strings.HasSuffix(w, "/"+resource) {
			out = append(out, w)
		}
	}
	return out
}

// startShard starts an operator instance for cfg, as main.go would with
// --shard-name, --watch-label-selector, --platform-migration-status and
// --reconcile-timeout (zero: the default), recording its calls to the
// tenants in calls (under cfg.Instance()) and its writes to the API server.
func startShard(t *testing.T, calls *callLog, cfg shard.Config, migrationStatus bool, reconcileTimeout time.Duration) *shardInstance {
	t.Helper()
	s := &shardInstance{}
	restCfg := rest.CopyConfig(env.Config)
	restCfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet {
				s.mu.Lock()
				s.api = append(s.api, r.Method+" "+r.URL.Path)
				s.mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	}
	instance := cfg.Instance()
	o, err := env.StartOperator(restCfg, controllers.ManagerOptions{Options: controllers.Options{
		Pool: identity.NewPool(identity.Options{}),
		WrapClient: func(c identity.Client) identity.Client {
			calls.touch(instance, c.Domain())
			return &recordingClient{Client: c, log: calls, instance: instance}
		},
		ResyncInterval:         resync,
		StalledRetry:           time.Hour,
		Shard:                  cfg,
		SkipPlatformMigrations: !migrationStatus,
	}, ReconcileTimeout: reconcileTimeout})
	if err != nil {
		t.Fatal(err)
	}
	s.Operator = o
	t.Cleanup(func() {
		if err := o.Stop(); err != nil {
			t.Errorf("shard %s: %v", instance, err)
		}
	})
	return s
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// callLog records which instance called which tenant, and when each write
// began and ended.
type callLog struct {
	mu      sync.Mutex
	touched map[string]map[string]bool // instance -> domains
	calls   []*tenantWrite
}

type tenantWrite struct {
	instance, domain, method string
	start, end               time.Time // end is zero while the call is on its way
}

func (l *callLog) touch(instance, domain string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.touched == nil {
		l.touched = map[string]map[string]bool{}
	}
	if l.touched[instance] == nil {
		l.touched[instance] = map[string]bool{}
	}
	l.touched[instance][domain] = true
}

// begin records the start of a write; the function it returns, its end.
func (l *callLog) begin(instance, domain, method string) func() {
	w := &tenantWrite{instance: instance, domain: domain, method: method, start: time.Now()}
	l.mu.Lock()
	l.calls = append(l.calls, w)
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		w.end = time.Now()
		l.mu.Unlock()
	}
}

// domains are the tenants instance called.
func (l *callLog) domains(instance string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for d := range l.touched[instance] {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// writes are instance's writes to domain, in the order they began.
func (l *callLog) writes(instance, domain string) []tenantWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []tenantWrite
	for _, w := range l.calls {
		if w.instance == instance && w.domain == domain {
			out = append(out, *w)
		}
	}
	return out
}

// inFlight reports whether instance has a write to domain on its way.
func (l *callLog) inFlight(instance, domain string) bool {
	for _, w := range l.writes(instance, domain) {
		if w.end.IsZero() {
			return true
		}
	}
	return false
}

// recordingClient is an identity client that records the start and end of
// every write in a callLog.
type recordingClient struct {
	identity.Client
	log      *callLog
	instance string
}

func (c *recordingClient) write(method string) func() {
	return c.log.begin(c.instance, c.Domain(), method)
}

func (c *recordingClient) PatchTenantSettings(ctx context.Context, p identity.SettingsPatch) (*identity.TenantSettings, error) {
	defer c.write("PatchTenantSettings")()
	return c.Client.PatchTenantSettings(ctx, p)
}

func (c *recordingClient) CreateEmailTemplate(ctx context.Context, t identity.EmailTemplate) (*identity.EmailTemplate, error) {
	defer c.write("CreateEmailTemplate")()
	return c.Client.CreateEmailTemplate(ctx, t)
}

func (c *recordingClient) UpdateEmailTemplate(ctx context.Context, name string, u identity.EmailTemplateUpdate) (*identity.EmailTemplate, error) {
	defer c.write("UpdateEmailTemplate")()
	return c.Client.UpdateEmailTemplate(ctx, name, u)
}

func (c *recordingClient) CreateEmailProvider(ctx context.Context, p identity.EmailProviderCreate) (*identity.EmailProvider, error) {
	defer c.write("CreateEmailProvider")()
	return c.Client.CreateEmailProvider(ctx, p)
}

func (c *recordingClient) UpdateEmailProvider(ctx context.Context, u identity.EmailProviderUpdate) (*identity.EmailProvider, error) {
	defer c.write("UpdateEmailProvider")()
	return c.Client.UpdateEmailProvider(ctx, u)
}

func (c *recordingClient) DeleteEmailProvider(ctx context.Context) error {
	defer c.write("DeleteEmailProvider")()
	return c.Client.DeleteEmailProvider(ctx)
}

func (c *recordingClient) CreateConnection(ctx context.Context, conn identity.ConnectionCreate) (*identity.Connection, error) {
	defer c.write("CreateConnection")()
	return c.Client.CreateConnection(ctx, conn)
}

func (c *recordingClient) UpdateConnection(ctx context.Context, id string, u identity.ConnectionUpdate) (*identity.Connection, error) {
	defer c.write("UpdateConnection")()
	return c.Client.UpdateConnection(ctx, id, u)
}

func (c *recordingClient) DeleteConnection(ctx context.Context, id string) error {
	defer c.write("DeleteConnection")()
	return c.Client.DeleteConnection(ctx, id)
}

func (c *recordingClient) CreateAction(ctx context.Context, a identity.ActionCreate) (*identity.Action, error) {
	defer c.write("CreateAction")()
	return c.Client.CreateAction(ctx, a)
}

func (c *recordingClient) UpdateAction(ctx context.Context, id string, u identity.ActionUpdate) (*identity.Action, error) {
	defer c.write("UpdateAction")()
	return c.Client.UpdateAction(ctx, id, u)
}

func (c *recordingClient) DeployAction(ctx context.Context, id string) (*identity.ActionVersion, error) {
	defer c.write("DeployAction")()
	return c.Client.DeployAction(ctx, id)
}

func (c *recordingClient) DeleteAction(ctx context.Context, id string, force bool) error {
	defer c.write("DeleteAction")()
	return c.Client.DeleteAction(ctx, id, force)
}

func (c *recordingClient) UpdateTriggerBindings(ctx context.Context, trigger string, b []identity.BindingUpdate) ([]identity.TriggerBinding, error) {
	defer c.write("UpdateTriggerBindings")()
	return c.Client.UpdateTriggerBindings(ctx, trigger, b)
}
