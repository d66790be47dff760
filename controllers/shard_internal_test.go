package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tenantops/identity-operator/internal/identity"
)

// A Tenant that leaves this instance's shard at the moment its transition
// PATCH is on its way is let go only once that PATCH has ended: the PATCH is
// sent outside any pass, so the work queue's one-pass-at-a-time guarantee
// does not cover it, and Pass calls Gone (which forgets the transition)
// before it releases the Tenant.
func TestATenantLeavingTheShardIsLetGoOnlyAfterItsTransitionPatch(t *testing.T) {
	g := NewWithT(t)
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := startTransitions(t, clocktesting.NewFakePassiveClock(at), 4)
	api := &patchCounter{delay: 300 * time.Millisecond}
	tr.prepare(transitionKey, at, "h1", api, identity.SettingsPatch{})
	g.Eventually(api.inFlight.Load).Should(BeEquivalentTo(1), "the PATCH went at its moment")

	forgotten := make(chan struct{})
	go func() { tr.forget(transitionKey); close(forgotten) }()
	g.Consistently(forgotten, 100*time.Millisecond).ShouldNot(BeClosed(), "let go while its PATCH was on its way")
	g.Eventually(forgotten).Should(BeClosed())
	g.Expect(api.sent.Load()).To(BeEquivalentTo(1))
	g.Expect(api.inFlight.Load()).To(BeZero())
	g.Expect(tr.pending()).To(BeZero())

	// Nothing prepared, or prepared and not yet due: forgotten at once.
	tr.forget(transitionKey)
	tr.prepare(transitionKey, at.Add(time.Hour), "h2", api, identity.SettingsPatch{})
	tr.forget(transitionKey)
	g.Expect(tr.pending()).To(BeZero())
}
