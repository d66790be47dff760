package shard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

func TestDecideAtTheTakeoverBoundary(t *testing.T) {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const takeover, retry = 10 * time.Minute, 5 * time.Second
	at := since.Add(takeover)
	tests := []struct {
		name           string
		holder         string
		since, now     time.Time
		want           Action
		wantRetry      time.Duration
		wantTakeOverAt time.Time
	}{
		{"held by this instance", "b", since, at.Add(time.Hour), Proceed, 0, time.Time{}},
		{"held by nobody", "", time.Time{}, since, Claim, 0, time.Time{}},
		{"held by another, first seen now", "a", time.Time{}, since, Wait, retry, at},
		{"held by another, a wait recorded in the future (clock moved back)", "a", since.Add(time.Hour), since, Wait, retry, at},
		{"held by another, well before the takeover", "a", since, since.Add(time.Minute), Wait, retry, at},
		{"held by another, closer to the takeover than a retry", "a", since, at.Add(-2 * time.Second), Wait, 2 * time.Second, at},
		{"held by another, 1ns before the takeover", "a", since, at.Add(-time.Nanosecond), Wait, time.Nanosecond, at},
		{"held by another, exactly at the takeover", "a", since, at, TakeOver, 0, time.Time{}},
		{"held by another, 1ns after the takeover", "a", since, at.Add(time.Nanosecond), TakeOver, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := Decide("b", tt.holder, tt.since, tt.now, takeover, retry)
			g.Expect(d.Action).To(Equal(tt.want), d.Action.String())
			g.Expect(d.RetryAfter).To(Equal(tt.wantRetry))
			g.Expect(d.TakeOverAt).To(Equal(tt.wantTakeOverAt))
		})
	}
}

func TestConfigNamesTheInstanceItsLeaseAndTheFlagAtFault(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Config{}.Instance()).To(Equal("default"))
	g.Expect(Config{}.LeaseName()).To(Equal("identity-operator.identity.tenantops.io"), "an unsharded install keeps its lease across the upgrade")
	g.Expect(Config{Name: "default"}.LeaseName()).To(Equal("identity-operator.identity.tenantops.io"))
	g.Expect(Config{Name: "shard1"}.LeaseName()).To(Equal("identity-operator-shard1.identity.tenantops.io"))

	for _, s := range []string{"", "!sharding.fluxcd.io/key", "sharding.fluxcd.io/key in (shard1)", "sharding.fluxcd.io/key=shard1,team!=x"} {
		g.Expect(Config{WatchLabelSelector: s}.Validate()).To(Succeed(), s)
	}
	err := Config{WatchLabelSelector: "sharding.fluxcd.io/key in shard1"}.Validate()
	g.Expect(err).To(MatchError(ContainSubstring("--watch-label-selector")))
	err = Config{Name: "Shard_1"}.Validate()
	g.Expect(err).To(MatchError(ContainSubstring("--shard-name")))
}

// claimerFixture is a Claimer for shard "b" (selecting the objects labelled
// b) over a fake API server holding one Tenant.
type claimerFixture struct {
	g        *WithT
	c        client.Client
	clock    *clocktesting.FakeClock
	recorder *record.FakeRecorder
	claimer  *Claimer
	key      client.ObjectKey
}

func newClaimerFixture(t *testing.T, holder string, labels map[string]string) *claimerFixture {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(identityv1alpha1.AddToScheme(scheme)).To(Succeed())
	obj := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: "team-a", Labels: labels}}
	obj.Status.Shard = holder
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(obj).WithStatusSubresource(obj).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	recorder := record.NewFakeRecorder(10)
	claimer := NewClaimer(Config{Name: "b", WatchLabelSelector: identityv1alpha1.ShardLabel + " in (b)"}, c, c, clk, recorder, 10*time.Minute)
	return &claimerFixture{g: g, c: c, clock: clk, recorder: recorder, claimer: claimer, key: client.ObjectKeyFromObject(obj)}
}

func (f *claimerFixture) get() *identityv1alpha1.Tenant {
	obj := &identityv1alpha1.Tenant{}
	f.g.Expect(f.c.Get(context.Background(), f.key, obj)).To(Succeed())
	return obj
}

func (f *claimerFixture) events() string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}

func TestAnUnheldObjectIsClaimedBeforeAnything(t *testing.T) {
	f := newClaimerFixture(t, "", map[string]string{identityv1alpha1.ShardLabel: "b"})
	obj := f.get()
	f.g.Expect(f.claimer.Claim(context.Background(), obj)).To(Succeed())
	f.g.Expect(obj.Status.Shard).To(Equal("b"))
	f.g.Expect(f.get().Status.Shard).To(Equal("b"), "the claim is written before the pass goes on")
}

func TestOfTwoClaimsOnTheSameVersionOneLoses(t *testing.T) {
	f := newClaimerFixture(t, "", nil)
	stale := f.get()
	other := NewClaimer(Config{}, f.c, f.c, f.clock, f.recorder, 10*time.Minute)
	f.g.Expect(other.Claim(context.Background(), f.get())).To(Succeed())

	err := f.claimer.Claim(context.Background(), stale)
	f.g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
	f.g.Expect(stale.Status.Shard).To(BeEmpty(), "a lost claim leaves nothing behind for the pass's own status patch")
	f.g.Expect(f.get().Status.Shard).To(Equal("default"))
}

func TestAnObjectHeldByAnotherShardWaitsThenIsTakenOver(t *testing.T) {
	f := newClaimerFixture(t, "a", map[string]string{identityv1alpha1.ShardLabel: "b"})
	obj := f.get()
	err := f.claimer.Claim(context.Background(), obj)
	var waiting *reconcile.WaitingError
	f.g.Expect(errors.As(err, &waiting)).To(BeTrue(), "got %v", err)
	f.g.Expect(waiting.Reason).To(Equal(ReasonShardHandoff))
	f.g.Expect(waiting.RequeueAfter).To(Equal(DefaultRetry))
	c := meta.FindStatusCondition(obj.Status.Conditions, identityv1alpha1.ConditionShardHandoff)
	f.g.Expect(c).NotTo(BeNil())
	f.g.Expect(c.Message).To(And(ContainSubstring(`shard "a" holds this object`), ContainSubstring("2026-12-01T10:10:00Z")))
	f.g.Expect(obj.Status.Shard).To(Equal("a"))

	f.clock.Step(10*time.Minute - time.Nanosecond)
	f.g.Expect(f.claimer.Claim(context.Background(), f.get())).To(HaveOccurred(), "1ns before the takeover it still waits")
	f.g.Expect(f.events()).To(BeEmpty())

	f.clock.Step(time.Nanosecond)
	obj = f.get()
	f.g.Expect(f.claimer.Claim(context.Background(), obj)).To(Succeed())
	f.g.Expect(f.get().Status.Shard).To(Equal("b"))
	f.g.Expect(meta.FindStatusCondition(obj.Status.Conditions, identityv1alpha1.ConditionShardHandoff)).To(BeNil())
	f.g.Expect(f.events()).To(And(ContainSubstring("Warning ShardTakeover"), ContainSubstring(`shard "a" did not let go`)))
}

func TestAWaitStartsAgainWhenTheHolderChanges(t *testing.T) {
	f := newClaimerFixture(t, "a", nil)
	f.g.Expect(f.claimer.Claim(context.Background(), f.get())).To(HaveOccurred())
	f.clock.Step(9 * time.Minute)
	obj := f.get()
	obj.Status.Shard = "c"
	err := f.claimer.Claim(context.Background(), obj)
	var waiting *reconcile.WaitingError
	f.g.Expect(errors.As(err, &waiting)).To(BeTrue())
	f.g.Expect(waiting.Message).To(ContainSubstring("2026-12-01T10:19:00Z"), "the wait on c started when c was seen")
}

func TestAnObjectThatLeftTheSelectionIsReleased(t *testing.T) {
	tests := []struct {
		name        string
		holder      string
		labels      map[string]string
		wantShard   string
		wantRelease bool
	}{
		{"held here, moved to another shard", "b", map[string]string{identityv1alpha1.ShardLabel: "c"}, "", true},
		{"held here, back in the selection", "b", map[string]string{identityv1alpha1.ShardLabel: "b"}, "b", false},
		{"held by another", "a", map[string]string{identityv1alpha1.ShardLabel: "c"}, "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newClaimerFixture(t, tt.holder, tt.labels)
			f.g.Expect(f.claimer.Release(context.Background(), f.key, &identityv1alpha1.Tenant{})).To(Succeed())
			f.g.Expect(f.get().Status.Shard).To(Equal(tt.wantShard))
			if tt.wantRelease {
				f.g.Expect(f.events()).To(ContainSubstring(`Normal ShardReleased shard "b" let go of this object`))
			} else {
				f.g.Expect(f.events()).To(BeEmpty())
			}
		})
	}
}

func TestReleasingADeletedObjectIsNothing(t *testing.T) {
	f := newClaimerFixture(t, "b", nil)
	f.g.Expect(f.claimer.Release(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "gone"}, &identityv1alpha1.Tenant{})).To(Succeed())
}
