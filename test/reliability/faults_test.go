package reliability

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/workload"
)

// Under 20% 5xx with added latency, bursts of 429s, replies lost after the
// platform acted, and a window where the platform answers nothing but 5xx,
// every resource converges with exactly one remote object and every change
// made during the trouble is on the platform at the end.
func TestFaultsConvergeWithoutDuplicatesOrLostChanges(t *testing.T) {
	f := newFixture(t)
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
	// failing calls hold up nobody else's), and reaches it too once it is
	// back, within the operator's longest retry delay (5 min).
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
	time.Sleep(time.Until(outage.Add(run.downFor)))
	f.emu.SetTenantDown(down.Domain, false)
	back := time.Now()
	f.g.Eventually(func() []string { return missing(tenants[:1]) }, 5*time.Minute+30*time.Second, 200*time.Millisecond).Should(BeEmpty(),
		"the tenant back from its outage never got the change")
	downTook := time.Since(back)
	f.allReady(3*len(tenants), run.convergeTimeout)
	figure(t, "one tenant down for %s: the change reached the %d others in %s while it was down, and it got the change %s after it came back; %d requests to it answered 503 meanwhile",
		run.downFor, len(tenants)-1, othersTook.Round(100*time.Millisecond), downTook.Round(100*time.Millisecond), f.log.TenantFaults(down.Domain))
	r = f.checkRemote(tenants, defaults)
	f.g.Expect(r.duplicates+r.missing+r.lost).To(BeZero(), "after the outage: %+v", r)
}
