// Package migration decides, as pure functions of (migration, tenant, now),
// where a PlatformMigration stands and what it means for each tenant. The
// controllers call these with an injected clock and act on the answers; the
// tests call them at the boundaries (deadline - 1ns, exactly at, + 1ns).
//
// Time boundaries are inclusive at the start: the grace period starts at
// exactly GracePeriodStart, and the change is enforced from exactly
// MandatoryOptIn on.
package migration

import (
	"fmt"
	"time"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Reasons for a tenant's state, as they appear in status.
const (
	ReasonGracePeriodNotStarted = "GracePeriodNotStarted"
	ReasonOptedIn               = "OptedIn"
	ReasonAutoEnrolled          = "AutoEnrolled"
	ReasonEnforced              = "Enforced"
	ReasonNotOptedIn            = "NotOptedIn"
	ReasonReadinessCheckPassed  = "ReadinessChecksPassed"
)

// Phase is where the migration stands on the calendar at now. Completed is
// not decided here: it needs every selected tenant to have the change (see
// PhaseWithTenants).
func Phase(spec *identityv1alpha1.PlatformMigrationSpec, now time.Time) identityv1alpha1.MigrationPhase {
	switch {
	case now.Before(spec.GracePeriodStart.Time):
		return identityv1alpha1.PhaseScheduled
	case spec.MandatoryOptIn == nil || now.Before(spec.MandatoryOptIn.Time):
		return identityv1alpha1.PhaseGracePeriod
	default:
		return identityv1alpha1.PhaseEnforced
	}
}

// PhaseWithTenants is Phase, with Enforced turned into Completed when every
// selected tenant has the change (and there is at least one).
func PhaseWithTenants(spec *identityv1alpha1.PlatformMigrationSpec, now time.Time, selected, enabled int) identityv1alpha1.MigrationPhase {
	phase := Phase(spec, now)
	if phase == identityv1alpha1.PhaseEnforced && selected > 0 && enabled == selected {
		return identityv1alpha1.PhaseCompleted
	}
	return phase
}

// Tenant is what the decision needs to know about one tenant.
type Tenant struct {
	// CreatedAt is when the tenant was created on the platform.
	CreatedAt time.Time
	// OptedIn is true when the Tenant names the migration in optInMigrations.
	OptedIn bool
	// Readiness is the outcome of the migration's readiness checks.
	Readiness Readiness
	// Flags are the flag values the tenant was last read with, and
	// DeclaredFlags those its spec.flags declares. Only the plan of the
	// mandatory date (AtDate) reads them: a tenant that carries the change's
	// flags already is not changed by the date.
	Flags, DeclaredFlags map[string]bool
}

// Readiness is the outcome of a migration's readiness checks for a tenant.
type Readiness struct {
	// Ready is true when every check passed (or there are none).
	Ready bool
	// Unknown is true when a check cannot be answered yet: the tenant's
	// settings have not been read since it appeared. Neither ready nor not.
	Unknown bool
	// Reason names the first failing check's cause, such as NoEmailProvider.
	Reason string
	// Message says what to do about it.
	Message string
}

// Decision is what a migration means for one tenant at a moment.
type Decision struct {
	// Apply is true when the tenant's settings must carry the migration's
	// change (its flags). Always false for a migration without a change.
	Apply bool
	// State is where the tenant stands, assuming the Tenant reconciler has
	// applied what Apply asks for.
	State identityv1alpha1.MigrationState
	// Reason is a CamelCase word for the state.
	Reason string
	// Message says, for a person, what it means and what to do.
	Message string
}

// Decide says what migration m means for tenant t at now.
//
// Before the grace period nothing changes. During it, a tenant gets the
// change when it opts in or was created after the grace period started,
// provided it passes the readiness checks; otherwise it is pending, or not
// ready. From the mandatory date on, every tenant gets the change whatever
// it says or whether it is ready. A migration without a change (one the
// platform makes by itself, such as an end of life) only reports: a tenant
// is enabled once it passes the readiness checks; one that still fails them
// from the mandatory date on is Affected, and nothing is enforced.
func Decide(m *identityv1alpha1.PlatformMigration, t Tenant, now time.Time) Decision {
	spec := &m.Spec
	phase := Phase(spec, now)
	if phase == identityv1alpha1.PhaseScheduled {
		return Decision{State: identityv1alpha1.MigrationPending, Reason: ReasonGracePeriodNotStarted,
			Message: fmt.Sprintf("the grace period of %s starts %s", m.Name, formatDate(spec.GracePeriodStart.Time))}
	}

	if spec.Change == nil {
		if t.Readiness.Unknown {
			return unknown(m, t.Readiness)
		}
		if !t.Readiness.Ready && phase == identityv1alpha1.PhaseEnforced {
			return Decision{State: identityv1alpha1.MigrationAffected, Reason: t.Readiness.Reason,
				Message: fmt.Sprintf("%s has been in force since %s and the tenant is still affected: %s", m.Name, formatDate(spec.MandatoryOptIn.Time), t.Readiness.Message)}
		}
		if !t.Readiness.Ready {
			return notReady(m, t.Readiness, phase)
		}
		return Decision{State: identityv1alpha1.MigrationEnabled, Reason: ReasonReadinessCheckPassed,
			Message: "the tenant meets every readiness check of " + m.Name}
	}

	enrolled := enrollment(spec, t)
	if phase == identityv1alpha1.PhaseEnforced {
		reason := enrolled
		if reason == "" {
			reason = ReasonEnforced
		}
		return Decision{Apply: true, State: identityv1alpha1.MigrationEnabled, Reason: reason,
			Message: fmt.Sprintf("%s is mandatory since %s", m.Name, formatDate(spec.MandatoryOptIn.Time))}
	}
	if t.Readiness.Unknown {
		return unknown(m, t.Readiness)
	}
	if !t.Readiness.Ready {
		return notReady(m, t.Readiness, phase)
	}
	if enrolled == "" {
		return Decision{State: identityv1alpha1.MigrationPending, Reason: ReasonNotOptedIn,
			Message: fmt.Sprintf("add %s to spec.optInMigrations to enable it before %s", m.Name, deadlineText(spec))}
	}
	return Decision{Apply: true, State: identityv1alpha1.MigrationEnabled, Reason: enrolled,
		Message: enrolledMessage(enrolled, m.Name)}
}

// enrollment is OptedIn, AutoEnrolled, or "" for a tenant that has neither
// opted in nor been created during the grace period.
func enrollment(spec *identityv1alpha1.PlatformMigrationSpec, t Tenant) string {
	switch {
	case t.OptedIn:
		return ReasonOptedIn
	case !t.CreatedAt.Before(spec.GracePeriodStart.Time):
		return ReasonAutoEnrolled
	default:
		return ""
	}
}

func enrolledMessage(reason, name string) string {
	if reason == ReasonOptedIn {
		return "the tenant opted in to " + name
	}
	return "the tenant was created after the grace period of " + name + " started, so it is enrolled automatically"
}

// unknown is a tenant whose readiness cannot be told yet: pending until
// the Tenant reconciler's next read, neither counted nor reminded as not
// ready.
func unknown(m *identityv1alpha1.PlatformMigration, r Readiness) Decision {
	return Decision{State: identityv1alpha1.MigrationPending, Reason: ReasonReadinessUnknown,
		Message: fmt.Sprintf("%s: %s", m.Name, r.Message)}
}

func notReady(m *identityv1alpha1.PlatformMigration, r Readiness, phase identityv1alpha1.MigrationPhase) Decision {
	msg := r.Message
	if phase == identityv1alpha1.PhaseEnforced {
		msg = fmt.Sprintf("the platform enforces %s since %s: %s", m.Name, formatDate(m.Spec.MandatoryOptIn.Time), msg)
	} else {
		msg = fmt.Sprintf("%s (before %s)", msg, deadlineText(&m.Spec))
	}
	return Decision{State: identityv1alpha1.MigrationNotReady, Reason: r.Reason, Message: msg}
}

// NextTransition is the first moment after now at which the migration's
// phase changes by the calendar (the grace-period start or the mandatory
// date), and false when no such moment is left. A controller requeues for
// exactly this moment.
func NextTransition(spec *identityv1alpha1.PlatformMigrationSpec, now time.Time) (time.Time, bool) {
	if now.Before(spec.GracePeriodStart.Time) {
		return spec.GracePeriodStart.Time, true
	}
	if spec.MandatoryOptIn != nil && now.Before(spec.MandatoryOptIn.Time) {
		return spec.MandatoryOptIn.Time, true
	}
	return time.Time{}, false
}

// ReminderDue reports whether a round of reminders is due at now, given when
// the last one went out, and when the next one is due.
func ReminderDue(last *time.Time, interval time.Duration, now time.Time) (due bool, next time.Time) {
	if last == nil {
		return true, now.Add(interval)
	}
	next = last.Add(interval)
	if now.Before(next) {
		return false, next
	}
	return true, now.Add(interval)
}

// ReminderDueAt is ReminderDue with one more round due at the mandatory
// date itself, whatever the cadence: it tells the tenants still not ready
// that the date has come (an end of life's Affected tenants, a change's
// failed ones). A round sent at or after the date does not repeat it.
func ReminderDueAt(last *time.Time, interval time.Duration, mandatory *time.Time, now time.Time) (due bool, next time.Time) {
	beforeDate := mandatory != nil && last != nil && last.Before(*mandatory)
	if beforeDate && !now.Before(*mandatory) {
		return true, now.Add(interval)
	}
	due, next = ReminderDue(last, interval, now)
	if !due && beforeDate && next.After(*mandatory) {
		next = *mandatory
	}
	return due, next
}

// PrepareAhead is how long before a transition a tenant is visited once
// more, to prepare the change the transition needs: a fleet's passes spread
// over it at the pace of the workers (2,500 tenants per instance took longer
// than 20 s), and the prepared change then waits for its moment outside any
// queue.
const PrepareAhead = 2 * time.Minute

// WarmUp is how long before a transition the connection of a tenant whose
// change is prepared is used once more, so that the connection and the
// token are fresh when the transition comes and only the PATCH is left on
// the critical path. It is shorter than the identity client's
// idle-connection timeout (30 s).
const WarmUp = 20 * time.Second

// TenantWakeUp is when a tenant's next pass is due for a transition at at:
// PrepareAhead before it while that is still ahead, otherwise at it exactly.
// (The pass that prepares schedules the one that records.) A zero
// transition stays zero.
func TenantWakeUp(now, at time.Time) time.Time {
	if prepare := at.Add(-PrepareAhead); !at.IsZero() && now.Before(prepare) {
		return prepare
	}
	return at
}

// RequeueAfter is how long to wait from now until the earliest of the given
// moments that is still ahead; zero moments are ignored. It returns false
// when none is ahead.
func RequeueAfter(now time.Time, moments ...time.Time) (time.Duration, bool) {
	var best time.Duration
	found := false
	for _, at := range moments {
		if at.IsZero() || !at.After(now) {
			continue
		}
		if d := at.Sub(now); !found || d < best {
			best, found = d, true
		}
	}
	return best, found
}

func deadlineText(spec *identityv1alpha1.PlatformMigrationSpec) string {
	if spec.MandatoryOptIn == nil {
		return "the platform sets a mandatory date"
	}
	return "the mandatory date " + formatDate(spec.MandatoryOptIn.Time)
}

func formatDate(t time.Time) string { return t.UTC().Format(time.RFC3339) }
