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

// pacer spaces one tenant's requests so that the platform never has to answer 429 in
// steady state. It is shared by every caller of the tenant, concurrent ones included.
//
// It keeps a conservative copy of the platform's token bucket: a lower bound on the
// tokens the platform holds, and a lower bound on the refill rate. A request goes only
// when the lower bound says a token is there, so no request is refused while the
// platform's limit stays what it was, and the client still runs at (nearly) the refill
// rate with the burst spent first.
//
//   - Tokens: each response's X-RateLimit-Remaining, less every request the platform may
//     have counted after it (answers arrive in any order: all those whose outcome was
//     not known when it was sent), plus the refill since. At X-RateLimit-Reset the
//     bucket is full again, whatever the rate estimate says; the reset is moved to the
//     client's clock with the Date header, so that clock skew cannot make it early.
//   - Rate: the best of two lower bounds. One response alone: the tokens missing cannot
//     refill faster than by the reset, (Limit-Remaining-1)/(Reset-sent). Two responses of
//     a busy spell, with the requests between them counted: (R2-R1-1+requests)/(elapsed),
//     whose error shrinks as the spell grows (about 2 tokens over the whole spell). Only
//     the client's clock measures the second, so clock skew cannot inflate it.
//
// When it knows nothing (first use, or a platform that sends no X-RateLimit-* headers)
// one request at a time finds out. After a 429 every
// caller waits for the time the platform asked and the rate is learnt again, in case the
// limit was lowered.
type pacer struct {
	clock clock.Clock
	// onBudget receives each budget read, for metrics.
	onBudget func(RateLimitStatus)

	mu           sync.Mutex
	known        bool      // a response has told the budget
	limit        int       // X-RateLimit-Limit
	tokens       float64   // lower bound on the platform's tokens at tokensAt
	tokensAt     time.Time // when tokens was computed
	reset        time.Time // X-RateLimit-Reset of the newest response, by the client's clock
	sentSinceObs int       // requests the platform may have counted after the newest response
	rate         float64   // lower bound on the refill rate, per second; 0: unknown
	probing      bool      // a request is finding out the budget
	blockedUntil time.Time // set by a 429
	seq          uint64    // requests let through so far
	completed    int       // requests let through whose outcome is known

	// The reference response of the current busy spell, for the two-response bound.
	epoch            uint64
	refOK            bool
	refSent          time.Time
	refRemaining     int
	completedInEpoch int // responses (not 429) to requests let through in this epoch

	changed   chan struct{}
	status    RateLimitStatus
	hasStatus bool
}

// pacerTicket is one request let through by the pacer.
type pacerTicket struct {
	probe bool
	sent  time.Time
	epoch uint64
	// completedBefore counts the answers of this epoch received before it was sent.
	completedBefore int
	// completedTotalBefore counts all outcomes known before it was sent: those requests
	// were counted by the platform before this one, every other may come after it.
	completedTotalBefore int
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

// tokensAtLocked is the lower bound on the platform's tokens at now.
func (p *pacer) tokensAtLocked(now time.Time) float64 {
	t := p.tokens
	if p.rate > 0 && now.After(p.tokensAt) {
		t += p.rate * now.Sub(p.tokensAt).Seconds()
	}
	if lim := float64(p.limit); t > lim {
		t = lim
	}
	if !now.Before(p.reset.Add(resetMargin)) {
		// The platform said the bucket is full by then.
		t = max(t, float64(p.limit-p.sentSinceObs))
	}
	return t
}

// admitLocked lets a request through now, or says how long to wait before asking again
// (a change of the budget wakes waiters earlier).
func (p *pacer) admitLocked(now time.Time) (pacerTicket, time.Duration, bool) {
	if now.Before(p.blockedUntil) {
		return pacerTicket{}, p.blockedUntil.Sub(now), false
	}
	if !p.known {
		if p.probing {
			return pacerTicket{}, time.Second, false
		}
		p.probing = true
		return p.issueLocked(now, true), 0, true
	}
	avail := p.tokensAtLocked(now)
	if avail >= 1 {
		p.tokens, p.tokensAt = avail-1, now
		p.sentSinceObs++
		return p.issueLocked(now, false), 0, true
	}
	untilReset := p.reset.Add(resetMargin).Sub(now)
	if inFlight := int(p.seq) - p.completed; untilReset <= 0 && p.rate == 0 && inFlight == 0 {
		// Nothing known will refill the estimate: the reset is past, the rate unknown
		// (after a 429), no answer is awaited, and the answers since carried no budget
		// (5xx from a platform in trouble). Find out again, one request at a time, as
		// at first use; waiting for a refill here would hold every caller of the
		// tenant for ever.
		return p.issueLocked(now, true), 0, true
	}
	wait := time.Second // nothing better known: wait for an answer in flight
	if untilReset > 0 {
		wait = untilReset
	}
	if p.rate > 0 {
		refill := time.Duration((1 - avail) / p.rate * float64(time.Second))
		wait = min(wait, refill)
	}
	return pacerTicket{}, max(wait, time.Millisecond), false
}

func (p *pacer) issueLocked(now time.Time, probe bool) pacerTicket {
	p.seq++
	return pacerTicket{probe: probe, sent: now, epoch: p.epoch,
		completedBefore: p.completedInEpoch, completedTotalBefore: p.completed}
}

// done records the outcome of a request let through: its status (0 when no response
// came) and the rate-limit headers of its response (nil when none).
func (p *pacer) done(t pacerTicket, status int, h http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notifyLocked()
	if t.probe {
		p.probing = false
	}
	p.completed++
	limited := status == http.StatusTooManyRequests
	if status != 0 && !limited && t.epoch == p.epoch {
		p.completedInEpoch++
	}
	limit, remaining, reset, ok := parseRateLimit(h)
	if !ok {
		return
	}
	now := p.clock.Now()
	limitChanged := p.known && limit != p.limit
	if limited || limitChanged {
		// The estimate may have been too high: learn it again.
		p.rate = 0
	}
	p.limit = limit
	// Answers arrive in any order, and the platform may have counted, after this
	// request, every other one whose outcome was not known when this one was sent.
	unseen := int(p.seq) - t.completedTotalBefore - 1
	bound := float64(remaining - unseen)
	if p.known && !limitChanged && !limited {
		// Both are lower bounds: keep the better.
		bound = max(bound, p.tokensAtLocked(now))
	}
	p.tokens, p.tokensAt = bound, now
	p.sentSinceObs = unseen
	p.reset = localReset(reset, h, now)
	p.known = true

	if !limited {
		// One response: the missing tokens refill no faster than by the reset.
		if missing := float64(limit - remaining - 1); missing > 0 {
			if w := p.reset.Sub(t.sent).Seconds(); w > 0 {
				p.rate = max(p.rate, missing/w)
			}
		}
		// Two responses of one spell.
		if p.refOK && t.epoch == p.epoch {
			processed := t.completedBefore + 1
			if w := now.Sub(p.refSent).Seconds(); w > 0 {
				p.rate = max(p.rate, float64(remaining-p.refRemaining-1+processed)/w)
			}
		}
	}
	// A new reference when there is none, when the bucket was full (refills were lost
	// since the old one, which would only weaken the bound), or after a surprise.
	if !p.refOK || remaining >= limit-1 || limited || limitChanged {
		p.refOK, p.refSent, p.refRemaining = true, t.sent, remaining
		p.epoch++
		p.completedInEpoch = 0
	}

	p.status = RateLimitStatus{Limit: limit, Remaining: remaining, Reset: reset, ObservedAt: now}
	p.hasStatus = true
	if p.onBudget != nil {
		p.onBudget(p.status)
	}
}

// localReset turns the platform's reset time into the latest instant of the client's
// clock it can stand for, so that a platform clock running behind cannot make the pacer
// believe a bucket is full too early. When the platform answered, its clock read between
// Date and Date+1s and the client's at most recv: the skew is at least Date-recv.
func localReset(reset time.Time, h http.Header, recv time.Time) time.Time {
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return reset
	}
	return reset.Add(recv.Sub(date))
}

// block makes every caller wait until the given time, after a 429, and then lets one
// request go to find out the budget.
func (p *pacer) block(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.blockedUntil) {
		p.blockedUntil = until
	}
	// The platform promises a request then, and no more until it says so: one token,
	// less what requests still in flight may take.
	p.tokens, p.tokensAt = min(p.tokens, 0)+1, until
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
