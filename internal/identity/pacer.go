package identity

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// RateLimitStatus is the tenant's rate-limit budget as the platform last reported it.
type RateLimitStatus struct {
	// Limit is X-RateLimit-Limit: the budget's size (the burst).
	Limit int
	// Remaining is X-RateLimit-Remaining: requests left when the response was sent.
	Remaining int
	// Reset is X-RateLimit-Reset: when the budget is whole again.
	Reset time.Time
	// ObservedAt is when the client read these headers.
	ObservedAt time.Time
}

// resetMargin is added to waits for the reset: the header has whole-second resolution
// and the two clocks are not the same clock.
const resetMargin = 100 * time.Millisecond

// pacer spaces one tenant's requests so that, in steady state, the platform never has to
// answer 429. It is shared by every caller of the tenant, concurrent ones included.
//
// The policy: the budget left (X-RateLimit-Remaining, less the requests sent since that
// response) is spread evenly over the time until X-RateLimit-Reset. For a token bucket
// this converges to the refill rate with part of the burst in reserve; for a fixed
// window it spreads the window's budget. With no budget left the pacer waits for the
// reset. When it knows nothing fresh (first use, after an idle spell past the reset, or
// when the platform sends no headers) it lets one request through at a time until a
// response tells it the budget. After a 429 every caller waits for the time the
// platform asked for.
type pacer struct {
	clock clock.Clock
	// observe receives each budget read, for metrics.
	onBudget func(RateLimitStatus)

	mu           sync.Mutex
	known        bool      // limit, remaining and reset describe the present
	limit        int       // X-RateLimit-Limit
	remaining    int       // the last Remaining less the requests let through since
	reset        time.Time // X-RateLimit-Reset
	last         time.Time // when the last request was let through
	probing      bool      // a request is finding out the budget
	blockedUntil time.Time // set by a 429
	seq          uint64    // requests let through so far
	appliedSeq   uint64    // the newest request whose headers were applied
	changed      chan struct{}
	status       RateLimitStatus
	hasStatus    bool
}

// pacerTicket is one request let through by the pacer.
type pacerTicket struct {
	seq   uint64
	probe bool
}

func newPacer(clk clock.Clock, onBudget func(RateLimitStatus)) *pacer {
	return &pacer{clock: clk, onBudget: onBudget, changed: make(chan struct{})}
}

// wait blocks until the tenant's budget allows one more request, or ctx ends.
func (p *pacer) wait(ctx context.Context) (pacerTicket, error) {
	for {
		p.mu.Lock()
		t, d, ok := p.admitLocked(p.clock.Now())
		ch := p.changed
		p.mu.Unlock()
		if ok {
			return t, nil
		}
		if err := sleepCtx(ctx, p.clock, d, ch); err != nil {
			return pacerTicket{}, err
		}
	}
}

// admitLocked lets a request through now, or says how long to wait before asking again
// (a change of the budget wakes waiters earlier).
func (p *pacer) admitLocked(now time.Time) (pacerTicket, time.Duration, bool) {
	if now.Before(p.blockedUntil) {
		return pacerTicket{}, p.blockedUntil.Sub(now), false
	}
	if p.known && !now.Before(p.reset) {
		// The budget has been renewed since we last heard: how far is unknown.
		p.known = false
	}
	if !p.known {
		if p.probing {
			return pacerTicket{}, time.Second, false
		}
		p.probing = true
		p.seq++
		p.last = now
		return pacerTicket{seq: p.seq, probe: true}, 0, true
	}
	if p.remaining <= 0 {
		return pacerTicket{}, p.reset.Sub(now) + resetMargin, false
	}
	gap := p.reset.Sub(now) / time.Duration(p.remaining)
	if next := p.last.Add(gap); now.Before(next) {
		return pacerTicket{}, next.Sub(now), false
	}
	p.remaining--
	p.seq++
	p.last = now
	return pacerTicket{seq: p.seq}, 0, true
}

// done records the outcome of a request let through: the rate-limit headers of its
// response (h nil when none came).
func (p *pacer) done(t pacerTicket, h http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.probe {
		p.probing = false
	}
	limit, remaining, reset, ok := parseRateLimit(h)
	if ok && t.seq > p.appliedSeq {
		now := p.clock.Now()
		p.appliedSeq = t.seq
		p.limit = limit
		// Requests let through after this one may already have been counted by the
		// platform: assume they all were.
		p.remaining = remaining - int(p.seq-t.seq)
		p.reset = reset
		if !p.reset.After(now) {
			// A reset in the past (clock skew, or a budget that is already whole):
			// assume the header's one-second resolution rather than a free-for-all.
			p.reset = now.Add(time.Second)
		}
		p.known = true
		p.status = RateLimitStatus{Limit: limit, Remaining: remaining, Reset: reset, ObservedAt: now}
		p.hasStatus = true
		if p.onBudget != nil {
			p.onBudget(p.status)
		}
	}
	p.notifyLocked()
}

// block makes every caller wait until the given time, after a 429.
func (p *pacer) block(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.blockedUntil) {
		p.blockedUntil = until
	}
	p.remaining = 0
	p.notifyLocked()
}

func (p *pacer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// budget returns the last budget the platform reported.
func (p *pacer) budget() (RateLimitStatus, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.hasStatus
}

// parseRateLimit reads X-RateLimit-Limit, -Remaining and -Reset (epoch seconds).
func parseRateLimit(h http.Header) (limit, remaining int, reset time.Time, ok bool) {
	if h == nil {
		return 0, 0, time.Time{}, false
	}
	l, err1 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit")))
	r, err2 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	rs, err3 := strconv.ParseFloat(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 64)
	if err1 != nil || err2 != nil || err3 != nil || l < 0 || r < 0 || rs < 0 || math.IsInf(rs, 0) || math.IsNaN(rs) {
		return 0, 0, time.Time{}, false
	}
	sec, frac := math.Modf(rs)
	return l, r, time.Unix(int64(sec), int64(frac*1e9)), true
}

// retryAfter is how long a 429 asks to wait: Retry-After (seconds or an HTTP date),
// else X-RateLimit-Reset. ok is false when neither names a time in the future.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil {
			if secs > 0 {
				return time.Duration(secs) * time.Second, true
			}
			return 0, false
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d, true
			}
			return 0, false
		}
	}
	if _, _, reset, ok := parseRateLimit(h); ok {
		if d := reset.Sub(now); d > 0 {
			return d + resetMargin, true
		}
	}
	return 0, false
}

// sleepCtx waits for d, or until wake is closed, or ctx ends.
func sleepCtx(ctx context.Context, clk clock.Clock, d time.Duration, wake <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	case <-wake:
		return nil
	}
}
