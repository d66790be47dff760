package identity

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// tokenBucket is a faithful model of the platform's per-tenant limit: Burst tokens,
// refilled at PerSecond; the headers say the tokens left and when the bucket is full
// again (whole seconds, rounded up); a refusal is the platform's 429 with Retry-After.
type tokenBucket struct {
	burst     float64
	perSecond float64

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	allowed atomic.Int64
	refused atomic.Int64
}

func newTokenBucket(burst int, perSecond float64) *tokenBucket {
	return &tokenBucket{burst: float64(burst), perSecond: perSecond, tokens: float64(burst), last: time.Now()}
}

func (b *tokenBucket) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	now := time.Now()
	b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
	b.last = now
	ok := b.tokens >= 1
	var retry time.Duration
	if ok {
		b.tokens--
	} else {
		retry = time.Duration((1 - b.tokens) / b.perSecond * float64(time.Second))
	}
	remaining := int(math.Floor(b.tokens))
	reset := now.Add(time.Duration((b.burst - b.tokens) / b.perSecond * float64(time.Second)))
	b.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(int(b.burst)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	resetSec := reset.Unix()
	if reset.Nanosecond() > 0 {
		resetSec++
	}
	h.Set("X-RateLimit-Reset", strconv.FormatInt(resetSec, 10))
	if !ok {
		b.refused.Add(1)
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		writeAPIError(w, http.StatusTooManyRequests, "too_many_requests", "Global limit has been reached")
		return
	}
	b.allowed.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{"friendly_name": "paced"})
}

// paceRequests sends n settings reads from workers concurrent callers and returns how
// long they took from the first to the last.
func paceRequests(t *testing.T, c Client, n, workers int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Fetch the token first: the timed part is the Management API's budget.
	if _, err := c.(*client).tokens.get(ctx); err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := c.GetTenantSettings(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatalf("request failed: %v", err)
	}
	return elapsed
}

// checkPacing asserts zero 429s and a total time within tolerance of the bound the limit
// sets: the burst is free, every other request waits for a refill.
func checkPacing(t *testing.T, n, burst int, perSecond, tolerance float64) {
	bucket := newTokenBucket(burst, perSecond)
	f := newFakePlatform(t, bucket.serve)
	c := f.client(t, fastOptions())
	elapsed := paceRequests(t, c, n, 4)
	bound := time.Duration(float64(n-burst) / perSecond * float64(time.Second))
	t.Logf("%d requests, burst %d, %.0f/s: %d allowed, %d refused (429), %v elapsed, bound %v (%.1f%% over)",
		n, burst, perSecond, bucket.allowed.Load(), bucket.refused.Load(), elapsed.Round(time.Millisecond),
		bound, 100*(elapsed.Seconds()/bound.Seconds()-1))
	if got := bucket.refused.Load(); got != 0 {
		t.Errorf("%d requests drew a 429, want none", got)
	}
	if got := bucket.allowed.Load(); got != int64(n) {
		t.Errorf("%d requests allowed, want %d", got, n)
	}
	if max := time.Duration(float64(bound) * (1 + tolerance)); elapsed > max {
		t.Errorf("took %v, more than %v (bound %v + %.0f%%)", elapsed, max, bound, 100*tolerance)
	}
}

// TestPacingDrawsNo429Quickly checks the pacer against a faithful token bucket on a fast
// limit (whole-second resets are coarse next to a 40 ms refill). The acceptance
// test, 200 requests at a burst of 10 and 5/s, runs against the emulator in
// emulator_test.go.
func TestPacingDrawsNo429Quickly(t *testing.T) {
	checkPacing(t, 60, 5, 25, 1.0)
}

func rateHeaders(limit, remaining int, reset time.Time) http.Header {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	return h
}

func TestPacerKeepsALowerBoundOfTheBucket(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	p := newPacer(clk, nil)
	start := clk.Now()
	admit := func() (pacerTicket, time.Duration, bool) { return p.admitLocked(clk.Now()) }

	// Nothing known: one probe at a time.
	t1, _, ok := admit()
	if !ok || !t1.probe {
		t.Fatalf("first request should go as a probe")
	}
	if _, d, ok := admit(); ok || d <= 0 {
		t.Fatalf("a second request went before the probe's answer")
	}
	// 4 tokens left of 10, full again in 3 s: 5 missing tokens (one more may be a
	// fraction) refill at 5/3 per second at least.
	p.done(t1, 200, rateHeaders(10, 4, start.Add(3*time.Second)))
	if p.rate < 5.0/3-1e-9 || p.rate > 5.0/3+1e-9 {
		t.Fatalf("rate = %v, want 5/3", p.rate)
	}
	// The 4 tokens go at once: the burst is not wasted.
	var burst []pacerTicket
	for i := range 4 {
		tk, _, ok := admit()
		if !ok {
			t.Fatalf("request %d of the remaining budget was held back", i+1)
		}
		burst = append(burst, tk)
	}
	// Then one per refill: 1/(5/3) = 600ms.
	if _, d, ok := admit(); ok || d != 600*time.Millisecond {
		t.Fatalf("ok=%v wait=%v, want to wait 600ms for a refill", ok, d)
	}
	clk.Step(600 * time.Millisecond)
	if _, _, ok := admit(); !ok {
		t.Fatal("held back after the refill")
	}

	// The newest answer counts every request still in flight (4 here) as spent:
	// 5 left, so 1 may go.
	p.done(burst[3], 200, rateHeaders(10, 5, start.Add(3*time.Second)))
	if _, _, ok := admit(); !ok {
		t.Fatal("held back with a token left")
	}
	if _, _, ok := admit(); ok {
		t.Fatal("let through beyond the budget")
	}
	// Answers arrive in any order: a late one for an earlier request (which the
	// platform may have counted before or after the others) adds only what it proves.
	p.done(burst[0], 200, rateHeaders(10, 3, start.Add(3*time.Second)))
	if _, _, ok := admit(); ok {
		t.Fatal("a late answer let through beyond the budget")
	}
	if st, _ := p.budget(); st.Remaining != 3 {
		t.Errorf("budget = %+v, want the last answer's", st)
	}

	// After a 429 everyone waits for the time asked, and the rate is learnt again.
	tk, _, _ := func() (pacerTicket, time.Duration, bool) { clk.Step(time.Second); return admit() }()
	p.done(tk, 429, rateHeaders(10, 0, clk.Now().Add(2*time.Second)))
	p.block(clk.Now().Add(3 * time.Second))
	if _, d, ok := admit(); ok || d != 3*time.Second {
		t.Fatalf("ok=%v wait=%v, want 3s", ok, d)
	}
	if p.rate != 0 {
		t.Errorf("rate %v kept after a 429", p.rate)
	}

	// By the reset the bucket is full: the whole limit may go, less the 4 requests
	// still in flight (the platform may count them any moment).
	clk.Step(3 * time.Second)
	for i := range 10 - 4 {
		if _, _, ok := admit(); !ok {
			t.Fatalf("request %d of a full bucket held back", i+1)
		}
	}
	if _, _, ok := admit(); ok {
		t.Fatal("let through beyond a full bucket")
	}
}

func TestPacerWaitIsBoundedByTheContext(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	p := newPacer(clk, nil)
	p.block(clk.Now().Add(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.wait(ctx); err == nil {
		t.Fatal("wait returned without error on a cancelled context")
	}
}

func TestRateLimitHeaderParsing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		h    map[string]string
		want time.Duration
		ok   bool
	}{
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"http date", map[string]string{"Retry-After": now.Add(4 * time.Second).UTC().Format(http.TimeFormat)}, 4 * time.Second, true},
		{"http date in the past", map[string]string{"Retry-After": now.Add(-4 * time.Second).UTC().Format(http.TimeFormat)}, 0, false},
		{"reset only", map[string]string{"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000003"}, 3*time.Second + resetMargin, true},
		{"reset in the past", map[string]string{"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1699999990"}, 0, false},
		{"garbage", map[string]string{"Retry-After": "soon", "X-RateLimit-Reset": "later"}, 0, false},
		{"nothing", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			got, ok := retryAfter(h, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("retryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPacerIsNotFooledByAPlatformClockBehindOurs(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	p := newPacer(clk, nil)
	platformNow := clk.Now().Add(-10 * time.Second)
	tk, _, _ := p.admitLocked(clk.Now())
	h := rateHeaders(10, 0, platformNow.Add(2*time.Second))
	h.Set("Date", platformNow.UTC().Format(http.TimeFormat))
	p.done(tk, 200, h)
	// By the platform's clock the bucket is full in 2 s; by ours its reset looks 8 s
	// past. Without the Date header's correction the pacer would send 10 at once.
	if _, _, ok := p.admitLocked(clk.Now()); ok {
		t.Fatal("an empty bucket taken for full")
	}
	clk.Step(2*time.Second + resetMargin)
	for i := range 10 {
		if _, _, ok := p.admitLocked(clk.Now()); !ok {
			t.Fatalf("request %d held back after the platform's reset", i+1)
		}
	}
}

// A platform in trouble answers 5xx without rate-limit headers. After a 429
// (which makes the rate unknown) and more such answers than the burst, the
// estimate says "no tokens" and nothing known will refill it: the pacer must
// then find out again, one request at a time, rather than hold every caller
// of the tenant for ever.
func TestPacerFindsOutAgainWhenNothingCanRefillItsEstimate(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	p := newPacer(clk, nil)
	tk, _, ok := p.admitLocked(clk.Now())
	if !ok {
		t.Fatal("first request held back")
	}
	p.done(tk, 429, rateHeaders(2, 0, clk.Now().Add(time.Second)))
	p.block(clk.Now().Add(time.Second))
	clk.Step(2 * time.Second)

	for i := range 20 {
		tk, d, ok := p.admitLocked(clk.Now())
		for waited := time.Duration(0); !ok; tk, d, ok = p.admitLocked(clk.Now()) {
			if waited > 5*time.Second {
				t.Fatalf("request %d held back %v with nothing in flight after answers without a budget", i+1, waited)
			}
			clk.Step(d)
			waited += d
		}
		// One at a time: while it is out, nobody else goes.
		if i >= 2 {
			if _, _, again := p.admitLocked(clk.Now()); again {
				t.Fatalf("request %d: a second request went while the budget is unknown", i+1)
			}
		}
		p.done(tk, 503, nil)
	}

	// An answer with headers teaches the budget again: the burst goes at once.
	tk, _, _ = p.admitLocked(clk.Now())
	p.done(tk, 200, rateHeaders(10, 9, clk.Now().Add(time.Second)))
	for i := range 9 {
		if _, _, ok := p.admitLocked(clk.Now()); !ok {
			t.Fatalf("request %d of a known budget held back", i+1)
		}
	}
}
