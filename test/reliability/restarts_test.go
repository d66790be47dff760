package reliability

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tenantops/identity-operator/test/workload"
)

// The operator is killed at random moments while it creates the remote
// objects of many resources, again and again; whatever it was doing, each
// resource ends with exactly one remote object.
func TestOperatorKilledDuringCreationLeavesExactlyOneRemoteObjectEach(t *testing.T) {
	f := newFixture(t)
	var tenants []workload.Tenant
	for i := 0; i < run.restartTenants; i++ {
		tenants = append(tenants, f.tenant(i, map[string]bool{"enable_apis_section": true}))
	}
	defaults := f.defaultConnections(tenants[0].Domain)
	// Latency widens the window between a create sent and its answer
	// recorded: the moment a kill hurts most.
	f.emu.SetFaults(0, 30*time.Millisecond)

	// The creations are spread over the kills: each kill meets resources
	// at every stage, from not yet seen to half made.
	created := make(chan struct{})
	span := time.Duration(run.kills) * 1150 * time.Millisecond
	go func() {
		defer close(created)
		for _, tn := range tenants {
			for _, obj := range tn.All() {
				_ = k8s.Create(context.Background(), obj)
			}
			time.Sleep(span / time.Duration(len(tenants)))
		}
	}()
	var downtime time.Duration
	for kill := 0; kill < run.kills; kill++ {
		time.Sleep(jitter(300*time.Millisecond, 2*time.Second))
		down := jitter(0, 500*time.Millisecond)
		downtime += down
		operator.stop()
		time.Sleep(down)
		var err error
		operator, err = startOperator()
		f.g.Expect(err).NotTo(HaveOccurred())
	}
	<-created
	f.emu.SetFaults(0, 0)
	took := f.allReady(3*len(tenants), run.convergeTimeout)
	time.Sleep(2 * resync)
	r := f.checkRemote(tenants, defaults)
	figure(t, "%d resources (%d tenants x 3), operator killed %d times at random points of their creation (down %s in all); all Ready %s after the last object was created",
		3*len(tenants), len(tenants), run.kills, downtime.Round(time.Millisecond), took.Round(time.Second))
	figure(t, "remote objects: %d connections for %d CustomDatabaseConnections, %d providers for %d EmailProviders; duplicates %d, missing %d, lost changes %d",
		r.connections, len(tenants), r.providers, len(tenants), r.duplicates, r.missing, r.lost)
	f.g.Expect(r.duplicates).To(BeZero())
	f.g.Expect(r.missing).To(BeZero())
	f.g.Expect(r.lost).To(BeZero())
	f.g.Expect(r.connections).To(Equal(len(tenants)))
	f.g.Expect(r.providers).To(Equal(len(tenants)))
}

// kube-apiserver goes away and comes back on the same address; the same
// operator (no restart of its own) picks up what was declared afterwards.
func TestAPIServerRestartIsSurvivedWithoutAnOperatorRestart(t *testing.T) {
	f := newFixture(t)
	var tenants []workload.Tenant
	for i := 0; i < 3; i++ {
		tn := f.tenant(i, map[string]bool{"enable_apis_section": true})
		tenants = append(tenants, tn)
		f.create(tn.All()...)
	}
	defaults := f.defaultConnections(tenants[0].Domain)
	f.allReady(9, run.convergeTimeout)
	same := operator

	f.g.Expect(env.RestartAPIServer(run.apiServerDownFor)).To(Succeed())
	restarted := time.Now()

	// A change declared after the restart must reach the platform through
	// the watches the operator re-established.
	for i := range tenants {
		tn := &tenants[i]
		tn.Flags = map[string]bool{"enable_apis_section": true, "no_disclose_enterprise_connections": true}
		f.declareFlags(*tn)
	}
	f.allReady(9, run.convergeTimeout)
	f.g.Eventually(func() int { return f.checkRemote(tenants, defaults).lost }, time.Minute, time.Second).Should(BeZero())
	r := f.checkRemote(tenants, defaults)
	figure(t, "kube-apiserver stopped for %s and started again; a change declared after it reached all %d tenants %s after the restart, the operator still the same instance: %v; duplicates %d, missing %d, lost %d",
		run.apiServerDownFor, len(tenants), time.Since(restarted).Round(time.Second), operator == same && operator.Running(), r.duplicates, r.missing, r.lost)
	f.g.Expect(operator).To(BeIdenticalTo(same))
	f.g.Expect(operator.Running()).To(BeTrue(), "the operator exited when the API server went away")
	f.g.Expect(r.duplicates + r.missing).To(BeZero())
}
