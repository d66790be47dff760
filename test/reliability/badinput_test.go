package reliability

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/testenv"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// Every manifest of the invalid corpus is refused by the API server while
// the operator runs, and the operator keeps running.
func TestEveryInvalidManifestIsRefused(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	files, err := filepath.Glob(filepath.Join(root, "test", "crd", "invalid", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(files)).To(BeNumerically(">=", 40), "the corpus went missing")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rel-invalid-"}}
	g.Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	refused := 0
	for _, path := range files {
		objs, err := testenv.ReadManifests(path)
		if err != nil {
			t.Fatal(err)
		}
		g.Expect(objs).NotTo(BeEmpty(), path)
		for _, obj := range objs {
			if obj.GetKind() != "PlatformMigration" {
				obj.SetNamespace(ns.Name)
			}
		}
		// Every document but the last sets the stage; the last is created,
		// or, when it has the name of one before it, updated.
		for _, obj := range objs[:len(objs)-1] {
			g.Expect(k8s.Create(context.Background(), obj)).To(Succeed(), path)
		}
		last := objs[len(objs)-1]
		err = k8s.Create(context.Background(), last.DeepCopy())
		if apierrors.IsAlreadyExists(err) {
			// The operator may be adding its finalizer meanwhile.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				current := &unstructured.Unstructured{}
				current.SetGroupVersionKind(last.GroupVersionKind())
				if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(last), current); err != nil {
					return err
				}
				current.Object["spec"] = last.Object["spec"]
				return k8s.Update(context.Background(), current)
			})
		}
		if apierrors.IsInvalid(err) {
			refused++
		} else {
			t.Errorf("%s: not refused as invalid: %v", filepath.Base(path), err)
		}
		// Gone before the next file, which may reuse the names: the
		// operator releases its finalizer first.
		for _, obj := range objs {
			_ = k8s.Delete(context.Background(), obj)
		}
		for _, obj := range objs {
			g.Eventually(func() bool {
				current := &unstructured.Unstructured{}
				current.SetGroupVersionKind(obj.GroupVersionKind())
				return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), current))
			}, time.Minute, 100*time.Millisecond).Should(BeTrue(), "%s: %s was not released", filepath.Base(path), obj.GetName())
		}
	}
	figure(t, "%d of %d invalid manifests refused by the API server; the operator still running: %v", refused, len(files), operator.Running())
	g.Expect(operator.Running()).To(BeTrue())
	// Objects of the stage that the operator finalized are released.
	g.Eventually(func() int {
		list := &identityv1alpha1.TenantList{}
		_ = k8s.List(context.Background(), list, client.InNamespace(ns.Name))
		return len(list.Items)
	}, time.Minute, time.Second).Should(BeZero())
}

// Bad input the API server cannot refuse (it depends on Secrets and on the
// platform) ends in a condition that says what is wrong, without a crash
// and without a hot loop: the calls each object costs per minute, once it
// has said so, stay bounded.
func TestBadInputIsAClearConditionWithoutAHotLoop(t *testing.T) {
	f := newFixture(t)
	type badCase struct {
		name    string
		obj     conditioned
		reasons []string
		domain  string
	}
	var cases []badCase

	// A Secret without client_secret.
	missing := f.tenant(0, nil)
	objs := missing.TenantObjects()
	delete(objs[0].(*corev1.Secret).StringData, "client_secret")
	f.create(objs...)
	cases = append(cases, badCase{"credentials Secret without client_secret", objs[1].(conditioned), []string{"CredentialsSecretInvalid"}, missing.Domain})

	// A Secret whose client_id is empty.
	malformed := f.tenant(1, nil)
	objs = malformed.TenantObjects()
	objs[0].(*corev1.Secret).StringData["client_id"] = ""
	f.create(objs...)
	cases = append(cases, badCase{"credentials Secret with an empty client_id", objs[1].(conditioned), []string{"CredentialsSecretInvalid"}, malformed.Domain})

	// Wrong credentials.
	wrong := f.tenant(2, nil)
	wrong.Secrets.ClientSecret = "not-the-secret"
	objs = wrong.TenantObjects()
	f.create(objs...)
	cases = append(cases, badCase{"wrong client secret", objs[1].(conditioned), []string{"CredentialsRejected"}, wrong.Domain})

	// A flag the platform refuses.
	refusing := f.tenant(3, map[string]bool{"enable_apis_section": true})
	f.emu.RefuseFlags(refusing.Domain, "enable_apis_section")
	objs = refusing.TenantObjects()
	f.create(objs...)
	cases = append(cases, badCase{"a flag the platform refuses", objs[1].(conditioned), []string{"FlagRefused"}, refusing.Domain})

	// A good tenant with a connection whose script does not parse, an SMTP
	// provider whose Secret lacks smtp_pass, and a connection whose
	// configuration Secret does not exist.
	good := f.tenant(4, nil)
	f.create(good.TenantObjects()...)
	conn := good.ConnectionObjects()
	conn[1].(*identityv1alpha1.CustomDatabaseConnection).Spec.Scripts.Login.Inline = "function login(email, password, callback) {\n  callback(null, null;\n}\n"
	f.create(conn...)
	cases = append(cases, badCase{"a login script with a syntax error", conn[1].(conditioned), []string{"ScriptInvalid", "PlatformRefused"}, good.Domain})
	provider := good.ProviderObjects()
	delete(provider[0].(*corev1.Secret).StringData, "smtp_pass")
	provider[0].(*corev1.Secret).StringData["smtp_password"] = "wrong-key-name"
	f.create(provider...)
	cases = append(cases, badCase{"an SMTP Secret without smtp_pass", provider[1].(conditioned), []string{"CredentialsSecretInvalid"}, good.Domain})
	noConfig := good
	noConfig.Name = "t004b"
	conn2 := noConfig.ConnectionObjects()[1].(*identityv1alpha1.CustomDatabaseConnection)
	conn2.Spec.TenantRef.Name = good.Name
	conn2.Spec.ConfigurationSecretRef.Name = "no-such-secret"
	f.create(conn2)
	cases = append(cases, badCase{"a connection whose configuration Secret is missing", conn2, []string{"ConfigurationSecretNotFound"}, good.Domain})

	// Each says so.
	for _, c := range cases {
		f.g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(c.obj), c.obj)).To(Succeed())
			ready := meta.FindStatusCondition(c.obj.GetConditions(), identityv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.reasons).To(ContainElement(ready.Reason), ready.Message)
			g.Expect(ready.Message).NotTo(BeEmpty())
		}, time.Minute, 500*time.Millisecond).Should(Succeed(), c.name)
	}

	// Then count what they cost over a window. Other objects of the good
	// tenant are on their resync (one read each per resync).
	time.Sleep(10 * time.Second)
	before := map[string]emulatortest.Requests{}
	for _, c := range cases {
		before[c.domain] = f.emu.Requests(c.domain)
	}
	start := time.Now()
	time.Sleep(run.badInputWindow)
	minutes := time.Since(start).Minutes()
	const bound = 20.0 // calls a minute; a hot loop makes thousands
	seen := map[string]bool{}
	for _, c := range cases {
		ready := meta.FindStatusCondition(c.obj.GetConditions(), identityv1alpha1.ConditionReady)
		d := f.emu.Requests(c.domain).Minus(before[c.domain])
		perMinute := float64(d.Total()) / minutes
		figure(t, "%s: Ready=False %s (%q); %.1f calls a minute to its tenant", c.name, ready.Reason, ready.Message, perMinute)
		if !seen[c.domain] {
			f.g.Expect(perMinute).To(BeNumerically("<=", bound), "%s: calls %v", c.name, d.Lines())
		}
		seen[c.domain] = true
	}
	f.g.Expect(operator.Running()).To(BeTrue(), "the operator exited")
}
