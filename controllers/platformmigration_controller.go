package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/migration"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/reminder"
)

// PlatformMigration conditions (the reasons are in api/v1alpha1).
const (
	// ConditionDeadlinePassed is True once the mandatory date has passed.
	ConditionDeadlinePassed = "DeadlinePassed"

	// readinessSettle is how long after a migration's creation its first
	// round of reminders waits for tenants whose readiness is not known yet
	// (their settings not read since), checking every readinessSettleRetry.
	readinessSettle      = time.Minute
	readinessSettleRetry = 2 * time.Second
)

// PlatformMigrationReconciler decides and reports: for every selected
// Tenant, whether the migration is enabled, pending or not ready, and the
// phase by the clock. It never calls a tenant; the Tenant reconciler makes
// the change. It wakes up at exactly the grace-period start, the mandatory
// date and the next reminder, and sends reminders to the administrators of
// tenants that still have to act.
type PlatformMigrationReconciler struct {
	client.Client
	Clock      clock.PassiveClock
	Recorder   record.EventRecorder
	Summarizer reconcile.Summarizer
	// Mailer sends reminder emails; nil sends Events only.
	Mailer         reminder.Mailer
	Metrics        *MigrationMetrics
	ResyncInterval time.Duration
	// Fleet, when set, is where Tenants and EmailProviders are read and
	// watched from instead of the manager's cache: every shard's, for an
	// instance whose own cache holds one shard.
	Fleet cache.Cache

	// reminded remembers when this process last sent each migration's
	// round of reminders: status.lastReminderTime is the record that
	// survives a restart, but a pass right after the round can read the
	// migration from a cache that has not seen that status write yet, and
	// would send the round again.
	reminded reconcile.Written[time.Time]
}

// Reconcile runs one pass for a PlatformMigration. A migration owns nothing
// on the tenants, so it has no finalizer: once it is deleted the flags it
// set stay, and Tenants simply stop merging them.
func (r *PlatformMigrationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Pass(ctx, r.Client, r.Summarizer, req, &identityv1alpha1.PlatformMigration{}, reconcile.Steps[*identityv1alpha1.PlatformMigration]{
		Apply: r.reconcileMigration,
		Gone: func(req ctrl.Request) {
			r.Metrics.forget(req.Name)
			r.reminded.Forget(req.NamespacedName)
		},
	})
}

// tenantOutcome is one selected tenant's state as reported.
type tenantOutcome struct {
	tenant   *identityv1alpha1.Tenant
	decision migration.Decision
	state    identityv1alpha1.MigrationState
	reason   string
	message  string
	// atDate is what the mandatory date does to it (empty: nothing).
	atDate identityv1alpha1.DateImpact
}

func (r *PlatformMigrationReconciler) reconcileMigration(ctx context.Context, m *identityv1alpha1.PlatformMigration) (reconcile.Success, error) {
	now := r.Clock.Now()
	outcomes, err := r.evaluateTenants(ctx, m, now)
	if err != nil {
		return reconcile.Success{}, err
	}
	r.writeStatus(ctx, m, outcomes, now)

	nextReminder, err := r.remind(ctx, m, outcomes, now)
	if err != nil {
		return reconcile.Success{}, err
	}

	requeue := r.ResyncInterval
	next, _ := migration.NextTransition(&m.Spec, now)
	if d, ok := migration.RequeueAfter(now, next, nextReminder); ok && d < requeue {
		requeue = d
	}
	t := m.Status.Tenants
	return reconcile.Success{Reason: identityv1alpha1.ReasonEvaluated, RequeueAfter: requeue,
		Message: fmt.Sprintf("%s: %d/%d tenants have the change; %d pending, %d not ready, %d affected, %d failed, %d not managed",
			m.Status.Phase, t.Enabled, t.Selected, t.Pending, t.NotReady, t.Affected, t.Failed, t.NotManaged)}, nil
}

// evaluateTenants decides every selected tenant with the same pure function
// the Tenant reconciler uses, and reports a tenant Enabled only once the
// Tenant reconciler has applied the change (its status says so).
func (r *PlatformMigrationReconciler) evaluateTenants(ctx context.Context, m *identityv1alpha1.PlatformMigration, now time.Time) ([]tenantOutcome, error) {
	for _, s := range []*metav1.LabelSelector{m.Spec.TenantSelector, m.Spec.NamespaceSelector} {
		if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
			return nil, reconcile.Stalling(identityv1alpha1.ReasonInvalidSelector, "the migration's selector is invalid: %v", err)
		}
	}
	// Every Tenant and EmailProvider, read straight from the cache without a
	// copy (thousands of them, on every pass): nothing below modifies them.
	fleet := r.fleet()
	var tenants identityv1alpha1.TenantList
	if err := fleet.List(ctx, &tenants, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var providers identityv1alpha1.EmailProviderList
	if err := fleet.List(ctx, &providers, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	// Grouped by the tenant they serve, so that each tenant's readiness
	// looks at its own providers, not at every one of its namespace.
	byTenant := map[types.NamespacedName][]identityv1alpha1.EmailProvider{}
	for _, p := range providers.Items {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Spec.TenantRef.Name}
		byTenant[key] = append(byTenant[key], p)
	}
	// The CustomDatabaseConnections likewise, only for a migration whose
	// checks read them.
	connectionsOf := map[types.NamespacedName][]identityv1alpha1.CustomDatabaseConnection{}
	if needsConnections(m) {
		var connections identityv1alpha1.CustomDatabaseConnectionList
		if err := fleet.List(ctx, &connections, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for _, c := range connections.Items {
			key := types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.TenantRef.Name}
			connectionsOf[key] = append(connectionsOf[key], c)
		}
	}
	view := migrationView{r.Client}
	nsLabels := map[string]map[string]string{}

	var out []tenantOutcome
	for i := range tenants.Items {
		tenant := &tenants.Items[i]
		if !tenant.DeletionTimestamp.IsZero() {
			continue
		}
		labels, ok := nsLabels[tenant.Namespace]
		if !ok {
			var err error
			if labels, err = view.namespaceLabels(ctx, tenant.Namespace); err != nil {
				return nil, err
			}
			nsLabels[tenant.Namespace] = labels
		}
		if ok, _ := selects(m, tenant, labels); !ok {
			continue
		}
		key := client.ObjectKeyFromObject(tenant)
		t := facts(m, tenant, byTenant[key], connectionsOf[key])
		d := migration.Decide(m, t, now)
		t.Flags, t.DeclaredFlags = readFlags(tenant), tenant.Spec.Flags
		o := tenantOutcome{tenant: tenant, decision: d, state: d.State, reason: d.Reason, message: d.Message,
			atDate: migration.AtDate(m, t, tenant.EffectiveManagementPolicy(), now)}
		switch tenant.EffectiveManagementPolicy() {
		case identityv1alpha1.ManagementPolicyObserve:
			// The operator writes nothing to it: it can neither make the
			// change nor tell whether the tenant has it.
			o.state, o.reason = identityv1alpha1.MigrationNotManaged, identityv1alpha1.ReasonNotManaged
			o.message = fmt.Sprintf("Tenant %s/%s is under managementPolicy Observe: the operator writes nothing to %s, so it neither makes this change there nor counts it as enabled; switch it to Apply to have the change made",
				tenant.Namespace, tenant.Name, tenant.Spec.Domain)
			out = append(out, o)
			continue
		case identityv1alpha1.ManagementPolicyPlan:
			if d.Apply && !reportedEnabled(tenant, m.Name) {
				o.state, o.reason = identityv1alpha1.MigrationPending, identityv1alpha1.ReasonPlannedOnly
				o.message = fmt.Sprintf("Tenant %s/%s is under managementPolicy Plan: the change (%s) is shown on it as pending and not written, at the mandatory date neither; switch it to Apply to have it made",
					tenant.Namespace, tenant.Name, d.Message)
				out = append(out, o)
				continue
			}
		}
		if d.Apply {
			// The change is the Tenant reconciler's to make: until its status
			// says it is made, the tenant is not counted as enabled.
			reported := reportedState(tenant, m.Name)
			switch {
			case reported == nil || reported.State == identityv1alpha1.MigrationPending || reported.State == identityv1alpha1.MigrationNotReady:
				o.state, o.reason = identityv1alpha1.MigrationPending, identityv1alpha1.ReasonApplyPending
				o.message = fmt.Sprintf("waiting for Tenant %s/%s to apply the change (%s)", tenant.Namespace, tenant.Name, d.Message)
			case reported.State == identityv1alpha1.MigrationFailed:
				o.state, o.reason, o.message = identityv1alpha1.MigrationFailed, reported.Reason, reported.Message
			}
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].tenant, out[j].tenant
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
	return out, nil
}

// reportedEnabled reports whether the Tenant's status says the migration's
// change is on it.
func reportedEnabled(tenant *identityv1alpha1.Tenant, name string) bool {
	s := reportedState(tenant, name)
	return s != nil && s.State == identityv1alpha1.MigrationEnabled
}

// readFlags are the flag values the Tenant reconciler last read from the
// tenant (those it manages, and those readiness checks read).
func readFlags(tenant *identityv1alpha1.Tenant) map[string]bool {
	out := map[string]bool{}
	if o := tenant.Status.Observed; o != nil {
		for _, f := range o.Flags {
			if f.Value != nil {
				out[f.Name] = *f.Value
			}
		}
	}
	for flag, v := range tenant.Status.Flags {
		out[flag] = v
	}
	return out
}

func reportedState(tenant *identityv1alpha1.Tenant, name string) *identityv1alpha1.TenantMigrationStatus {
	for i := range tenant.Status.Migrations {
		if tenant.Status.Migrations[i].Name == name {
			return &tenant.Status.Migrations[i]
		}
	}
	return nil
}

// writeStatus records phase, deadline, counts, progress and the bounded
// list of tenants that still need attention.
func (r *PlatformMigrationReconciler) writeStatus(ctx context.Context, m *identityv1alpha1.PlatformMigration, outcomes []tenantOutcome, now time.Time) {
	counts := identityv1alpha1.MigrationTenantCounts{Selected: int32(len(outcomes))}
	attention := []identityv1alpha1.TenantAttention{}
	for _, o := range outcomes {
		switch o.state {
		case identityv1alpha1.MigrationEnabled:
			counts.Enabled++
			switch o.decision.Reason {
			case migration.ReasonOptedIn:
				counts.OptedIn++
			case migration.ReasonAutoEnrolled:
				counts.AutoEnrolled++
			}
			continue
		case identityv1alpha1.MigrationPending:
			counts.Pending++
		case identityv1alpha1.MigrationNotReady:
			counts.NotReady++
		case identityv1alpha1.MigrationAffected:
			counts.Affected++
		case identityv1alpha1.MigrationFailed:
			counts.Failed++
		case identityv1alpha1.MigrationNotManaged:
			counts.NotManaged++
		}
		if len(attention) < identityv1alpha1.MaxTenantsNeedingAttention {
			attention = append(attention, identityv1alpha1.TenantAttention{Namespace: o.tenant.Namespace, Name: o.tenant.Name,
				State: o.state, Reason: o.reason, Message: o.message})
		}
	}

	previous := m.Status.Phase
	phase := migration.PhaseWithTenants(&m.Spec, now, int(counts.Selected), int(counts.Enabled))
	m.Status.Phase = phase
	m.Status.Deadline = m.Spec.MandatoryOptIn
	m.Status.Tenants = &counts
	m.Status.Progress = fmt.Sprintf("%d/%d", counts.Enabled, counts.Selected)
	if atDate := planAtDate(m, outcomes, now); !equality.Semantic.DeepEqual(m.Status.AtDate, atDate) {
		m.Status.AtDate = atDate
	}
	if !equality.Semantic.DeepEqual(m.Status.TenantsNeedingAttention, attention) {
		m.Status.TenantsNeedingAttention = attention
	}
	enforced := phase == identityv1alpha1.PhaseEnforced || phase == identityv1alpha1.PhaseCompleted
	if enforced && m.Status.EnforcedTime == nil {
		m.Status.EnforcedTime = &metav1.Time{Time: now}
		if m.Spec.Change == nil {
			// An end of life: the platform makes the change, the operator
			// reports (this first pass's counts may still include tenants
			// not read yet, so they are not given here).
			r.Recorder.Eventf(m, corev1.EventTypeNormal, identityv1alpha1.EventReasonEnforced,
				"the mandatory date %s has passed: the platform makes this change itself; those of the %d selected tenants that still fail its readiness checks are reported Affected",
				m.Spec.MandatoryOptIn.UTC().Format(time.RFC3339), counts.Selected)
		} else {
			r.Recorder.Eventf(m, corev1.EventTypeNormal, identityv1alpha1.EventReasonEnforced,
				"the mandatory date %s has passed: the change is enforced on all %d selected tenants", m.Spec.MandatoryOptIn.UTC().Format(time.RFC3339), counts.Selected)
		}
	}
	if previous != phase {
		log.FromContext(ctx).V(1).Info("phase changed", "from", previous, "to", phase)
	}

	deadline := metav1.Condition{Type: ConditionDeadlinePassed, ObservedGeneration: m.Generation}
	switch {
	case m.Spec.MandatoryOptIn == nil:
		deadline.Status, deadline.Reason, deadline.Message = metav1.ConditionFalse, identityv1alpha1.ReasonMandatoryDateTBD, "the platform has not set a mandatory date yet"
	case enforced:
		deadline.Status, deadline.Reason = metav1.ConditionTrue, identityv1alpha1.ReasonMandatoryDatePassed
		deadline.Message = "the mandatory date " + m.Spec.MandatoryOptIn.UTC().Format(time.RFC3339) + " has passed"
	default:
		deadline.Status, deadline.Reason = metav1.ConditionFalse, identityv1alpha1.ReasonMandatoryDateAhead
		deadline.Message = "the mandatory date is " + m.Spec.MandatoryOptIn.UTC().Format(time.RFC3339)
	}
	conditions := m.Status.Conditions
	meta.SetStatusCondition(&conditions, deadline)
	m.Status.Conditions = conditions

	r.Metrics.observe(m, now)
}

// planAtDate is status.atDate: what the mandatory date does to the
// selected tenants (outcomes are sorted by namespace and name already).
// Nil for a migration that changes no flag.
func planAtDate(m *identityv1alpha1.PlatformMigration, outcomes []tenantOutcome, now time.Time) *identityv1alpha1.MigrationAtDate {
	if m.Spec.Change == nil {
		return nil
	}
	p := &identityv1alpha1.MigrationAtDate{Passed: migration.Phase(&m.Spec, now) == identityv1alpha1.PhaseEnforced}
	for _, o := range outcomes {
		switch o.atDate {
		case identityv1alpha1.DateImpactChange:
			p.Changes++
		case identityv1alpha1.DateImpactPlannedOnly:
			p.PlannedOnly++
		case identityv1alpha1.DateImpactNotManaged:
			p.NotManaged++
		default:
			continue
		}
		if len(p.Tenants) < identityv1alpha1.MaxTenantsAtDate {
			p.Tenants = append(p.Tenants, identityv1alpha1.TenantAtDate{Namespace: o.tenant.Namespace, Name: o.tenant.Name, Impact: o.atDate})
		}
	}
	when := "when the platform sets the mandatory date and it comes"
	if d := m.Spec.MandatoryOptIn; d != nil {
		when = "at " + d.UTC().Format(time.RFC3339)
	}
	if p.Passed {
		p.Summary = fmt.Sprintf("the change was enforced %s on %d tenants that had not opted in", when, p.Changes)
	} else {
		p.Summary = fmt.Sprintf("%d tenants will be changed %s", p.Changes, when)
	}
	if p.PlannedOnly > 0 {
		p.Summary += fmt.Sprintf("; %d more under managementPolicy Plan are only shown the change, not written", p.PlannedOnly)
	}
	if p.NotManaged > 0 {
		p.Summary += fmt.Sprintf("; %d under managementPolicy Observe are not managed: nothing is written to them", p.NotManaged)
	}
	return p
}

// remind sends a round of reminders when one is due: an Event on every
// tenant that has not got the change, and an email to its administrators
// when a relay is configured. It returns when the next round is due (zero
// when no tenant needs one). The time of the last round is kept in status,
// so a restart does not remind early or twice.
func (r *PlatformMigrationReconciler) remind(ctx context.Context, m *identityv1alpha1.PlatformMigration, outcomes []tenantOutcome, now time.Time) (time.Time, error) {
	if m.Status.Phase == identityv1alpha1.PhaseScheduled || m.Status.Phase == identityv1alpha1.PhaseCompleted {
		return time.Time{}, nil
	}
	if sent, ok := r.reminded.Recall(m); ok && (m.Status.LastReminderTime == nil || sent.After(m.Status.LastReminderTime.Time)) {
		m.Status.LastReminderTime = &metav1.Time{Time: sent}
	}
	// A tenant whose readiness is not known yet (its settings not read
	// since the check appeared) is not told it must act.
	var waiting []tenantOutcome
	unknown := 0
	for _, o := range outcomes {
		switch {
		case o.reason == migration.ReasonReadinessUnknown:
			unknown++
		case o.decision.Apply && o.state != identityv1alpha1.MigrationFailed && o.tenant.Manages():
			// The operator is making the change on this tenant (at the
			// mandatory date, on every tenant at once): nothing for its
			// administrators to do, and a round of thousands of events
			// would only compete with the PATCHes.
		case o.state != identityv1alpha1.MigrationEnabled:
			waiting = append(waiting, o)
		}
	}
	// The first round waits, a little, for every tenant to be read, so
	// that it reaches all of those that must act at once.
	if settled := m.CreationTimestamp.Add(readinessSettle); unknown > 0 && m.Status.LastReminderTime == nil && now.Before(settled) {
		if retry := now.Add(readinessSettleRetry); retry.Before(settled) {
			return retry, nil
		}
		return settled, nil
	}
	if len(waiting) == 0 {
		return time.Time{}, nil
	}
	interval := 168 * time.Hour
	if m.Spec.ReminderInterval != nil {
		interval = m.Spec.ReminderInterval.Duration
	}
	var last *time.Time
	if m.Status.LastReminderTime != nil {
		last = &m.Status.LastReminderTime.Time
	}
	var mandatory *time.Time
	if m.Spec.MandatoryOptIn != nil {
		mandatory = &m.Spec.MandatoryOptIn.Time
	}
	due, next := migration.ReminderDueAt(last, interval, mandatory, now)
	if !due {
		return next, nil
	}

	var failures []string
	for _, o := range waiting {
		text := reminderText(m, o)
		r.Recorder.Event(o.tenant, corev1.EventTypeWarning, identityv1alpha1.EventReasonReminder, text)
		if r.Mailer == nil || len(o.tenant.Spec.AdministratorEmails) == 0 {
			continue
		}
		subject := fmt.Sprintf("[%s] Action needed on %s: %s", m.Spec.Severity, o.tenant.Spec.Domain, m.Name)
		if err := r.Mailer.Send(ctx, o.tenant.Spec.AdministratorEmails, subject, text+"\n\n"+m.Spec.Description+"\n"); err != nil {
			failures = append(failures, fmt.Sprintf("%s/%s: %v", o.tenant.Namespace, o.tenant.Name, err))
		}
	}
	m.Status.LastReminderTime = &metav1.Time{Time: now}
	r.reminded.Remember(m, now)
	if len(failures) > 0 {
		// The round counts as sent (Events went out); the mail failures are
		// reported and retried with the next round rather than re-sending
		// to everyone now.
		r.Recorder.Eventf(m, corev1.EventTypeWarning, "ReminderEmailFailed", "reminder emails failed for %s", strings.Join(failures, "; "))
	}
	return next, nil
}

func reminderText(m *identityv1alpha1.PlatformMigration, o tenantOutcome) string {
	when := "the platform has not set a mandatory date yet"
	if m.Spec.MandatoryOptIn != nil {
		when = "mandatory from " + m.Spec.MandatoryOptIn.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (%s severity, %s): tenant %s is %s (%s): %s", m.Name, m.Spec.Severity, when,
		o.tenant.Spec.Domain, o.state, o.reason, o.message)
}

// MigrationMetrics are the gauges a PrometheusRule alerts on.
type MigrationMetrics struct {
	deadline *prometheus.GaugeVec
	tenants  *prometheus.GaugeVec
}

// NewMigrationMetrics creates the gauges and registers them on reg (nil:
// not registered).
func NewMigrationMetrics(reg prometheus.Registerer) *MigrationMetrics {
	m := &MigrationMetrics{
		deadline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "identity_migration_deadline_seconds",
			Help: "Seconds until the migration's mandatory date (negative once passed); absent while the date is TBD.",
		}, []string{"migration", "severity"}),
		tenants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "identity_migration_tenants",
			Help: "Selected tenants of a migration by state (Enabled, Pending, NotReady, Affected, Failed, NotManaged).",
		}, []string{"migration", "state"}),
	}
	if reg != nil {
		reg.MustRegister(m.deadline, m.tenants)
	}
	return m
}

func (mm *MigrationMetrics) observe(m *identityv1alpha1.PlatformMigration, now time.Time) {
	if mm == nil {
		return
	}
	mm.deadline.DeletePartialMatch(prometheus.Labels{"migration": m.Name})
	if m.Spec.MandatoryOptIn != nil {
		mm.deadline.WithLabelValues(m.Name, string(m.Spec.Severity)).Set(m.Spec.MandatoryOptIn.Sub(now).Seconds())
	}
	t := m.Status.Tenants
	for state, n := range map[identityv1alpha1.MigrationState]int32{identityv1alpha1.MigrationEnabled: t.Enabled,
		identityv1alpha1.MigrationPending: t.Pending, identityv1alpha1.MigrationNotReady: t.NotReady,
		identityv1alpha1.MigrationAffected: t.Affected, identityv1alpha1.MigrationFailed: t.Failed,
		identityv1alpha1.MigrationNotManaged: t.NotManaged} {
		mm.tenants.WithLabelValues(m.Name, string(state)).Set(float64(n))
	}
}

func (mm *MigrationMetrics) forget(name string) {
	if mm == nil {
		return
	}
	mm.deadline.DeletePartialMatch(prometheus.Labels{"migration": name})
	mm.tenants.DeletePartialMatch(prometheus.Labels{"migration": name})
}

// tenantMigrationsChanged lets through Tenant events that can change a
// migration's report: a new Tenant or a deleted one, new labels or spec
// (opt-ins, createdAt), or a change of the migrations in its status. A
// resync that only moves lastSyncTime is not one.
func tenantMigrationsChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		before, okOld := e.ObjectOld.(*identityv1alpha1.Tenant)
		after, okNew := e.ObjectNew.(*identityv1alpha1.Tenant)
		if !okOld || !okNew {
			return true
		}
		return before.Generation != after.Generation || !equality.Semantic.DeepEqual(before.Labels, after.Labels) ||
			before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero() ||
			!equality.Semantic.DeepEqual(before.Status.Migrations, after.Status.Migrations)
	}}
}

// fleet is where the Tenants and EmailProviders are read from.
func (r *PlatformMigrationReconciler) fleet() client.Reader {
	if r.Fleet != nil {
		return r.Fleet
	}
	return r.Client
}

// SetupWithManager registers the reconciler. Every PlatformMigration is
// re-evaluated when a Tenant's migrations, an EmailProvider's readiness or
// a namespace's labels change.
func (r *PlatformMigrationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []ctrl.Request {
		var list identityv1alpha1.PlatformMigrationList
		if err := r.List(ctx, &list); err != nil {
			return nil
		}
		out := make([]ctrl.Request, 0, len(list.Items))
		for _, m := range list.Items {
			out = append(out, ctrl.Request{NamespacedName: client.ObjectKey{Name: m.Name}})
		}
		return out
	})
	fleet := r.Fleet
	if fleet == nil {
		fleet = mgr.GetCache()
	}
	return ctrl.NewControllerManagedBy(mgr).WithOptions(controllerOptions()).
		For(&identityv1alpha1.PlatformMigration{}, builder.WithPredicates(reconcile.SpecChanged())).
		WatchesRawSource(source.Kind[client.Object](fleet, &identityv1alpha1.Tenant{}, all, tenantMigrationsChanged())).
		WatchesRawSource(source.Kind[client.Object](fleet, &identityv1alpha1.EmailProvider{}, all, reconcile.ReadinessChanged())).
		Watches(&corev1.Namespace{}, all, builder.WithPredicates(predicate.LabelChangedPredicate{}), builder.OnlyMetadata).
		Complete(r)
}
