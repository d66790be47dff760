package reliability

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/test/emulator/server"
	"github.com/tenantops/identity-operator/test/workload"
)

// Under 20% 5xx with added latency, bursts of 429s, replies lost after the
// platform acted, and a window where the platform answers nothing but 5xx,
// every resource converges with exactly one remote object and every change
// made during the trouble is on the platform at the end.
func TestFaultsConvergeWithoutDuplicatesOrLostChanges(t *testing.T) {
	timeline := &requestTimeline{}
	f := newFixture(t, timeline.tap)
	var tenants []workload.Tenant
	for i := 0; i < run.faultTenants; i++ {
		tenants = append(tenants, f.tenant(i, map[string]bool{"enable_apis_section": true}))
	}
	defaults := f.defaultConnections(tenants[0].Domain)

	// Trouble from the first call on: 20% 5xx, 50 ms latency, and 5% of
	// the calls carried out but their reply lost (a create retried then
	// meets its own object).
	f.emu.SetFaults(0.20, 50*time.Millisecond)
	f.emu.SetLostReplies(0.05)
	start := time.Now()
	for _, tn := range tenants {
		f.create(tn.All()...)
	}

	// 429 bursts: half the tenants drop to a burst of 2 at 1/s for 10 s,
	// twice, while the objects are being created.
	for round := 0; round < 2; round++ {
		for i, tn := range tenants {
			if i%2 == round%2 {
				f.emu.SetRateLimit(tn.Domain, 2, 1)
			}
		}
		time.Sleep(10 * time.Second)
		for _, tn := range tenants {
			f.emu.SetRateLimit(tn.Domain, 50, 15)
		}
	}

	// Changes declared while the platform is in trouble: two more flags on
	// every Tenant, a new configuration value on every connection.
	for i := range tenants {
		tn := &tenants[i]
		tn.Flags = map[string]bool{"enable_apis_section": true, "enable_public_signup_user_exists_error": true, "no_disclose_enterprise_connections": true}
		f.declareFlags(*tn)
		tn.Secrets.Configuration["LEGACY_REGION"] = "eu-" + tn.Name
		secret := tn.ConnectionObjects()[0]
		f.g.Expect(k8s.Update(context.Background(), secret)).To(Succeed())
	}

	// The platform down: every request answered 5xx, then an emulator
	// restart (connections cut), then the 20% again.
	f.emu.SetFaults(1.0, 0)
	time.Sleep(run.downFor)
	f.emu.Restart()
	f.emu.SetFaults(0.20, 50*time.Millisecond)
	f.emu.SetLostReplies(0.05)

	took := f.allReady(3*len(tenants), run.convergeTimeout)
	faults, rateLimited := f.log.Faults(), f.log.Status(429)
	f.emu.SetFaults(0, 0)
	f.emu.SetLostReplies(0)
	// One more resync with no faults: whatever is wrong stays wrong.
	time.Sleep(2 * resync)
	r := f.checkRemote(tenants, defaults)

	figure(t, "%d resources (%d Tenants, %d EmailProviders, %d CustomDatabaseConnections); %d requests answered with an injected fault (20%% 5xx and 5%% lost replies, %s when down for %s), %d answered 429; all Ready %s after the platform came back (%s after the first create)",
		3*len(tenants), len(tenants), len(tenants), len(tenants), faults, "100%", run.downFor, rateLimited, took.Round(time.Second), time.Since(start).Round(time.Second))
	figure(t, "remote objects: %d connections for %d CustomDatabaseConnections, %d providers for %d EmailProviders; duplicates %d, missing %d, lost changes %d",
		r.connections, len(tenants), r.providers, len(tenants), r.duplicates, r.missing, r.lost)
	f.g.Expect(faults).To(BeNumerically(">", 0), "no fault was injected: the test proves nothing")
	f.g.Expect(r.duplicates).To(BeZero())
	f.g.Expect(r.missing).To(BeZero())
	f.g.Expect(r.lost).To(BeZero())
	f.g.Expect(r.connections).To(Equal(len(tenants)))
	f.g.Expect(r.providers).To(Equal(len(tenants)))
	f.g.Expect(operator.Running()).To(BeTrue(), "the operator exited")

	// One tenant down while the others are served: a flag declared on every
	// Tenant now reaches all the others while that one is still down (its
	// failing calls hold up nobody else's). The tenant that is down draws a
	// trickle: its breaker opens after 3 failed requests, then one probe at
	// 2, 6, 14, 30 and 46 s. Its objects say TenantUnavailable meanwhile, and
	// are all back in sync within 2 s of the first probe it answers.
	down := tenants[0]
	f.emu.SetTenantDown(down.Domain, true)
	outage := time.Now()
	for i := range tenants {
		tn := &tenants[i]
		tn.Flags["enable_dynamic_client_registration"] = true
		f.declareFlags(*tn)
	}
	missing := func(ts []workload.Tenant) []string {
		var out []string
		for _, tn := range ts {
			if f.emu.Flags(tn.Domain)["enable_dynamic_client_registration"] != true {
				out = append(out, tn.Domain)
			}
		}
		return out
	}
	f.g.Eventually(func() []string { return missing(tenants[1:]) }, run.downFor, 100*time.Millisecond).Should(BeEmpty(),
		"the other tenants did not get the change while one tenant was down")
	othersTook := time.Since(outage)
	f.g.Expect(missing(tenants[:1])).To(HaveLen(1), "the down tenant was changed: the outage was not injected")
	downObjects := []conditioned{
		&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: down.Name}},
		&identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: down.ProviderName()}},
		&identityv1alpha1.CustomDatabaseConnection{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: down.ConnectionName()}},
	}
	// Every object of the tenant says why it waits.
	f.g.Eventually(func(g Gomega) {
		for _, obj := range downObjects {
			g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			ready := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(identityv1alpha1.ReasonTenantUnavailable), "%s: %s", obj.GetName(), ready.Message)
			g.Expect(ready.Message).To(ContainSubstring("has not answered since"))
			g.Expect(meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionStalled)).To(BeNil())
		}
	}, max(time.Until(outage.Add(run.downFor)), 10*time.Second), 200*time.Millisecond).Should(Succeed())
	time.Sleep(time.Until(outage.Add(run.downFor)))
	window := min(time.Minute, run.downFor)
	drawn := timeline.requests(down.Domain, outage, outage.Add(window))
	f.emu.SetTenantDown(down.Domain, false)
	back := time.Now()

	// The first request the tenant answers after it is back is the probe
	// that finds it; from then, every object of it is in sync.
	var answered time.Time
	f.g.Eventually(func() bool {
		answered = timeline.firstAnswer(down.Domain, back)
		return !answered.IsZero()
	}, probeMax+30*time.Second, 20*time.Millisecond).Should(BeTrue(), "no probe reached the tenant after its outage")
	f.g.Eventually(func(g Gomega) {
		g.Expect(missing(tenants[:1])).To(BeEmpty())
		for _, obj := range downObjects {
			g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			ready := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s: %s", obj.GetName(), ready.Reason, ready.Message)
			g.Expect(ready.ObservedGeneration).To(Equal(obj.GetGeneration()))
		}
	}, time.Minute, 20*time.Millisecond).Should(Succeed(), "the tenant back from its outage is not in sync")
	recovered := time.Since(answered)
	f.allReady(3*len(tenants), run.convergeTimeout)
	figure(t, "one tenant down for %s: the change reached the %d others in %s while it was down; the tenant drew %d requests in its first %s down (bound %d); its first probe after it came back was answered %s later, and its Tenant, EmailProvider and CustomDatabaseConnection were in sync %s after that",
		run.downFor, len(tenants)-1, othersTook.Round(100*time.Millisecond), drawn, window, breakerBound(window),
		answered.Sub(back).Round(100*time.Millisecond), recovered.Round(10*time.Millisecond))
	f.g.Expect(drawn).To(BeNumerically("<=", breakerBound(window)), "the tenant that is down drew more than its breaker allows")
	f.g.Expect(recovered).To(BeNumerically("<=", 2*time.Second), "the objects of the tenant back from its outage waited for their own retry")
	r = f.checkRemote(tenants, defaults)
	f.g.Expect(r.duplicates+r.missing+r.lost).To(BeZero(), "after the outage: %+v", r)
}

// The identity client's breaker schedule (internal/identity/breaker.go):
// open after 3 failed requests, then probes 2, 4, 8 and 16 s apart (at
// most). With the tenant's Tenant, EmailProvider and
// CustomDatabaseConnection calling it, two more requests may be under way
// as it opens.
const (
	breakerOpening = 3 + 2
	probeFirst     = 2 * time.Second
	probeMax       = 16 * time.Second
)

// breakerBound is the most requests a tenant down from the start of a
// window of length d may draw in it: 10 in a minute. The bound is not
// proportional to d: the requests that open the breaker come first.
func breakerBound(d time.Duration) int {
	n := breakerOpening
	for at, wait := probeFirst, probeFirst; at < d; wait, at = min(2*wait, probeMax), at+min(2*wait, probeMax) {
		n++
	}
	return n
}

// requestTimeline keeps when each tenant's requests came and how they were
// answered, from the emulator's request log (which still goes to the
// fixture's RequestLog).
type requestTimeline struct {
	next slog.Handler

	mu     sync.Mutex
	byHost map[string][]timedRequest
}

type timedRequest struct {
	at     time.Time
	status int
}

// tap is an emulator option that puts the timeline in front of the
// fixture's request log.
func (l *requestTimeline) tap(c *server.Config) {
	l.next = c.Logger.Handler()
	c.Logger = slog.New(l)
}

func (l *requestTimeline) Enabled(context.Context, slog.Level) bool { return true }
func (l *requestTimeline) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *requestTimeline) WithGroup(string) slog.Handler            { return l }

func (l *requestTimeline) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" {
		var tenant string
		var status int
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "tenant":
				tenant = a.Value.String()
			case "status":
				status = int(a.Value.Int64())
			}
			return true
		})
		l.mu.Lock()
		if l.byHost == nil {
			l.byHost = map[string][]timedRequest{}
		}
		l.byHost[tenant] = append(l.byHost[tenant], timedRequest{at: time.Now(), status: status})
		l.mu.Unlock()
	}
	return l.next.Handle(ctx, r)
}

// requests counts the requests to domain in [from, to).
func (l *requestTimeline) requests(domain string, from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.byHost[domain] {
		if !r.at.Before(from) && r.at.Before(to) {
			n++
		}
	}
	return n
}

// firstAnswer is when domain first answered a request (a status below 500)
// at or after from; zero when it has not.
func (l *requestTimeline) firstAnswer(domain string, from time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.byHost[domain] {
		if !r.at.Before(from) && r.status < 500 {
			return r.at
		}
	}
	return time.Time{}
}
