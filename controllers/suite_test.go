package controllers_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reminder"
	"github.com/tenantops/identity-operator/internal/testenv"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// The suite runs one control plane and one operator for every test, as a
// user would: objects go in as YAML, and what the user sees (conditions,
// printer columns, events) and what the tenant holds (the emulator's state)
// come out.
var (
	env *testenv.Env
	k8s client.Client
	// clock is real time plus an offset tests move forward: deadlines a few
	// seconds ahead pass on their own, and months pass with one Step.
	clock = &shiftedClock{}
	// mailer relays reminder emails to the SMTP listener of the running test.
	mailer = &switchMailer{}
	// operator is the running operator; restartOperator replaces it.
	operator *testenv.Operator
)

// resync is short so that drift and steady-state tests see several resyncs.
const resync = 2 * time.Second

// deletionTimeout is how long a deletion waits for a tenant it cannot reach.
const deletionTimeout = 5 * time.Second

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	if operator, err = startOperator(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopOperator()
	_ = env.Stop()
	os.Exit(code)
}

// startOperator starts the operator as every test of this package runs it.
func startOperator() (*testenv.Operator, error) {
	return env.StartOperator(nil, controllers.ManagerOptions{Options: controllers.Options{
		Clock:          clock,
		Pool:           identity.NewPool(identity.Options{}),
		ResyncInterval: resync,
		StalledRetry:   time.Hour,
		Mailer:         mailer,
		// Short, so that a deletion that cannot reach its tenant is let go
		// within a test.
		DeletionTimeout: deletionTimeout,
	}})
}

// stopOperator stops it, reporting a manager that failed.
func stopOperator() {
	if err := operator.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
}

// restartOperator stops the operator and starts a new one, as a crash and a
// new pod would; between the two, fn runs (nil: nothing).
func restartOperator(t *testing.T, between func()) {
	t.Helper()
	stopOperator()
	if between != nil {
		between()
	}
	var err error
	if operator, err = startOperator(); err != nil {
		t.Fatal(err)
	}
}

// shiftedClock is the operator's clock in tests: real time moved forward by
// whatever the tests Step.
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Step moves the clock forward by d.
func (c *shiftedClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// switchMailer sends through the relay a test installs.
type switchMailer struct {
	mu    sync.Mutex
	relay *reminder.SMTPRelay
}

func (m *switchMailer) use(t *testing.T, relay *reminder.SMTPRelay) {
	m.mu.Lock()
	m.relay = relay
	m.mu.Unlock()
	t.Cleanup(func() {
		m.mu.Lock()
		m.relay = nil
		m.mu.Unlock()
	})
}

func (m *switchMailer) Send(ctx context.Context, to []string, subject, body string) error {
	m.mu.Lock()
	relay := m.relay
	m.mu.Unlock()
	if relay == nil {
		return nil // no relay configured in this test: Events only
	}
	return relay.Send(ctx, to, subject, body)
}

func ptrTo[T any](v T) *T { return &v }

// fixture is one test's namespace and emulator.
type fixture struct {
	t   *testing.T
	g   *WithT
	ns  string
	emu *emulatortest.Emulator
	// creds are the credentials of the emulator tenants the test made.
	creds map[string]emulatortest.Credentials
}

func newFixture(t *testing.T, opts ...emulatortest.Option) *fixture {
	t.Helper()
	g := NewWithT(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"}}
	g.Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	f := &fixture{t: t, g: g, ns: ns.Name, emu: emulatortest.Start(t, opts...), creds: map[string]emulatortest.Credentials{}}
	// The emulator's CA, the way `make run` publishes it.
	f.apply(fmt.Sprintf(`
apiVersion: v1
kind: ConfigMap
metadata: {name: emulator-ca}
data:
  ca.crt: %q
`, string(f.emu.CACertPEM())))
	t.Cleanup(func() { f.cleanup(ns) })
	return f
}

// cleanup deletes every object of the test and waits until the operator has
// let go of them, so no test leaks finalizers into the next.
func (f *fixture) cleanup(ns *corev1.Namespace) {
	ctx := context.Background()
	for _, list := range []client.ObjectList{&identityv1alpha1.ActionList{}, &identityv1alpha1.EmailProviderList{}, &identityv1alpha1.CustomDatabaseConnectionList{}, &identityv1alpha1.TenantList{}} {
		_ = k8s.List(ctx, list, client.InNamespace(f.ns))
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			obj := o.(client.Object)
			if obj.GetAnnotations()[identityv1alpha1.PausedAnnotation] != "" {
				patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
				obj.SetAnnotations(nil)
				_ = k8s.Patch(ctx, obj, patch)
			}
			_ = k8s.Delete(ctx, obj)
			return nil
		})
	}
	f.g.Eventually(func() int {
		n := 0
		for _, list := range []client.ObjectList{&identityv1alpha1.ActionList{}, &identityv1alpha1.EmailProviderList{}, &identityv1alpha1.CustomDatabaseConnectionList{}, &identityv1alpha1.TenantList{}} {
			_ = k8s.List(ctx, list, client.InNamespace(f.ns))
			n += meta.LenList(list)
		}
		return n
	}, 30*time.Second, 100*time.Millisecond).Should(BeZero(), "objects of %s were not released by the operator", f.ns)
	_ = k8s.Delete(ctx, ns)
}

// apply creates or updates every document of a YAML manifest in the test's
// namespace, like `kubectl apply -f`.
func (f *fixture) apply(manifest string) {
	f.t.Helper()
	objs, err := testenv.DecodeManifests([]byte(manifest))
	f.g.Expect(err).NotTo(HaveOccurred())
	for _, obj := range objs {
		if obj.GetKind() != "PlatformMigration" {
			obj.SetNamespace(f.ns)
		}
		ctx := context.Background()
		err := k8s.Create(ctx, obj.DeepCopy())
		if apierrors.IsAlreadyExists(err) {
			// The operator writes the object too (finalizer, status): retry
			// the read-modify-write on a conflict, as kubectl apply does.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				current := &unstructured.Unstructured{}
				current.SetGroupVersionKind(obj.GroupVersionKind())
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
					return err
				}
				for _, field := range []string{"spec", "data", "stringData"} {
					if v, ok := obj.Object[field]; ok {
						current.Object[field] = v
					}
				}
				current.SetAnnotations(obj.GetAnnotations())
				current.SetLabels(obj.GetLabels())
				return k8s.Update(ctx, current)
			})
		}
		f.g.Expect(err).NotTo(HaveOccurred(), "applying %s %s", obj.GetKind(), obj.GetName())
	}
}

// tenant creates a tenant on the emulator, its credentials Secret, and a
// Tenant object pointing at it with the given spec lines (indented YAML).
func (f *fixture) tenant(name string, specLines string, opts ...emulatortest.TenantOption) (domain string, creds emulatortest.Credentials) {
	f.t.Helper()
	domain = fmt.Sprintf("%s.%s.identity.test", name, f.ns)
	creds = f.emu.CreateTenant(domain, opts...)
	f.creds[domain] = creds
	f.apply(fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-credentials}
stringData: {client_id: %[2]q, client_secret: %[3]q}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Tenant
metadata: {name: %[1]s}
spec:
  domain: %[4]s
  dialAddress: %[5]s
  caBundleRef: {name: emulator-ca, key: ca.crt}
  credentialsSecretRef: {name: %[1]s-credentials}
%[6]s`, name, creds.ClientID, creds.ClientSecret, domain, f.emu.Addr(), specLines))
	return domain, creds
}

// condition waits until obj's condition of type t has status and reason, and
// returns its message.
func (f *fixture) condition(obj client.Object, t string, status metav1.ConditionStatus, reason string) string {
	f.t.Helper()
	var msg string
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: obj.GetName()}, obj)).To(Succeed())
		c := meta.FindStatusCondition(conditionsOf(obj), t)
		g.Expect(c).NotTo(BeNil(), "no %s condition yet; conditions: %+v", t, conditionsOf(obj))
		g.Expect(c.Status).To(Equal(status), "%s: %s", c.Reason, c.Message)
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		msg = c.Message
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	return msg
}

// ready waits for Ready=True.
func (f *fixture) ready(obj client.Object) {
	f.t.Helper()
	f.condition(obj, identityv1alpha1.ConditionReady, metav1.ConditionTrue, "Synced")
}

func conditionsOf(obj client.Object) []metav1.Condition {
	return obj.(interface{ GetConditions() []metav1.Condition }).GetConditions()
}

// events returns "Type Reason: message" of the events about an object.
func (f *fixture) events(name string) []string {
	var list corev1.EventList
	f.g.Expect(k8s.List(context.Background(), &list, client.InNamespace(f.ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	return out
}

// row is the object's row in `kubectl get -o wide`.
func (f *fixture) row(resource, name string) map[string]string {
	f.t.Helper()
	_, rows, err := env.Table(context.Background(), resource, f.ns)
	f.g.Expect(err).NotTo(HaveOccurred())
	return testenv.Row(rows, name)
}

// indent indents YAML lines for use under spec.
func indent(lines string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.Trim(lines, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// gone waits until obj no longer exists: the operator released its finalizer.
func (f *fixture) gone(obj client.Object) {
	f.t.Helper()
	f.g.Eventually(func() bool {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: obj.GetNamespace(), Name: obj.GetName()}, obj)
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "%s was not released", obj.GetName())
}
