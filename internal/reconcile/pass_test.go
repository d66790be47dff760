package reconcile

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// A pass cut short by the manager's reconcile timeout still reports why in
// its conditions: the status patch that ends it does not share the pass's
// spent context. (The fake client is made to refuse a done context, as a
// real API client does.)
func TestAPassThatRanOutOfTimeStillReportsIt(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(identityv1alpha1.AddToScheme(scheme)).To(Succeed())
	obj := tenant()
	obj.Generation = 0
	refuseDone := func(ctx context.Context) error { return ctx.Err() }
	c := interceptor.NewClient(
		fake.NewClientBuilder().WithScheme(scheme).WithObjects(obj).WithStatusSubresource(obj).Build(),
		interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				if err := refuseDone(ctx); err != nil {
					return err
				}
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
		})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Pass(ctx, c, Summarizer{}, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)}, &identityv1alpha1.Tenant{},
		Steps[*identityv1alpha1.Tenant]{Apply: func(ctx context.Context, _ *identityv1alpha1.Tenant) (Success, error) {
			<-ctx.Done() // a call to the tenant that hangs until the timeout
			return Success{}, ctx.Err()
		}})
	g.Expect(err).To(MatchError(context.DeadlineExceeded))

	got := &identityv1alpha1.Tenant{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(obj), got)).To(Succeed())
	ready := meta.FindStatusCondition(got.Status.Conditions, identityv1alpha1.ConditionReady)
	g.Expect(ready).NotTo(BeNil(), "the timed-out pass left no condition")
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(ready.Message).To(ContainSubstring("deadline exceeded"))
}

// The status patch that ends a pass carries only what changed in status,
// and nothing at all when status did not change.
func TestStatusPatcherSendsOnlyTheStatusChange(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(identityv1alpha1.AddToScheme(scheme)).To(Succeed())
	obj := tenant()
	obj.Spec.Domain = "acme.example.com"
	obj.Status.MigrationsPending = 2
	var patches []string
	c := interceptor.NewClient(
		fake.NewClientBuilder().WithScheme(scheme).WithObjects(obj).WithStatusSubresource(obj).Build(),
		interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				data, err := p.Data(o)
				g.Expect(err).NotTo(HaveOccurred())
				patches = append(patches, string(data))
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
		})
	got := &identityv1alpha1.Tenant{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(obj), got)).To(Succeed())

	p := NewStatusPatcher(c, got)
	got.Spec.Domain = "changed.example.com" // not status: never sent
	g.Expect(p.Patch(context.Background(), got)).To(Succeed())
	g.Expect(patches).To(BeEmpty(), "status did not change")

	got.Status.MigrationsPending = 0
	got.Status.AppliedHash = "h1"
	g.Expect(p.Patch(context.Background(), got)).To(Succeed())
	g.Expect(patches).To(Equal([]string{`{"status":{"appliedHash":"h1","migrationsPending":0}}`}))

	stored := &identityv1alpha1.Tenant{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(obj), stored)).To(Succeed())
	g.Expect(stored.Status.MigrationsPending).To(BeZero())
	g.Expect(stored.Spec.Domain).To(Equal("acme.example.com"))
}
