package controllers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenantops/identity-operator/internal/identity"
)

// The transitions' rules, on a recording stand-in for one tenant's client
// (the end-to-end proof is TestMigrationIsEnforcedWithinASecondOfARealDeadline
// and the reliability suite's kill at the date).

// patchCounter counts the settings PATCHes sent through it, and how many
// were in flight at once at most.
type patchCounter struct {
	identity.Client
	delay             time.Duration
	sent, inFlight    atomic.Int32
	reads             atomic.Int32
	mu                sync.Mutex
	mostInFlightAtOne int32
}

func (p *patchCounter) PatchTenantSettings(ctx context.Context, _ identity.SettingsPatch) (*identity.TenantSettings, error) {
	n := p.inFlight.Add(1)
	p.mu.Lock()
	p.mostInFlightAtOne = max(p.mostInFlightAtOne, n)
	p.mu.Unlock()
	defer p.inFlight.Add(-1)
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.sent.Add(1)
	return &identity.TenantSettings{Flags: map[string]bool{"change_pwd_flow_v1": false}}, nil
}

func (p *patchCounter) GetTenantSettings(context.Context) (*identity.TenantSettings, error) {
	p.reads.Add(1)
	return &identity.TenantSettings{}, nil
}

func startTransitions(t *testing.T, c clock.PassiveClock, parallelism int) *transitions {
	tr := newTransitions(c, parallelism)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = tr.Start(ctx) }()
	t.Cleanup(cancel)
	// Start has run once the lifetime is the manager's.
	NewWithT(t).Eventually(func() bool { tr.mu.Lock(); defer tr.mu.Unlock(); return tr.lifetime == ctx }).Should(BeTrue())
	return tr
}

var transitionKey = types.NamespacedName{Namespace: "team-a", Name: "acme"}

func TestTransitionIsSentAtItsMomentNotBefore(t *testing.T) {
	g := NewWithT(t)
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clocktesting.NewFakePassiveClock(at.Add(-20 * time.Second))
	tr := startTransitions(t, fake, 4)
	api := &patchCounter{}
	tr.prepare(transitionKey, at, "h1", api, identity.SettingsPatch{})

	fake.SetTime(at.Add(-time.Nanosecond))
	_, _, ok := tr.outcome(context.Background(), transitionKey, "h1")
	g.Expect(ok).To(BeFalse(), "1ns before the moment a pass gets no outcome")
	g.Expect(api.sent.Load()).To(BeZero(), "sent before its moment")

	fake.SetTime(at)
	settings, err, ok := tr.outcome(context.Background(), transitionKey, "h1")
	g.Expect(ok).To(BeTrue(), "exactly at the moment the pass takes the outcome")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(settings.Flags).To(HaveKeyWithValue("change_pwd_flow_v1", false))
	g.Expect(api.sent.Load()).To(BeEquivalentTo(1))
	g.Expect(tr.pending()).To(BeZero(), "the outcome is taken once")

	_, _, ok = tr.outcome(context.Background(), transitionKey, "h1")
	g.Expect(ok).To(BeFalse(), "a later pass goes its usual way")
	g.Consistently(api.sent.Load, 1500*time.Millisecond, 100*time.Millisecond).Should(BeEquivalentTo(1), "the timer sent it again")
}

func TestTransitionTimerAndPassSendOnce(t *testing.T) {
	g := NewWithT(t)
	at := time.Now().Add(100 * time.Millisecond)
	tr := startTransitions(t, clock.RealClock{}, 4)
	api := &patchCounter{delay: 50 * time.Millisecond}
	tr.prepare(transitionKey, at, "h1", api, identity.SettingsPatch{})
	// Prepared again by another pass before the moment: still one.
	tr.prepare(transitionKey, at, "h1", api, identity.SettingsPatch{})

	time.Sleep(time.Until(at))
	_, err, ok := tr.outcome(context.Background(), transitionKey, "h1")
	g.Expect(ok).To(BeTrue())
	g.Expect(err).NotTo(HaveOccurred())
	g.Consistently(api.sent.Load, 300*time.Millisecond, 20*time.Millisecond).Should(BeEquivalentTo(1))
}

func TestTransitionForAStateNoLongerWantedIsDropped(t *testing.T) {
	g := NewWithT(t)
	at := time.Now().Add(100 * time.Millisecond)
	tr := startTransitions(t, clock.RealClock{}, 4)
	api := &patchCounter{}
	tr.prepare(transitionKey, at, "h1", api, identity.SettingsPatch{})

	// The spec changed before the moment: the pass wants h2.
	_, _, ok := tr.outcome(context.Background(), transitionKey, "h2")
	g.Expect(ok).To(BeFalse())
	g.Expect(tr.pending()).To(BeZero())
	time.Sleep(time.Until(at) + 200*time.Millisecond)
	g.Expect(api.sent.Load()).To(BeZero(), "a stale PATCH was sent")
}

func TestTransitionsSendEveryTenantAtOnceWithinTheBound(t *testing.T) {
	g := NewWithT(t)
	at := time.Now().Add(200 * time.Millisecond)
	tr := startTransitions(t, clock.RealClock{}, 8)
	api := &patchCounter{delay: 20 * time.Millisecond}
	var sentAt sync.Map
	tr.sent = func(key types.NamespacedName) { sentAt.Store(key, time.Now()) }
	const tenants = 64
	for i := 0; i < tenants; i++ {
		tr.prepare(types.NamespacedName{Namespace: "team-a", Name: fmt.Sprintf("t%02d", i)}, at, "h1", api, identity.SettingsPatch{})
	}
	g.Eventually(api.sent.Load, 5*time.Second, 10*time.Millisecond).Should(BeEquivalentTo(tenants))
	var last time.Time
	sentAt.Range(func(_, v any) bool {
		if t := v.(time.Time); t.After(last) {
			last = t
		}
		g.Expect(v.(time.Time).Before(at)).To(BeFalse(), "sent before the moment")
		return true
	})
	// 64 PATCHes of 20 ms, 8 at a time: 8 waves, 160 ms, with nothing
	// waiting for any pass or status write.
	g.Expect(last.Sub(at)).To(BeNumerically("<", time.Second))
	g.Expect(api.mostInFlightAtOne).To(BeNumerically("<=", 8), "more in flight than the bound")
	g.Expect(api.mostInFlightAtOne).To(BeNumerically(">", 1), "sent one at a time")
}

func TestTransitionPreparedEarlyWarmsTheConnectionOnceThenSendsAtTheMoment(t *testing.T) {
	g := NewWithT(t)
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	warm := at.Add(-20 * time.Second)
	fake := clocktesting.NewFakePassiveClock(at.Add(-2 * time.Minute))
	tr := startTransitions(t, fake, 4)
	api := &patchCounter{}
	tr.prepare(transitionKey, at, "h1", api, identity.SettingsPatch{})

	fake.SetTime(warm.Add(-time.Nanosecond))
	g.Consistently(api.reads.Load, 1500*time.Millisecond, 100*time.Millisecond).Should(BeZero(), "warmed before WarmUp")
	fake.SetTime(warm)
	g.Eventually(api.reads.Load, 3*time.Second, 50*time.Millisecond).Should(BeEquivalentTo(1), "not warmed at WarmUp")
	g.Consistently(api.sent.Load, 1500*time.Millisecond, 100*time.Millisecond).Should(BeZero(), "sent before its moment")

	fake.SetTime(at)
	g.Eventually(api.sent.Load, 3*time.Second, 50*time.Millisecond).Should(BeEquivalentTo(1))
	g.Expect(api.reads.Load()).To(BeEquivalentTo(1), "warmed more than once")
}
