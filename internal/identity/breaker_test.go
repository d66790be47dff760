package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
)

// The breaker is tested through a pool's clients against a stub platform, on a fake
// clock: backoffs, probe intervals and a whole simulated minute pass without sleeping.

// stepping runs fn, moving clk forward in small steps whenever something waits on it
// (a backoff, the pacer, a probe interval), until fn returns.
func stepping(clk *clocktesting.FakeClock, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	for {
		select {
		case <-done:
			return
		case <-time.After(100 * time.Microsecond):
			if clk.HasWaiters() {
				clk.Step(25 * time.Millisecond)
			}
		}
	}
}

// stubTenant is a platform whose answers a test scripts, counting the API requests (the
// token endpoint answers on its own).
type stubTenant struct {
	*fakePlatform
	clk      *clocktesting.FakeClock
	start    time.Time
	mu       sync.Mutex
	answer   func(r *http.Request) int // status to answer; 200 sends settings
	sent     []time.Duration           // when each API request came, from start
	byDomain map[string]int
}

func newStubTenant(t *testing.T, clk *clocktesting.FakeClock, answer func(*http.Request) int) *stubTenant {
	s := &stubTenant{clk: clk, start: clk.Now(), answer: answer, byDomain: map[string]int{}}
	s.fakePlatform = newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.sent = append(s.sent, clk.Now().Sub(s.start))
		s.byDomain[strings.Split(r.Host, ":")[0]]++
		answer := s.answer
		s.mu.Unlock()
		switch status := answer(r); {
		case status == http.StatusOK:
			writeJSON(w, status, map[string]any{"friendly_name": "answered"})
		case status == http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, status, "too_many_requests", "Global limit has been reached")
		default:
			writeAPIError(w, status, "", http.StatusText(status))
		}
	})
	return s
}

func (s *stubTenant) setAnswer(answer func(*http.Request) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

// requests counts the API requests so far; within, when set, counts only those sent
// before that long from the start.
func (s *stubTenant) requests(within time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.sent {
		if within == 0 || at < within {
			n++
		}
	}
	return n
}

func (s *stubTenant) requestsTo(domain string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byDomain[domain]
}

func status(code int) func(*http.Request) int { return func(*http.Request) int { return code } }

// breakerPool is a pool on clk with the production backoff (250 ms doubling, capped at
// 10 s, 5 retries) and private metrics.
func breakerPool(clk *clocktesting.FakeClock) (*Pool, *Metrics) {
	m := NewMetrics(prometheus.NewRegistry())
	return NewPool(Options{Clock: clk, Metrics: m}), m
}

func poolClient(t *testing.T, p *Pool, cfg Config) *client {
	t.Helper()
	c, err := p.Get(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The token first: a tenant's token is cached long before it goes down.
	if _, err := c.(*client).tokens.get(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.(*client)
}

func TestBreakerOpensAfterThreeRequestsInARowFailAndThenSendsNothing(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	stub := newStubTenant(t, clk, status(http.StatusServiceUnavailable))
	pool, m := breakerPool(clk)
	c := poolClient(t, pool, stub.config("down.example.com"))

	var err error
	stepping(clk, func() { _, err = c.GetTenantSettings(context.Background()) })
	var down *TenantDownError
	if !errors.As(err, &down) || !errors.Is(err, ErrTenantDown) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want a *TenantDownError matching ErrTenantDown and ErrUnavailable", err)
	}
	if got := stub.requests(0); got != breakerThreshold {
		t.Errorf("%d requests before the breaker opened, want %d (the call's own retries stop there)", got, breakerThreshold)
	}
	if down.Domain != "down.example.com" || down.Failures != breakerThreshold || down.RetryAfter <= 0 ||
		!down.NextProbe.After(down.Since) || down.NextProbe.Sub(clk.Now()) > probeFirst {
		t.Errorf("refusal %+v: want the domain, %d failures and the next probe within %v", down, breakerThreshold, probeFirst)
	}
	for _, want := range []string{"down.example.com has not answered since", "503 Service Unavailable", "next probe at"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if v := testutil.ToFloat64(m.BreakerOpen.WithLabelValues("down.example.com")); v != 1 {
		t.Errorf("identity_tenant_breaker_open = %v, want 1", v)
	}

	// Open: calls fail at once, without a request, however many there are.
	for range 20 {
		if _, err := c.GetEmailProvider(context.Background()); !errors.Is(err, ErrTenantDown) {
			t.Fatalf("call while open: %v, want ErrTenantDown", err)
		}
	}
	if got := stub.requests(0); got != breakerThreshold {
		t.Errorf("%d requests after calls while open, want still %d", got, breakerThreshold)
	}
}

func TestBreakerLetsOneProbeAtATimeAtGrowingIntervals(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	var states []bool
	recovered := 0
	b := newBreaker(clk, "probe.example.com", func(open bool) { states = append(states, open) }, func() { recovered++ })
	cause := errors.New("503")
	for range breakerThreshold {
		a, err := b.admit("op")
		if err != nil {
			t.Fatal("closed breaker refused a request")
		}
		b.failed(a, cause)
	}
	for i, wait := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 16 * time.Second} {
		clk.Step(wait - time.Nanosecond)
		if _, err := b.admit("op"); !errors.Is(err, ErrTenantDown) {
			t.Fatalf("probe %d: a request went 1ns before the probe was due", i+1)
		}
		clk.Step(time.Nanosecond)
		probe, err := b.admit("op")
		if err != nil || !probe.probe {
			t.Fatalf("probe %d: refused when due: %v", i+1, err)
		}
		// While the probe is out, nobody else goes, and they are told when the next one
		// would be due.
		_, err = b.admit("op")
		var down *TenantDownError
		if !errors.As(err, &down) {
			t.Fatalf("probe %d: a second request went while the probe was out", i+1)
		}
		if next := min(2*wait, probeMax); down.RetryAfter != next {
			t.Errorf("probe %d: next probe in %v, want %v", i+1, down.RetryAfter, next)
		}
		b.failed(probe, cause)
	}
	clk.Step(probeMax)
	if _, err := b.admit("op"); err != nil {
		t.Fatal(err)
	}
	b.answered()
	if a, err := b.admit("op"); err != nil || a.probe {
		t.Fatalf("after a successful probe: %v, probe %v; want closed", err, a.probe)
	}
	if recovered != 1 || !slices.Equal(states, []bool{false, true, false}) {
		t.Errorf("recovered %d times, states %v; want once, [closed open closed]", recovered, states)
	}
}

// The operator's three reconcilers of a tenant (Tenant, EmailProvider,
// CustomDatabaseConnection) call it concurrently, each retrying when told to: a tenant
// down for a minute draws at most 10 requests, client retries included, and is found
// back by the first probe after it answers again.
func TestTenantDownDrawsAtMostTenRequestsInItsFirstMinute(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	stub := newStubTenant(t, clk, status(http.StatusServiceUnavailable))
	pool, m := breakerPool(clk)
	var recoveredMu sync.Mutex
	var recovered []string
	cancelSub := pool.OnRecovered(func(domain string) {
		recoveredMu.Lock()
		defer recoveredMu.Unlock()
		recovered = append(recovered, domain)
	})
	defer cancelSub()
	cfg := stub.config("minute.example.com")
	c := poolClient(t, pool, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var lastOK [3]atomic.Int64 // simulated ns of each caller's last success
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := c.GetTenantSettings(ctx)
				wait := 5 * time.Second // the resync
				var down *TenantDownError
				switch {
				case errors.As(err, &down):
					wait = max(down.RetryAfter, time.Millisecond)
				case err != nil:
					wait = time.Second
				default:
					lastOK[i].Store(int64(clk.Now().Sub(stub.start)))
				}
				_ = sleepCtx(ctx, clk, wait, nil)
			}
		}()
	}
	stepping(clk, func() {
		for clk.Now().Sub(stub.start) < time.Minute {
			time.Sleep(time.Millisecond)
		}
	})
	inMinute := stub.requests(time.Minute)
	t.Logf("a tenant down from 0 s, called by 3 concurrent callers: %d requests in its first minute (at %v)", inMinute, stub.sent)
	if inMinute > 10 {
		t.Errorf("%d requests in the first minute down, want at most 10", inMinute)
	}
	if inMinute < breakerThreshold+4 {
		t.Errorf("%d requests in the first minute: the breaker does not probe as scheduled", inMinute)
	}

	// Back: the next probe (due at 62 s) finds it, and every caller is served again.
	stub.setAnswer(status(http.StatusOK))
	back := clk.Now().Sub(stub.start)
	stepping(clk, func() {
		for {
			recoveredMu.Lock()
			n := len(recovered)
			recoveredMu.Unlock()
			if n > 0 && lastOK[0].Load() > int64(back) && lastOK[1].Load() > int64(back) && lastOK[2].Load() > int64(back) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	cancel()
	wg.Wait()
	if !slices.Equal(recovered, []string{"minute.example.com"}) {
		t.Errorf("recovered %v, want the tenant once", recovered)
	}
	if v := testutil.ToFloat64(m.BreakerOpen.WithLabelValues("minute.example.com")); v != 0 {
		t.Errorf("identity_tenant_breaker_open = %v after recovery, want 0", v)
	}
}

// Refusals (4xx), rate limits (429) and callers that give up say nothing about whether
// the tenant answers: they never open the breaker, and an answer clears the failures
// counted before it.
func TestBreakerIsNotOpenedByRefusalsRateLimitsOrCancelledCalls(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	stub := newStubTenant(t, clk, status(http.StatusOK))
	pool, m := breakerPool(clk)
	cfg := stub.config("flaky.example.com")
	c := poolClient(t, pool, cfg)
	// scripted answers the statuses in turn, then 200.
	scripted := func(statuses ...int) func(*http.Request) int {
		var next atomic.Int32
		return func(*http.Request) int {
			if i := int(next.Add(1)) - 1; i < len(statuses) {
				return statuses[i]
			}
			return http.StatusOK
		}
	}

	// Two 5xx then a 4xx, twice; two 5xx then a 429 (waited out) then a 200.
	stub.setAnswer(scripted(503, 503, 404, 502, 500, 400, 503, 503, 429))
	for _, want := range []error{ErrNotFound, ErrInvalid, nil} {
		var err error
		stepping(clk, func() { _, err = c.GetTenantSettings(context.Background()) })
		if !errors.Is(err, want) && (want != nil || err != nil) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
	if got := stub.requests(0); got != 10 {
		t.Errorf("%d requests, want 10: the breaker refused some", got)
	}

	// Callers that give up while their request is out, then two 5xx: still closed.
	hang := make(chan struct{})
	defer close(hang)
	stub.setAnswer(func(*http.Request) int { <-hang; return http.StatusOK })
	for range 2 * breakerThreshold {
		ctx, cancel := context.WithCancel(context.Background())
		before := stub.requests(0)
		go func() {
			for stub.requests(0) == before {
				time.Sleep(100 * time.Microsecond)
			}
			cancel()
		}()
		if _, err := c.GetTenantSettings(ctx); err == nil {
			t.Fatal("a cancelled call succeeded")
		}
	}
	stub.setAnswer(scripted(503, 503))
	stepping(clk, func() { _, _ = c.GetTenantSettings(context.Background()) })
	if c.breaker.isOpen() {
		t.Error("the breaker opened on refusals, rate limits or cancelled calls")
	}
	if v := testutil.ToFloat64(m.BreakerOpen.WithLabelValues("flaky.example.com")); v != 0 {
		t.Errorf("identity_tenant_breaker_open = %v, want 0", v)
	}
}

// One tenant down takes no other tenant down with it, even behind the same address;
// the clients of a tenant's old and new credentials share its breaker.
func TestBreakerIsPerTenantAndSharedAcrossCredentials(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	stub := newStubTenant(t, clk, func(r *http.Request) int {
		if strings.HasPrefix(r.Host, "down.") {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	pool, m := breakerPool(clk)
	down := poolClient(t, pool, stub.config("down.example.com"))
	up := poolClient(t, pool, stub.config("up.example.com"))

	stepping(clk, func() { _, _ = down.GetTenantSettings(context.Background()) })
	if !down.breaker.isOpen() {
		t.Fatal("the down tenant's breaker did not open")
	}
	for range 5 {
		if _, err := up.GetTenantSettings(context.Background()); err != nil {
			t.Fatalf("the other tenant: %v", err)
		}
	}
	if got := stub.requestsTo("up.example.com"); got != 5 {
		t.Errorf("the other tenant got %d requests, want 5", got)
	}
	if v := testutil.ToFloat64(m.BreakerOpen.WithLabelValues("up.example.com")); v != 0 {
		t.Errorf("the other tenant's breaker gauge = %v, want 0", v)
	}

	rotated := stub.config("down.example.com")
	rotated.ClientSecret = "rotated-secret"
	r, err := pool.Get(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if r.(*client).breaker != down.breaker {
		t.Fatal("new credentials got a breaker of their own")
	}
	if _, err := r.GetTenantSettings(context.Background()); !errors.Is(err, ErrTenantDown) {
		t.Errorf("the rotated client called a tenant that is down: %v", err)
	}

	pool.Forget(rotated)
	if got := testutil.CollectAndCount(m.BreakerOpen); got != 1 {
		t.Errorf("%d breaker series after Forget, want only the other tenant's", got)
	}
}
