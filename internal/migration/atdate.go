package migration

import (
	"time"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// AtDate says what the mandatory date of m does to tenant t, whose Tenant
// is under management policy policy, as seen at now: the blast radius a
// team reviews before the date. Empty means nothing: the migration changes
// no flag, or the tenant has the change already (opted in, enrolled, or
// carrying the flags).
//
// Before the date, a tenant changes at the date when the decision at now
// does not apply the change yet: at the date every selected tenant gets it
// (Decide), whatever it says or whether it is ready; one that declares the
// change's flags itself (spec.flags), or was read with them, is not
// changed. From the date on, the tenants the date changed are those the
// change is enforced on (reason Enforced) that did not declare its flags:
// the view then says what was enforced.
//
// Under Observe the operator writes nothing: NotManaged, whatever the
// decision. Under Plan a tenant the date would change is PlannedOnly: the
// change is shown on its Tenant and not written.
func AtDate(m *identityv1alpha1.PlatformMigration, t Tenant, policy identityv1alpha1.ManagementPolicy, now time.Time) identityv1alpha1.DateImpact {
	if m.Spec.Change == nil {
		return ""
	}
	if policy.Effective() == identityv1alpha1.ManagementPolicyObserve {
		return identityv1alpha1.DateImpactNotManaged
	}
	d := Decide(m, t, now)
	var changes bool
	want := m.Spec.Change.Flags
	if Phase(&m.Spec, now) == identityv1alpha1.PhaseEnforced {
		// What was read since may be the enforcement itself: only what the
		// Tenant declares tells that the date changed nothing there.
		changes = d.Reason == ReasonEnforced && !carries(t.DeclaredFlags, want)
	} else {
		changes = !d.Apply && !carries(t.DeclaredFlags, want) && !carries(t.Flags, want)
	}
	switch {
	case !changes:
		return ""
	case policy.Effective() == identityv1alpha1.ManagementPolicyPlan:
		return identityv1alpha1.DateImpactPlannedOnly
	default:
		return identityv1alpha1.DateImpactChange
	}
}

// carries reports whether have holds every flag of want at its value.
func carries(have, want map[string]bool) bool {
	for flag, v := range want {
		if got, ok := have[flag]; !ok || got != v {
			return false
		}
	}
	return true
}
