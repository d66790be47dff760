package controllers_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// The plan of the mandatory date, as `kubectl get pmig` and the status show
// it: how many tenants the date will change and which, before it comes.
func TestMigrationShowsWhichTenantsTheMandatoryDateWillChange(t *testing.T) {
	f := newFixture(t)
	now := wholeSecond(clock.Now())
	grace, deadline := now.Add(-time.Hour), now.Add(24*time.Hour)
	name := "atdate-" + f.ns
	long := now.AddDate(-1, 0, 0)

	// 52 tenants that have not opted in (more than the list's 50), one that
	// opted in, one that declares the change's flag itself, one under Plan
	// and one under Observe.
	const plain = 52
	for i := range plain {
		f.tenant(fmt.Sprintf("t%02d", i), indent(createdAt(long)))
	}
	f.tenant("acme-optin", indent(createdAt(long)+"optInMigrations: ["+name+"]"))
	f.tenant("declared", indent(createdAt(long)+"flags: {change_pwd_flow_v1: false}"))
	f.tenant("planned", indent(createdAt(long)+"managementPolicy: Plan"))
	f.tenant("observed", indent(createdAt(long)+"managementPolicy: Observe"))
	m := f.migration(name, grace, &deadline, "  change:\n    flags: {change_pwd_flow_v1: false}\n")

	f.migrationStatus(m, time.Minute, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.Tenants.Selected).To(BeNumerically("==", plain+4))
		g.Expect(s.Tenants.Enabled).To(BeNumerically("==", 1), "the opted-in tenant")
		g.Expect(s.Tenants.NotManaged).To(BeNumerically("==", 1))
		g.Expect(s.Tenants.Pending).To(BeNumerically("==", plain+2), "the plain ones, the one declaring the flag, the planned one")
		g.Expect(s.AtDate).NotTo(BeNil())
		g.Expect(s.AtDate.Passed).To(BeFalse())
		g.Expect(s.AtDate.Changes).To(BeNumerically("==", plain))
		g.Expect(s.AtDate.PlannedOnly).To(BeNumerically("==", 1))
		g.Expect(s.AtDate.NotManaged).To(BeNumerically("==", 1))
		g.Expect(s.AtDate.Summary).To(Equal(fmt.Sprintf("%d tenants will be changed at %s; 1 more under managementPolicy Plan are only shown the change, not written; 1 under managementPolicy Observe are not managed: nothing is written to them",
			plain, deadline.UTC().Format(time.RFC3339))))
	})
	// The first 50 by namespace and name: the opted-in tenant and the one
	// carrying the flag are not among them, the date changes neither.
	want := []identityv1alpha1.TenantAtDate{
		{Namespace: f.ns, Name: "observed", Impact: identityv1alpha1.DateImpactNotManaged},
		{Namespace: f.ns, Name: "planned", Impact: identityv1alpha1.DateImpactPlannedOnly},
	}
	for i := range 48 {
		want = append(want, identityv1alpha1.TenantAtDate{Namespace: f.ns, Name: fmt.Sprintf("t%02d", i), Impact: identityv1alpha1.DateImpactChange})
	}
	f.g.Expect(m.Status.AtDate.Tenants).To(Equal(want))
	f.g.Expect(m.Status.TenantsNeedingAttention).To(ContainElements(
		And(HaveField("Name", "observed"), HaveField("State", identityv1alpha1.MigrationNotManaged), HaveField("Reason", identityv1alpha1.ReasonNotManaged),
			HaveField("Message", ContainSubstring("is under managementPolicy Observe"))),
		And(HaveField("Name", "planned"), HaveField("State", identityv1alpha1.MigrationPending), HaveField("Reason", "NotOptedIn"))))
	row := f.clusterRow("platformmigrations", name)
	f.g.Expect(row).To(And(HaveKeyWithValue("At Date", fmt.Sprint(plain)), HaveKeyWithValue("Planned Only", "1"),
		HaveKeyWithValue("Not Managed", "1"), HaveKeyWithValue("Enabled", fmt.Sprintf("1/%d", plain+4))))

	// The date passes: the view says what was enforced, and the tenant under
	// Observe keeps the migration from Completed: it is never counted enabled.
	clock.Step(24 * time.Hour)
	f.migrationStatus(m, time.Minute, func(g Gomega, s identityv1alpha1.PlatformMigrationStatus) {
		g.Expect(s.AtDate.Passed).To(BeTrue())
		g.Expect(s.Phase).To(Equal(identityv1alpha1.PhaseEnforced))
		g.Expect(s.Tenants.NotManaged).To(BeNumerically("==", 1))
		g.Expect(s.Tenants.Enabled).To(BeNumerically(">=", plain+2), "every tenant under Apply")
		// Those that had not opted in, not the one that declared the flag
		// itself.
		g.Expect(s.AtDate.Changes).To(BeNumerically("==", plain))
		g.Expect(s.AtDate.NotManaged).To(BeNumerically("==", 1))
		g.Expect(s.AtDate.PlannedOnly).To(BeNumerically("==", 1))
		g.Expect(s.TenantsNeedingAttention).To(ContainElement(And(HaveField("Name", "planned"),
			HaveField("State", identityv1alpha1.MigrationPending), HaveField("Reason", identityv1alpha1.ReasonPlannedOnly))))
		g.Expect(s.AtDate.Summary).To(HavePrefix(fmt.Sprintf("the change was enforced at %s on %d tenants that had not opted in", deadline.UTC().Format(time.RFC3339), plain)))
	})
	f.g.Expect(f.clusterRow("platformmigrations", name)).To(And(HaveKeyWithValue("At Date", fmt.Sprint(plain)), HaveKeyWithValue("Phase", "Enforced")))
	// The tenants under Plan and Observe were not written at the date.
	f.g.Expect(f.flag(f.tenantDomain("t00"), "change_pwd_flow_v1")).To(Equal(false))
	for _, name := range []string{"planned", "observed"} {
		f.g.Expect(f.emu.Requests(f.tenantDomain(name)).ManagementWrites()).To(BeZero(), name)
	}
}
