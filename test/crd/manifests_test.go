package crd_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantops/identity-operator/internal/testenv"
)

// readManifests decodes every YAML document of a file.
func readManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.ReadManifests(path)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// wants returns the "# want: ..." lines of a corpus file: the substrings the
// API server's refusal must contain.
func wants(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if w, ok := strings.CutPrefix(scanner.Text(), "# want: "); ok {
			out = append(out, w)
		}
	}
	return out
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "crd-test-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return ns.Name
}

// apply creates obj, or replaces the spec of the object already there, the
// way `kubectl apply` of a changed manifest does.
func apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	err := c.Create(ctx, obj.DeepCopy())
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(obj.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
		return err
	}
	current.Object["spec"] = obj.Object["spec"]
	return c.Update(ctx, current)
}

// place puts namespaced objects into ns; cluster-scoped kinds stay as they are.
func place(obj *unstructured.Unstructured, ns string) {
	if obj.GetKind() != "PlatformMigration" && obj.GetKind() != "Namespace" {
		obj.SetNamespace(ns)
	}
}

func deleteAll(c client.Client, objs []*unstructured.Unstructured) {
	for _, obj := range objs {
		_ = c.Delete(context.Background(), obj)
	}
}

func TestEverySampleIsAccepted(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var samples []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			samples = append(samples, f)
		}
	}
	if len(samples) < 7 {
		t.Fatalf("expected a sample per kind and per migration, found %d files", len(samples))
	}
	ns := newNamespace(t, env.Client)
	kinds := map[string]int{}
	for _, path := range samples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			g := NewWithT(t)
			objs := readManifests(t, path)
			t.Cleanup(func() { deleteAll(env.Client, objs) })
			for _, obj := range objs {
				place(obj, ns)
				g.Expect(apply(ctx(t), env.Client, obj)).To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())
				kinds[obj.GetKind()]++
			}
		})
	}
	g := NewWithT(t)
	g.Expect(kinds).To(HaveKeyWithValue("PlatformMigration", 6), "one sample per migration of the design, and the current runtime ends of life")
	g.Expect(kinds).To(HaveKey("Tenant"))
	g.Expect(kinds).To(HaveKey("EmailProvider"))
	g.Expect(kinds).To(HaveKey("CustomDatabaseConnection"))
}

// The refusal must name a field: "spec", or a path under it.
var namesAField = regexp.MustCompile(`\bspec(\.[A-Za-z0-9_\[\]]+)*: `)

func TestEveryInvalidManifestIsRefusedNamingTheField(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("the corpus should hold at least 40 manifests, it holds %d", len(files))
	}
	ns := newNamespace(t, env.Client)
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			g := NewWithT(t)
			objs := readManifests(t, path)
			expected := wants(t, path)
			g.Expect(objs).NotTo(BeEmpty())
			g.Expect(expected).NotTo(BeEmpty(), "a corpus file says what error it must produce with '# want:' lines")
			t.Cleanup(func() { deleteAll(env.Client, objs) })

			// Every document but the last sets the stage and must be accepted.
			for _, obj := range objs {
				place(obj, ns)
			}
			for _, obj := range objs[:len(objs)-1] {
				g.Expect(apply(ctx(t), env.Client, obj)).To(Succeed(), "the setup document must be valid")
			}
			err := apply(ctx(t), env.Client, objs[len(objs)-1])
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid manifest")
			t.Logf("refused: %v", err)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "refused for the wrong reason: %v", err)
			g.Expect(err.Error()).To(MatchRegexp(namesAField.String()), "the message must name the field")
			for _, w := range expected {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}
