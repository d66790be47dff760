package reliability

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/test/workload"
)

// At each of several mandatory dates the operator is killed right after
// the PATCHes that the date needs reached the tenants and before any of
// their Tenants' status recorded them: the moment where a restart could
// either lose the enforcement (nothing recorded) or repeat it (sent again,
// announced twice). Every tenant ends with every change, each sent once,
// and one MigrationEnabled event per migration.
func TestOperatorKilledBetweenTheDeadlinePatchAndItsStatusEnforcesExactlyOnce(t *testing.T) {
	f := newFixture(t)
	rounds, tenantCount := 2, 6
	if run == full {
		rounds, tenantCount = 5, 20
	}
	// Flags the emulator knows, each turned on by one migration.
	flagsByRound := []string{"enable_public_signup_user_exists_error", "revoke_refresh_token_grant",
		"no_disclose_enterprise_connections", "enable_idtoken_api2", "enable_client_connections"}[:rounds]
	var tenants []workload.Tenant
	for i := 0; i < tenantCount; i++ {
		tn := f.tenant(i, nil)
		tn.Labels = map[string]string{"deadline-test": f.ns}
		// Older than the grace period: not enrolled before the date.
		tn.CreatedAt = &metav1.Time{Time: time.Now().AddDate(-1, 0, 0)}
		tenants = append(tenants, tn)
		f.create(tn.TenantObjects()...)
	}
	f.allReady(tenantCount, run.convergeTimeout)
	for _, tn := range tenants {
		f.emu.PatchSettings(tn.Domain, map[string]any{"flags": falseFlags(flagsByRound)})
	}

	// One migration per round, each date 8 s after the one before: the
	// first pass of each sees it within the warm-up and prepares it.
	start := time.Now().Truncate(time.Second).Add(10 * time.Second)
	var names []string
	for r, flag := range flagsByRound {
		name := fmt.Sprintf("kill-%d-%s", r, f.ns)
		names = append(names, name)
		mandatory := metav1.NewTime(start.Add(time.Duration(r) * 8 * time.Second))
		m := &identityv1alpha1.PlatformMigration{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: identityv1alpha1.PlatformMigrationSpec{
				Severity: "Medium", GracePeriodStart: metav1.NewTime(start.Add(-time.Hour)), MandatoryOptIn: &mandatory,
				Change:         &identityv1alpha1.MigrationChange{Flags: map[string]bool{flag: true}},
				TenantSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"deadline-test": f.ns}},
			},
		}
		f.create(m)
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), m) })
	}

	for r := range flagsByRound {
		// Armed for this round: the first PATCH sent at the date signals
		// the kill, and every PATCH's answer is held from its Tenant's
		// pass until the operator is gone.
		killed, release := make(chan types.NamespacedName, 1), make(chan struct{})
		var once sync.Once
		hook := func(key types.NamespacedName) {
			once.Do(func() { killed <- key })
			<-release
		}
		transitionHook.Store(&hook)
		var key types.NamespacedName
		select {
		case key = <-killed:
		case <-time.After(time.Until(start.Add(time.Duration(r)*8*time.Second)) + 20*time.Second):
			f.t.Fatalf("round %d: no PATCH was sent at the mandatory date", r)
		}
		// Every tenant's PATCH is in flight at once; let them all land.
		time.Sleep(300 * time.Millisecond)
		transitionHook.Store(nil)
		operator.stop()
		close(release)
		var err error
		operator, err = startOperator()
		f.g.Expect(err).NotTo(HaveOccurred())
		figure(t, "round %d: operator killed after the date's PATCH to %s (and the others in flight), before any status recorded it", r, key.Name)
	}

	// Every tenant has every change; status says so; one PATCH per tenant
	// per date; one MigrationEnabled event per tenant per migration.
	f.g.Eventually(func(g Gomega) {
		for _, tn := range tenants {
			tenant := &identityv1alpha1.Tenant{}
			g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: tn.Name}, tenant)).To(Succeed())
			for _, name := range names {
				g.Expect(tenant.Status.Migrations).To(ContainElement(And(
					HaveField("Name", name), HaveField("State", identityv1alpha1.MigrationEnabled))), "Tenant %s, migration %s", tn.Name, name)
			}
		}
	}, run.convergeTimeout, 200*time.Millisecond).Should(Succeed())
	time.Sleep(2 * resync)

	var events corev1.EventList
	f.g.Expect(k8s.List(context.Background(), &events, client.InNamespace(f.ns))).To(Succeed())
	announced := map[string]int{}
	for _, e := range events.Items {
		if e.Reason == identityv1alpha1.EventReasonMigrationEnabled {
			for _, name := range names {
				if strings.HasPrefix(e.Message, name+" ") {
					announced[e.InvolvedObject.Name+"/"+name] += int(max(e.Count, 1))
				}
			}
		}
	}
	patches, wrong, twice := 0, 0, 0
	for _, tn := range tenants {
		n := f.emu.Requests(tn.Domain).Count("PATCH", "/api/v2/tenants/settings")
		patches += n
		flags := f.emu.Flags(tn.Domain)
		for _, flag := range flagsByRound {
			if flags[flag] != true {
				wrong++
			}
		}
		for _, name := range names {
			if announced[tn.Name+"/"+name] != 1 {
				twice++
			}
		}
	}
	figure(t, "%d tenants x %d dates, the operator killed at each between the PATCH and the status write: %d settings PATCHes (%d expected), %d changes missing, %d (tenant, migration) pairs without exactly one MigrationEnabled event",
		len(tenants), rounds, patches, len(tenants)*rounds, wrong, twice)
	f.g.Expect(wrong).To(BeZero(), "changes lost")
	f.g.Expect(twice).To(BeZero(), "events by tenant/migration: %v", announced)
	f.g.Expect(patches).To(Equal(len(tenants)*rounds), "a change was sent again after the restart")
}

func falseFlags(flags []string) map[string]any {
	out := map[string]any{}
	for _, f := range flags {
		out[f] = false
	}
	return out
}
