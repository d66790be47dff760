package identity

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// The breaker's schedule. A tenant is taken for down after breakerThreshold requests in
// a row failed; then one probe goes after probeFirst, and each failed probe doubles the
// wait up to probeMax. Opened by one caller's request and its two retries, the breaker
// lets 3 requests and then probes at 2, 6, 14, 30 and 46 s reach a tenant in its first
// minute down: 8. Concurrent callers can each have one request under way when it opens
// (Tenant, EmailProvider and CustomDatabaseConnection: two more), hence at most 10.
const (
	breakerThreshold = 3
	probeFirst       = 2 * time.Second
	probeMax         = 16 * time.Second
)

// breaker is one tenant's circuit breaker, shared, like the pacer, by every client of the
// tenant's endpoint, so that a tenant that is down draws a trickle of requests whatever
// the number of reconcilers and objects calling it.
//
//   - Closed: every request goes. A request the tenant does not answer (a 5xx, or no
//     answer: connection refused or reset, a timeout) counts a failure; any answer
//     below 500 (2xx, 4xx, 429) clears the count. At breakerThreshold failures in a row
//     it opens.
//   - Open: calls fail at once, without a request, with a *TenantDownError that says
//     when the next probe is due. From then, the first call finds the probe due is let
//     through as the probe, alone: the others still fail at once. A failed probe
//     doubles the wait for the next (up to probeMax); an answer closes the breaker and
//     tells the pool's subscribers, so that the objects of the tenant are reconciled at
//     once rather than at their next retry.
//
// A caller that gives up (its context ended) or a refusal that says nothing about the
// tenant (a certificate that does not verify) leaves the state as it was.
type breaker struct {
	clock clock.Clock
	// domain names the tenant in errors.
	domain string
	// onState receives the state on every change, for the gauge; it is called
	// under the lock, so that changes in quick succession are published in order.
	onState func(open bool)
	// onRecovered is called, outside the lock, when the breaker closes again.
	onRecovered func()

	mu        sync.Mutex
	failures  int       // requests failed in a row
	since     time.Time // when the first of them failed
	last      error     // the newest failure
	open      bool
	wait      time.Duration // from the current probe (or the opening) to the next
	nextProbe time.Time
	probing   bool
	// opened is closed when the breaker opens, to wake callers sleeping before a retry:
	// they would only be refused.
	opened chan struct{}
}

func newBreaker(clk clock.Clock, domain string, onState func(bool), onRecovered func()) *breaker {
	b := &breaker{clock: clk, domain: domain, onState: onState, onRecovered: onRecovered, opened: make(chan struct{})}
	if onState != nil {
		onState(false)
	}
	return b
}

// admission is one request let through by the breaker.
type admission struct {
	probe bool
}

// admit lets one request go, or refuses it while the tenant is taken for down. A nil
// breaker (a client made with New) lets everything go.
func (b *breaker) admit(op string) (admission, error) {
	if b == nil {
		return admission{}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return admission{}, nil
	}
	now := b.clock.Now()
	if b.probing || now.Before(b.nextProbe) {
		return admission{}, b.refusalLocked(op, now)
	}
	// This request is the probe. Whoever comes while it is out is told when the next
	// one would be due if it fails.
	b.probing = true
	b.wait = min(2*b.wait, probeMax)
	b.nextProbe = now.Add(b.wait)
	return admission{probe: true}, nil
}

// recheck refuses, right before it is sent, a request admitted while the breaker was
// closed that has had to wait (for the rate-limit budget) while the breaker opened.
func (b *breaker) recheck(op string, a admission) error {
	if a.probe {
		return nil
	}
	return b.refusal(op)
}

// refusalLocked is the error of a call refused at now.
func (b *breaker) refusalLocked(op string, now time.Time) *TenantDownError {
	return &TenantDownError{Operation: op, Domain: b.domain, Since: b.since, NextProbe: b.nextProbe,
		RetryAfter: b.nextProbe.Sub(now), Failures: b.failures, cause: b.last}
}

// answered records that the tenant answered a request (any status below 500).
func (b *breaker) answered() {
	if b == nil {
		return
	}
	b.mu.Lock()
	wasOpen := b.open
	// An answer to any request, the probe or one sent before the breaker opened, says
	// the tenant is back.
	b.failures, b.since, b.last = 0, time.Time{}, nil
	b.open, b.probing = false, false
	if wasOpen && b.onState != nil {
		b.onState(false)
	}
	b.mu.Unlock()
	if wasOpen && b.onRecovered != nil {
		b.onRecovered()
	}
}

// failed records that the tenant did not answer a request (a 5xx, or no response).
func (b *breaker) failed(a admission, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	now := b.clock.Now()
	if b.failures == 0 {
		b.since = now
	}
	b.failures++
	b.last = err
	switch {
	case a.probe:
		// The next probe is due where admit said, counted from the probe's start, so
		// that a slow answer does not stretch the schedule.
		b.probing = false
	case !b.open && b.failures >= breakerThreshold:
		b.open, b.wait, b.nextProbe = true, probeFirst, now.Add(probeFirst)
		close(b.opened)
		b.opened = make(chan struct{})
		if b.onState != nil {
			b.onState(true)
		}
	}
	b.mu.Unlock()
}

// abandoned releases a request that says nothing about the tenant: the caller gave up,
// or the request could not be made.
func (b *breaker) abandoned(a admission) {
	if b == nil || !a.probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	// Whoever calls next probes at once: this one found out nothing.
	b.nextProbe = b.clock.Now()
}

// refusal is the error a call that just failed returns instead of retrying, while the
// tenant is taken for down (nil while the breaker is closed): its retry would only be
// refused, and sleeping first would only delay the answer.
func (b *breaker) refusal(op string) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return nil
	}
	return b.refusalLocked(op, b.clock.Now())
}

// openedSignal is closed the next time the breaker opens (nil for no breaker: never).
func (b *breaker) openedSignal() <-chan struct{} {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opened
}

// isOpen reports whether the tenant is taken for down.
func (b *breaker) isOpen() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}
