// Package reliability proves that the operator converges, with exactly one
// remote object per resource and no lost change, under what goes wrong in
// production: 5xx answers, latency, 429 bursts, a platform that is down for a
// while, operator and kube-apiserver restarts, bad input; and that no secret
// value ever shows in a log line, an event, a status or a metric.
//
// Everything is real: an envtest kube-apiserver and etcd, the emulator over
// HTTPS on loopback, the operator in-process (so that it can be stopped at any
// moment, as a killed pod is, and its log and metrics read).
//
// Plain `go test` runs the reduced suite (a few minutes on 2 cores, in CI);
// RELIABILITY=full (make test-reliability) runs it at the sizes of issue 9:
// 200 resources created across repeated operator kills, a platform down for a
// minute. Each test logs its figures on lines starting "FIGURE".
package reliability

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/testenv"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
	"github.com/tenantops/identity-operator/test/emulator/server"
	"github.com/tenantops/identity-operator/test/workload"
)

// size is what a run is made of: the reduced suite in CI, the full one
// with RELIABILITY=full.
type size struct {
	faultTenants     int           // tenants (x3 resources) under faults
	downFor          time.Duration // how long the platform answers only 5xx
	restartTenants   int           // tenants (x3 resources) created across kills
	kills            int           // operator kills during their creation
	badInputWindow   time.Duration // how long calls to bad objects are counted
	convergeTimeout  time.Duration
	apiServerDownFor time.Duration
}

var (
	reduced = size{faultTenants: 8, downFor: 10 * time.Second, restartTenants: 14, kills: 4,
		badInputWindow: 30 * time.Second, convergeTimeout: 3 * time.Minute, apiServerDownFor: 3 * time.Second}
	full = size{faultTenants: 30, downFor: time.Minute, restartTenants: 67, kills: 10,
		badInputWindow: time.Minute, convergeTimeout: 10 * time.Minute, apiServerDownFor: 10 * time.Second}
	run = reduced
)

// resync is short so that a lost change would show within a test.
const resync = 5 * time.Second

var (
	env      *testenv.Env
	k8s      client.Client
	operator *runningOperator
	// logs holds every line the operator logged, at every verbosity.
	logs = &syncBuffer{}
)

func TestMain(m *testing.M) {
	if os.Getenv("RELIABILITY") == "full" {
		run = full
	}
	// Every log line of the operator, client-go's (klog) included, at every
	// verbosity, goes to logs, which the secrets test searches.
	logger := zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-10)))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	var err error
	if env, err = testenv.StartWith(testenv.Options{RestartableAPIServer: true}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	if operator, err = startOperator(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	operator.stop()
	_ = env.Stop()
	os.Exit(code)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// transitionHook, when set, runs in the operator after each PATCH sent at a
// migration's date and before its Tenant's status records it.
var transitionHook atomic.Pointer[func(types.NamespacedName)]

// runningOperator is one operator "process", with the registry its
// migration metrics go to (the secrets test reads every metric line).
type runningOperator struct {
	*testenv.Operator
	registry *prometheus.Registry
}

func startOperator() (*runningOperator, error) {
	registry := prometheus.NewRegistry()
	o, err := env.StartOperator(nil, controllers.ManagerOptions{Options: controllers.Options{
		Pool:            identity.NewPool(identity.Options{Metrics: identity.DefaultMetrics()}),
		ResyncInterval:  resync,
		StalledRetry:    time.Hour,
		MetricsRegistry: registry,
		AfterTransitionPatch: func(key types.NamespacedName) {
			if hook := transitionHook.Load(); hook != nil {
				(*hook)(key)
			}
		},
	}})
	if err != nil {
		return nil, err
	}
	return &runningOperator{Operator: o, registry: registry}, nil
}

func (r *runningOperator) stop() {
	if err := r.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
}

// fixture is one test's namespace, emulator (Auth0-like limits) and
// request log.
type fixture struct {
	t   *testing.T
	g   *WithT
	ns  string
	emu *emulatortest.Emulator
	log *workload.RequestLog
}

func newFixture(t *testing.T, opts ...emulatortest.Option) *fixture {
	t.Helper()
	g := NewWithT(t)
	f := &fixture{t: t, g: g, log: workload.NewRequestLog()}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rel-"}}
	g.Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	f.ns = ns.Name
	opts = append([]emulatortest.Option{
		emulatortest.WithRateLimit(server.DefaultRateLimit.Burst, server.DefaultRateLimit.PerSecond),
		func(c *server.Config) { c.Logger = slog.New(f.log) },
	}, opts...)
	f.emu = emulatortest.Start(t, opts...)
	g.Expect(k8s.Create(context.Background(), workload.CABundleConfigMap(f.ns, f.emu.CACertPEM()))).To(Succeed())
	// Registered after the emulator's own cleanup, so it runs first: the
	// operator lets go of the objects while the platform still answers.
	t.Cleanup(func() { f.cleanup() })
	return f
}

// tenant creates tenant i on the emulator and describes its objects.
func (f *fixture) tenant(i int, flags map[string]bool) workload.Tenant {
	name := fmt.Sprintf("t%03d", i)
	domain := fmt.Sprintf("%s.%s.identity.test", name, f.ns)
	creds := f.emu.CreateTenant(domain)
	return workload.Tenant{
		Namespace: f.ns, Name: name, Domain: domain, DialAddress: f.emu.Addr(), Flags: flags,
		Secrets: workload.Secrets{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret,
			SMTPPassword:  fmt.Sprintf("smtp-pass-%s-%d", f.ns, i),
			Configuration: map[string]string{"LEGACY_TOKEN": fmt.Sprintf("legacy-token-%s-%d", f.ns, i)}},
	}
}

// declareFlags sets the Tenant's spec.flags to tn.Flags, retrying while the
// API server does not take it (it may be restarting, or the operator may
// have just added its finalizer).
func (f *fixture) declareFlags(tn workload.Tenant) {
	f.t.Helper()
	f.g.Eventually(func() error {
		obj := &identityv1alpha1.Tenant{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: tn.Name}, obj); err != nil {
			return err
		}
		obj.Spec.Flags = tn.Flags
		return k8s.Update(context.Background(), obj)
	}, time.Minute, time.Second).Should(Succeed(), "declaring the flags of Tenant %s", tn.Name)
}

// create creates objects, retrying what the API server did not take (it
// may be restarting).
func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, obj := range objs {
		f.g.Eventually(func() error {
			err := k8s.Create(context.Background(), obj)
			if err != nil && strings.Contains(err.Error(), "already exists") {
				return nil
			}
			return err
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed(), "creating %s", obj.GetName())
	}
}

var kinds = []func() client.ObjectList{
	func() client.ObjectList { return &identityv1alpha1.TenantList{} },
	func() client.ObjectList { return &identityv1alpha1.EmailProviderList{} },
	func() client.ObjectList { return &identityv1alpha1.CustomDatabaseConnectionList{} },
	func() client.ObjectList { return &identityv1alpha1.ActionList{} },
}

type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
}

// each calls fn for every object of the three namespaced kinds in the
// test's namespace.
func (f *fixture) each(g Gomega, fn func(obj conditioned)) {
	for _, newList := range kinds {
		list := newList()
		g.Expect(k8s.List(context.Background(), list, client.InNamespace(f.ns))).To(Succeed())
		_ = meta.EachListItem(list, func(o runtime.Object) error { fn(o.(conditioned)); return nil })
	}
}

// allReady waits until want objects exist and every one is Ready=True for
// its current generation, and returns how long that took.
func (f *fixture) allReady(want int, timeout time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	f.g.Eventually(func(g Gomega) {
		n, notReady := 0, []string{}
		f.each(g, func(obj conditioned) {
			n++
			c := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != obj.GetGeneration() {
				desc := "no Ready condition"
				if c != nil {
					desc = c.Reason + ": " + c.Message
				}
				notReady = append(notReady, obj.GetName()+" ("+desc+")")
			}
		})
		g.Expect(n).To(Equal(want))
		sort.Strings(notReady)
		g.Expect(notReady).To(BeEmpty())
	}, timeout, time.Second).Should(Succeed())
	return time.Since(start)
}

// remoteCheck is what the platform holds for a set of tenants, against
// what they declare.
type remoteCheck struct {
	connections, duplicates, missing, providers, lost int
}

// checkRemote counts, for each tenant, the connections named after its
// CustomDatabaseConnection (exactly one wanted), the connections the
// operator should not have made, the provider (exactly one, with the
// declared settings), and the declared flags the tenant does not hold.
func (f *fixture) checkRemote(tenants []workload.Tenant, defaultConnections int) remoteCheck {
	f.t.Helper()
	var r remoteCheck
	for _, t := range tenants {
		names, err := f.emu.Server().ConnectionNames(t.Domain)
		f.g.Expect(err).NotTo(HaveOccurred())
		mine := 0
		for _, n := range names {
			if n == t.ConnectionName() {
				mine++
			}
		}
		r.connections += mine
		r.duplicates += max(0, mine-1) + max(0, len(names)-defaultConnections-mine)
		if mine == 0 {
			r.missing++
		}
		if p, ok := f.emu.EmailProvider(t.Domain); ok {
			r.providers++
			if p["default_from_address"] != "no-reply@"+t.Domain {
				r.lost++
			}
		} else {
			r.missing++
		}
		if c, ok := f.emu.Connection(t.Domain, t.ConnectionName()); ok {
			opts, _ := c["options"].(map[string]any)
			conf, _ := opts["configuration"].(map[string]any)
			for k, v := range t.Secrets.Configuration {
				if conf[k] != v {
					r.lost++
				}
			}
		}
		flags := f.emu.Flags(t.Domain)
		for k, v := range t.Flags {
			if flags[k] != v {
				r.lost++
			}
		}
	}
	return r
}

// defaultConnections is how many connections a new emulator tenant has.
func (f *fixture) defaultConnections(domain string) int {
	names, err := f.emu.Server().ConnectionNames(domain)
	f.g.Expect(err).NotTo(HaveOccurred())
	return len(names)
}

// cleanup deletes the test's objects and waits until the operator released
// them, so that no test leaves work for the next one.
func (f *fixture) cleanup() {
	f.emu.SetFaults(0, 0)
	f.emu.SetLostReplies(0)
	f.emu.SetRateLimit("", 0, 0)
	ctx := context.Background()
	g := NewWithT(f.t)
	g.Eventually(func(g Gomega) {
		n := 0
		f.each(g, func(obj conditioned) {
			n++
			_ = k8s.Delete(ctx, obj)
		})
		g.Expect(n).To(BeZero())
	}, 2*time.Minute, time.Second).Should(Succeed(), "objects of %s were not released by the operator", f.ns)
	_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
}

// figure logs one reported figure.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s: "+format, append([]any{t.Name()}, args...)...)
}

// jitter is a random duration in [lo, hi).
func jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)))
}
