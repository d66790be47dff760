package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/migration"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/scopes"
)

// Tenant condition types (the reasons are in api/v1alpha1).
const (
	// ConditionMigrationOverride is True while an enabled migration overrides
	// a flag value the Tenant declares.
	ConditionMigrationOverride = "MigrationOverride"

	templateResyncInterval = time.Hour
	rateLimitRetry         = 10 * time.Second
	dependentsRetry        = 10 * time.Second
	// readinessChangedRetry is how soon a Tenant is visited again when the
	// settings a pass read changed a readiness outcome, and with it the
	// flags to send.
	readinessChangedRetry = 100 * time.Millisecond
)

// TenantReconciler keeps a tenant's settings, flags and reset_email template
// as its Tenant declares, merged with the flags of the PlatformMigrations
// enabled for it. It is the only writer of tenant settings: whatever the
// flags' source, one PATCH carries them all.
type TenantReconciler struct {
	client.Client
	Access         *TenantAccess
	Clock          clock.PassiveClock
	Recorder       record.EventRecorder
	Summarizer     reconcile.Summarizer
	ResyncInterval time.Duration
	// Events posts the events that must be posted exactly once.
	Events *onceEvents
	// Transitions sends the PATCHes prepared for a transition at its
	// moment; nil sends them from the pass at the moment instead.
	Transitions *transitions
	// Shard makes sure no other operator instance writes what this one does
	// (internal/shard).
	Shard reconcile.Ownership
	// Remote bounds the deletion's wait for the tenant (internal/managed).
	Remote *managed.Step
}

// Reconcile runs one pass for a Tenant.
func (r *TenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Pass(ctx, r.Client, r.Summarizer, req, &identityv1alpha1.Tenant{}, reconcile.Steps[*identityv1alpha1.Tenant]{
		Apply: r.applyTenant, Delete: r.reconcileDelete, Shard: r.Shard,
		// Deleted, or moved to another shard: what was prepared for its
		// next transition is no longer this instance's to send.
		Gone: func(req ctrl.Request) {
			if r.Transitions != nil {
				r.Transitions.forget(req.NamespacedName)
			}
		},
	})
}

// reconcileTenant brings the tenant in line, step by step.
func (r *TenantReconciler) reconcileTenant(ctx context.Context, tenant *identityv1alpha1.Tenant) (reconcile.Success, error) {
	api, err := r.Access.ClientFor(ctx, tenant)
	if err != nil {
		return reconcile.Success{}, err
	}
	inputs, err := r.migrationInputs(ctx, tenant)
	if err != nil {
		return reconcile.Success{}, err
	}
	now := r.Clock.Now()
	plan := inputs.plan(tenant, now)
	r.reportOverrides(tenant, plan)
	if err := checkGrant(ctx, api, tenant, tenant, scopes.ForTenant(tenant, len(plan.flags) > 0)); err != nil {
		// The migrations whose flags this pass would send are not applied:
		// their PlatformMigrations report the tenant Failed, with why.
		plan.markFailed(tenant, err)
		return reconcile.Success{}, err
	}
	defer recordRateLimit(tenant, api)
	if !tenant.Manages() {
		return r.planTenant(ctx, api, tenant, inputs, plan, now)
	}

	if err := r.syncSettings(ctx, api, tenant, plan); err != nil {
		plan.markFailed(tenant, err)
		return reconcile.Success{}, err
	}
	// The settings just read (or the PATCH's answer) may change what a
	// readiness check says: decide again on them, so that status says it
	// now. If that changes the flags to send, the next pass sends them, at
	// once rather than at the resync.
	replan := inputs.plan(tenant, now)
	promptly := false
	if equality.Semantic.DeepEqual(replan.flags, plan.flags) {
		plan = replan
	} else {
		promptly = true
	}
	r.recordMigrations(ctx, tenant, plan, now)
	if err := r.syncResetEmail(ctx, api, tenant); err != nil {
		return reconcile.Success{}, err
	}
	managed.Clear(tenant, &tenant.Status.Plan)
	prepared := r.prepareTransition(tenant, api, inputs, plan, now)

	// Back for the next transition of a migration (a mandatory date, say):
	// once shortly before it to prepare the change, then at it to record
	// what was sent - a moment after it when the PATCH is prepared, so that
	// the process's CPU goes to sending every tenant's PATCH first.
	wakeUp := migration.TenantWakeUp(now, plan.nextTransition)
	if prepared {
		wakeUp = plan.nextTransition.Add(transitionRecordDelay)
	}
	requeue := r.ResyncInterval
	if d, ok := migration.RequeueAfter(now, wakeUp); ok && d < requeue {
		requeue = d
	}
	if promptly {
		requeue = readinessChangedRetry
	}
	return reconcile.Success{Reason: identityv1alpha1.ReasonSynced, RequeueAfter: requeue,
		Message: fmt.Sprintf("%s is in the declared state (%d flags managed, %d migrations pending)", tenant.Spec.Domain, len(plan.flags), tenant.Status.MigrationsPending)}, nil
}

// prepareTransition hands the PATCH that the next calendar transition (a
// mandatory date) will need to r.Transitions, once the transition is
// within migration.PrepareAhead: at the moment itself it goes to every tenant
// at once, without waiting for a worker or a status write. Nothing is
// prepared when the transition changes nothing for this tenant.
func (r *TenantReconciler) prepareTransition(tenant *identityv1alpha1.Tenant, api identity.Client, inputs *migrationInputs, plan *migrationPlan, now time.Time) bool {
	at := plan.nextTransition
	// Only under Apply: the date's PATCH is a write like any other.
	if r.Transitions == nil || !tenant.Manages() || at.IsZero() || at.Sub(now) > migration.PrepareAhead {
		return false
	}
	then := inputs.plan(tenant, at)
	desired := desiredHash(tenant, then.flags)
	if desired == desiredHash(tenant, plan.flags) {
		return false
	}
	patch, _ := settingsDiff(tenant.Spec.Settings, then.flags, nil)
	r.Transitions.prepare(client.ObjectKeyFromObject(tenant), at, desired, api, patch)
	return true
}

// migrationPlan is what the PlatformMigrations selecting a tenant mean for
// it at a moment: the flags to send and each migration's decision.
type migrationPlan struct {
	flags          map[string]bool
	overrides      []migration.Override
	decisions      map[string]migration.Decision
	nextTransition time.Time
	// changedBy names, for each flag an applied migration's change sets,
	// the migrations that set it (a retired flag among them too).
	changedBy map[string][]string
	// checkedFlags are the flags the FlagValue readiness checks of the
	// selecting migrations read: their values are recorded at each read.
	checkedFlags []string
	// named are the flags the changes of the selecting migrations name,
	// applied or not: a retired flag is remembered while one names it.
	named map[string]bool
}

// migrationInputs is what deciding the tenant's migrations reads from the
// cache: the migrations, the tenant's EmailProviders and its namespace's
// labels. Read once per pass, decided for now and, before a transition,
// for the transition's moment.
type migrationInputs struct {
	migrations  []identityv1alpha1.PlatformMigration
	providers   []identityv1alpha1.EmailProvider
	connections []identityv1alpha1.CustomDatabaseConnection
	nsLabels    map[string]string
}

func (r *TenantReconciler) migrationInputs(ctx context.Context, tenant *identityv1alpha1.Tenant) (*migrationInputs, error) {
	var migrations identityv1alpha1.PlatformMigrationList
	if err := r.List(ctx, &migrations); err != nil {
		return nil, err
	}
	// This tenant's providers only (by index): a namespace may hold
	// thousands, and every Tenant pass needs this.
	var providers identityv1alpha1.EmailProviderList
	if err := r.List(ctx, &providers, client.InNamespace(tenant.Namespace), client.MatchingFields{indexTenantRef: tenant.Name}); err != nil {
		return nil, err
	}
	// Its CustomDatabaseConnections only when a migration's check reads them.
	var connections identityv1alpha1.CustomDatabaseConnectionList
	for i := range migrations.Items {
		if needsConnections(&migrations.Items[i]) {
			if err := r.List(ctx, &connections, client.InNamespace(tenant.Namespace), client.MatchingFields{indexTenantRef: tenant.Name}); err != nil {
				return nil, err
			}
			break
		}
	}
	nsLabels, err := migrationView{r.Client}.namespaceLabels(ctx, tenant.Namespace)
	if err != nil {
		return nil, err
	}
	return &migrationInputs{migrations: migrations.Items, providers: providers.Items, connections: connections.Items, nsLabels: nsLabels}, nil
}

// plan decides every migration that selects the tenant at now and merges
// the flags of those to apply with the Tenant's own.
func (in *migrationInputs) plan(tenant *identityv1alpha1.Tenant, now time.Time) *migrationPlan {
	plan := &migrationPlan{decisions: map[string]migration.Decision{}, changedBy: map[string][]string{}, named: map[string]bool{}}
	var changes []migration.Change
	for i := range in.migrations {
		m := &in.migrations[i]
		ok, err := selects(m, tenant, in.nsLabels)
		if err != nil || !ok {
			continue // a bad selector is reported on the PlatformMigration
		}
		plan.checkedFlags = append(plan.checkedFlags, migration.CheckedFlags(m)...)
		if m.Spec.Change != nil {
			for flag := range m.Spec.Change.Flags {
				plan.named[flag] = true
			}
		}
		d := migration.Decide(m, facts(m, tenant, in.providers, in.connections), now)
		if d.Apply {
			flags := m.Spec.Change.Flags
			for flag := range flags {
				plan.changedBy[flag] = append(plan.changedBy[flag], m.Name)
			}
			// A flag the platform no longer has is not sent again.
			if retired := retiredFlagsOf(tenant, flags); len(retired) > 0 {
				flags = withoutFlags(flags, retired)
				d = flagRetiredDecision(m.Name, retired)
			}
			changes = append(changes, migration.Change{Migration: m.Name, Flags: flags})
		}
		plan.decisions[m.Name] = d
		if at, ok := migration.NextTransition(&m.Spec, now); ok && (plan.nextTransition.IsZero() || at.Before(plan.nextTransition)) {
			plan.nextTransition = at
		}
	}
	plan.flags, plan.overrides = migration.MergeFlags(tenant.Spec.Flags, changes)
	return plan
}

// reportOverrides sets the MigrationOverride condition when a migration
// wins over a declared flag, with a Warning event when it starts.
func (r *TenantReconciler) reportOverrides(tenant *identityv1alpha1.Tenant, plan *migrationPlan) {
	conditions := tenant.Status.Conditions
	if len(plan.overrides) == 0 {
		meta.RemoveStatusCondition(&conditions, ConditionMigrationOverride)
	} else {
		var parts []string
		for _, o := range plan.overrides {
			parts = append(parts, fmt.Sprintf("flags.%s is %t, not %t as declared, because %s is enabled", o.Flag, o.Value, o.Declared, o.Migration))
		}
		msg := strings.Join(parts, "; ") + ": remove the flag from spec.flags"
		if !meta.IsStatusConditionTrue(conditions, ConditionMigrationOverride) {
			r.Recorder.Event(tenant, corev1.EventTypeWarning, identityv1alpha1.EventReasonOverridden, msg)
		}
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: ConditionMigrationOverride, Status: metav1.ConditionTrue,
			Reason: identityv1alpha1.ReasonFlagOverridden, Message: msg, ObservedGeneration: tenant.Generation})
	}
	tenant.Status.Conditions = conditions
}

// recordMigrations writes each migration's state to the Tenant's status
// once the settings carry the change, and posts one MigrationEnabled event
// per migration that became enabled. The event's name is derived from what
// it reports, so a pass repeated after a restart (the status write lost)
// finds it posted and does not post it twice.
func (r *TenantReconciler) recordMigrations(ctx context.Context, tenant *identityv1alpha1.Tenant, plan *migrationPlan, now time.Time) {
	enabled := plan.record(tenant, now)
	for _, name := range enabled {
		d := plan.decisions[name]
		key := fmt.Sprintf("migration-enabled/%s/%d", name, tenant.Generation)
		if err := r.Events.Once(ctx, tenant, key, corev1.EventTypeNormal, identityv1alpha1.EventReasonMigrationEnabled,
			fmt.Sprintf("%s is enabled on %s (%s): %s", name, tenant.Spec.Domain, d.Reason, d.Message)); err != nil {
			log.FromContext(ctx).Error(err, "posting the MigrationEnabled event", "migration", name)
		}
	}
}

// record writes each migration's state to the Tenant's status once the
// settings carry the change, and returns the migrations that became enabled.
func (p *migrationPlan) record(tenant *identityv1alpha1.Tenant, now time.Time) (enabled []string) {
	previous := map[string]identityv1alpha1.TenantMigrationStatus{}
	for _, m := range tenant.Status.Migrations {
		previous[m.Name] = m
	}
	names := make([]string, 0, len(p.decisions))
	for name := range p.decisions {
		names = append(names, name)
	}
	sort.Strings(names)

	statuses := make([]identityv1alpha1.TenantMigrationStatus, 0, len(names))
	pending := int32(0)
	for _, name := range names {
		d := p.decisions[name]
		s := identityv1alpha1.TenantMigrationStatus{Name: name, State: d.State, Reason: d.Reason, Message: d.Message}
		if d.State == identityv1alpha1.MigrationEnabled {
			s.EnabledTime = previous[name].EnabledTime
			if s.EnabledTime == nil || previous[name].State != identityv1alpha1.MigrationEnabled {
				s.EnabledTime = &metav1.Time{Time: now}
				enabled = append(enabled, name)
			}
		} else {
			pending++
		}
		statuses = append(statuses, s)
	}
	tenant.Status.Migrations = statuses
	tenant.Status.MigrationsPending = pending
	tenant.Status.RetiredFlags = p.keepRetired(tenant.Status.RetiredFlags)
	return enabled
}

// markFailed records, when the settings could not be written, that the
// migrations which needed them are failing.
func (p *migrationPlan) markFailed(tenant *identityv1alpha1.Tenant, err error) {
	for i := range tenant.Status.Migrations {
		s := &tenant.Status.Migrations[i]
		if d, ok := p.decisions[s.Name]; ok && d.Apply && s.State != identityv1alpha1.MigrationEnabled {
			s.State, s.Reason, s.Message = identityv1alpha1.MigrationFailed, "SettingsNotApplied", err.Error()
		}
	}
	for name, d := range p.decisions {
		if !d.Apply || hasMigrationStatus(tenant, name) {
			continue
		}
		tenant.Status.Migrations = append(tenant.Status.Migrations, identityv1alpha1.TenantMigrationStatus{
			Name: name, State: identityv1alpha1.MigrationFailed, Reason: "SettingsNotApplied", Message: err.Error()})
	}
}

func hasMigrationStatus(tenant *identityv1alpha1.Tenant, name string) bool {
	for _, s := range tenant.Status.Migrations {
		if s.Name == name {
			return true
		}
	}
	return false
}

// syncSettings sends one PATCH when the declared settings and flags (the
// migrations' included) are not yet on the tenant, and costs one read
// otherwise.
//
//   - At a transition (a mandatory date) the PATCH was prepared before it
//     and sent the moment it came (see transitions): the pass records its
//     answer and sends nothing.
//   - A new spec (or a first pass) goes out at once, every declared key in
//     one PATCH whose answer is the settings: no read first.
//   - A spec already applied whose merged flags changed (a migration
//     enabled) is read first and only what differs is sent: a process that
//     stopped after sending the PATCH and before recording it may have made
//     the change already, and it is not sent twice.
//   - Otherwise the pass reads the settings, and a managed value that
//     differs is drift: someone changed the tenant behind the operator's
//     back; one PATCH restores it and a Warning event names what was
//     restored.
func (r *TenantReconciler) syncSettings(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant, plan *migrationPlan) error {
	for {
		err := r.applySettings(ctx, api, tenant, plan)
		var retired *flagRetiredError
		if !errors.As(err, &retired) {
			return err
		}
		// A migration's flag the platform no longer has: the rest of the
		// settings go out in this pass, without it (see retireFlag).
		r.retireFlag(ctx, tenant, plan, retired)
	}
}

// applySettings is one attempt of syncSettings.
func (r *TenantReconciler) applySettings(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant, plan *migrationPlan) error {
	desired := desiredHash(tenant, plan.flags)
	if refused := tenant.Status.RefusedTime; tenant.Status.RefusedHash == desired && refused != nil &&
		r.Clock.Since(refused.Time) < r.Summarizer.StalledRetry {
		// The platform refused exactly this; asking again before the
		// stalled retry is due would only be refused again.
		msg := "the platform refused the declared flags: remove the refused flag from spec.flags"
		if c := meta.FindStatusCondition(tenant.Status.Conditions, identityv1alpha1.ConditionStalled); c != nil && c.Reason == identityv1alpha1.ReasonFlagRefused {
			msg = c.Message
		}
		return reconcile.Stalling(identityv1alpha1.ReasonFlagRefused, "%s", msg)
	}

	observed, sent, err := r.transitionOutcome(ctx, tenant, desired)
	if err != nil {
		return r.settingsRefused(tenant, plan, desired, err)
	}
	if !sent {
		applied := tenant.Status.AppliedHash
		drift := applied == desired
		// A tenant that was under Plan or Observe (status.plan) is read
		// first too: Apply then sends exactly the changes its plan listed,
		// not every declared key.
		if drift || (applied != "" && tenant.Status.ObservedGeneration == tenant.Generation) || tenant.Status.Plan != nil {
			if observed, err = api.GetTenantSettings(ctx); err != nil {
				return classify(tenant, "reading the tenant settings", err)
			}
		}
		patch, changed := settingsDiff(tenant.Spec.Settings, plan.flags, observed)
		if !patch.IsEmpty() {
			if drift {
				r.Recorder.Eventf(tenant, corev1.EventTypeWarning, identityv1alpha1.EventReasonDrift,
					"restored values changed outside the operator: %s", strings.Join(changed, ", "))
				log.FromContext(ctx).Info("correcting drift", "fields", changed)
			}
			if observed, err = api.PatchTenantSettings(ctx, patch); err != nil {
				return r.settingsRefused(tenant, plan, desired, err)
			}
			sent = true
		} else if observed == nil {
			// Nothing declared at all: read what there is, for status.
			if observed, err = api.GetTenantSettings(ctx); err != nil {
				return classify(tenant, "reading the tenant settings", err)
			}
		}
	}
	tenant.Status.Settings = observedSettings(tenant.Spec.Settings, observed)
	tenant.Status.Observed = observedState(observed, plan.checkedFlags)
	tenant.Status.Flags = map[string]bool{}
	for flag := range plan.flags {
		if v, ok := observed.Flags[flag]; ok {
			tenant.Status.Flags[flag] = v
		}
	}
	tenant.Status.LastSyncTime = reconcile.SyncTime(tenant.Status.LastSyncTime, r.Clock.Now(), sent, r.ResyncInterval)
	tenant.Status.AppliedHash = desired
	tenant.Status.RefusedHash, tenant.Status.RefusedTime = "", nil
	return nil
}

// transitionOutcome is the answer to the PATCH a transition sent for
// exactly the desired state, when there is one (sent is true).
func (r *TenantReconciler) transitionOutcome(ctx context.Context, tenant *identityv1alpha1.Tenant, desired string) (*identity.TenantSettings, bool, error) {
	if r.Transitions == nil {
		return nil, false, nil
	}
	observed, err, sent := r.Transitions.outcome(ctx, client.ObjectKeyFromObject(tenant), desired)
	return observed, sent, err
}

// settingsRefused classifies a failed settings PATCH, remembering a refused
// flag so the same state is not sent again before the stalled retry. A
// refused flag that only a migration's change sets is a retired flag
// (flagRetiredError), which syncSettings handles.
func (r *TenantReconciler) settingsRefused(tenant *identityv1alpha1.Tenant, plan *migrationPlan, desired string, err error) error {
	if retired := plan.retiredByPlatform(tenant, err); retired != nil {
		return retired
	}
	err = classify(tenant, "updating the tenant settings", err)
	var stalling *reconcile.StallingError
	if errors.As(err, &stalling) && stalling.Reason == identityv1alpha1.ReasonFlagRefused {
		tenant.Status.RefusedHash, tenant.Status.RefusedTime = desired, &metav1.Time{Time: r.Clock.Now()}
	}
	return err
}

// desiredHash fingerprints the declared settings with the merged flags.
func desiredHash(tenant *identityv1alpha1.Tenant, flags map[string]bool) string {
	return hashOf(tenant.UID, struct {
		Settings *identityv1alpha1.TenantSettings
		Flags    map[string]bool
	}{tenant.Spec.Settings, flags})
}

// settingsDiff builds the patch that takes observed to the declared settings
// and flags, and names each field it changes (values are not secrets, but
// only the names are needed). Undeclared settings are never touched. With
// observed nil (not read), the patch carries every declared key.
func settingsDiff(spec *identityv1alpha1.TenantSettings, flags map[string]bool, observed *identity.TenantSettings) (identity.SettingsPatch, []string) {
	var patch identity.SettingsPatch
	var changed []string
	all := observed == nil
	if all {
		observed = &identity.TenantSettings{}
	}
	str := func(key string, want *string, have string, set func(*string)) {
		if want != nil && (all || *want != have) {
			set(want)
			changed = append(changed, "settings."+key)
		}
	}
	hours := func(key string, want *int32, have *float64, set func(*float64)) {
		if want != nil && (all || have == nil || *have != float64(*want)) {
			set(ptr.To(float64(*want)))
			changed = append(changed, "settings."+key)
		}
	}
	if s := spec; s != nil {
		str(identity.SettingFriendlyName, s.FriendlyName, observed.FriendlyName, func(v *string) { patch.FriendlyName = v })
		str(identity.SettingSupportEmail, s.SupportEmail, observed.SupportEmail, func(v *string) { patch.SupportEmail = v })
		str(identity.SettingSupportURL, s.SupportURL, observed.SupportURL, func(v *string) { patch.SupportURL = v })
		str(identity.SettingPictureURL, s.PictureURL, observed.PictureURL, func(v *string) { patch.PictureURL = v })
		str(identity.SettingDefaultDirectory, s.DefaultDirectory, observed.DefaultDirectory, func(v *string) { patch.DefaultDirectory = v })
		str(identity.SettingDefaultAudience, s.DefaultAudience, observed.DefaultAudience, func(v *string) { patch.DefaultAudience = v })
		str(identity.SettingSandboxVersion, s.SandboxVersion, observed.SandboxVersion, func(v *string) { patch.SandboxVersion = v })
		hours(identity.SettingSessionLifetime, s.SessionLifetimeHours, observed.SessionLifetime, func(v *float64) { patch.SessionLifetime = v })
		hours(identity.SettingIdleSessionLifetime, s.IdleSessionLifetimeHours, observed.IdleSessionLifetime, func(v *float64) { patch.IdleSessionLifetime = v })
		if s.EnabledLocales != nil && (all || !equality.Semantic.DeepEqual(s.EnabledLocales, observed.EnabledLocales)) {
			locales := append([]string(nil), s.EnabledLocales...)
			patch.EnabledLocales = &locales
			changed = append(changed, "settings."+identity.SettingEnabledLocales)
		}
		if s.ChangePassword != nil {
			want := &identity.ChangePasswordPage{Enabled: ptr.To(s.ChangePassword.Enabled), HTML: ptr.To(s.ChangePassword.HTML)}
			if all || !jsonEqual(want, observed.ChangePassword) {
				patch.ChangePassword = want
				changed = append(changed, "settings."+identity.SettingChangePassword)
			}
		}
		str(identity.SettingDefaultRedirection, s.DefaultRedirectionURI, observed.DefaultRedirectionURI, func(v *string) { patch.DefaultRedirectionURI = v })
		if s.AllowedLogoutURLs != nil && (all || !equality.Semantic.DeepEqual(s.AllowedLogoutURLs, observed.AllowedLogoutURLs)) {
			urls := append([]string{}, s.AllowedLogoutURLs...)
			patch.AllowedLogoutURLs = &urls
			changed = append(changed, "settings."+identity.SettingAllowedLogoutURLs)
		}
		if s.SessionCookieMode != nil && (all || observed.SessionCookie == nil || observed.SessionCookie.Mode != *s.SessionCookieMode) {
			patch.SessionCookie = &identity.SessionCookie{Mode: *s.SessionCookieMode}
			changed = append(changed, "settings."+identity.SettingSessionCookie)
		}
		if s.ErrorPage != nil {
			want := &identity.ErrorPage{HTML: ptr.To(s.ErrorPage.HTML), ShowLogLink: ptr.To(s.ErrorPage.ShowLogLink), URL: ptr.To(s.ErrorPage.URL)}
			if all || !jsonEqual(want, observed.ErrorPage) {
				patch.ErrorPage = want
				changed = append(changed, "settings."+identity.SettingErrorPage)
			}
		}
	}
	names := make([]string, 0, len(flags))
	for flag := range flags {
		names = append(names, flag)
	}
	sort.Strings(names)
	for _, flag := range names {
		if have, ok := observed.Flags[flag]; all || !ok || have != flags[flag] {
			patch.SetFlag(flag, flags[flag])
			changed = append(changed, "flags."+flag)
		}
	}
	return patch, changed
}

// observedSettings reports, for each setting the spec declares, the value
// the tenant holds.
func observedSettings(spec *identityv1alpha1.TenantSettings, observed *identity.TenantSettings) *identityv1alpha1.ObservedTenantSettings {
	if spec == nil {
		return nil
	}
	out := &identityv1alpha1.ObservedTenantSettings{}
	str := func(declared *string, have string) *string {
		if declared == nil {
			return nil
		}
		return ptr.To(have)
	}
	hours := func(declared *int32, have *float64) *int32 {
		if declared == nil || have == nil {
			return nil
		}
		return ptr.To(int32(*have))
	}
	out.FriendlyName = str(spec.FriendlyName, observed.FriendlyName)
	out.SupportEmail = str(spec.SupportEmail, observed.SupportEmail)
	out.SupportURL = str(spec.SupportURL, observed.SupportURL)
	out.PictureURL = str(spec.PictureURL, observed.PictureURL)
	out.DefaultDirectory = str(spec.DefaultDirectory, observed.DefaultDirectory)
	out.DefaultAudience = str(spec.DefaultAudience, observed.DefaultAudience)
	out.SandboxVersion = str(spec.SandboxVersion, observed.SandboxVersion)
	out.SessionLifetimeHours = hours(spec.SessionLifetimeHours, observed.SessionLifetime)
	out.IdleSessionLifetimeHours = hours(spec.IdleSessionLifetimeHours, observed.IdleSessionLifetime)
	if spec.EnabledLocales != nil {
		out.EnabledLocales = append([]string{}, observed.EnabledLocales...)
	}
	out.DefaultRedirectionURI = str(spec.DefaultRedirectionURI, observed.DefaultRedirectionURI)
	if spec.AllowedLogoutURLs != nil {
		out.AllowedLogoutURLs = append([]string{}, observed.AllowedLogoutURLs...)
	}
	if spec.SessionCookieMode != nil && observed.SessionCookie != nil {
		out.SessionCookieMode = ptr.To(observed.SessionCookie.Mode)
	}
	if spec.ChangePassword != nil && observed.ChangePassword != nil {
		out.ChangePassword = &identityv1alpha1.ObservedHostedPage{Enabled: ptr.Deref(observed.ChangePassword.Enabled, false), HTML: ptr.Deref(observed.ChangePassword.HTML, "")}
	}
	if spec.ErrorPage != nil && observed.ErrorPage != nil {
		out.ErrorPage = &identityv1alpha1.ObservedErrorPage{HTML: ptr.Deref(observed.ErrorPage.HTML, ""),
			ShowLogLink: ptr.Deref(observed.ErrorPage.ShowLogLink, false), URL: ptr.Deref(observed.ErrorPage.URL, "")}
	}
	return out
}

// jsonEqual compares two values by their wire form.
func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// syncResetEmail keeps the reset_email template as declared, creating it
// when it never existed. It reads the template only when the spec changed
// or an hour has passed, so that steady state costs one read per resync
// (the settings) and not two.
func (r *TenantReconciler) syncResetEmail(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant) error {
	spec := tenant.Spec.ResetEmail
	if spec == nil {
		tenant.Status.ResetEmail = nil
		return nil
	}
	hash := hashOf(tenant.UID, spec)
	now := r.Clock.Now()
	// A tenant coming from Plan or Observe (status.plan) reads it at once:
	// its plan may list a change of the template.
	if s := tenant.Status.ResetEmail; s != nil && s.AppliedHash == hash && s.LastSyncTime != nil && now.Sub(s.LastSyncTime.Time) < templateResyncInterval &&
		tenant.Status.Plan == nil {
		return nil
	}

	want := resetEmailWrite(spec)
	current, err := api.GetEmailTemplate(ctx, identity.TemplateResetEmail)
	switch {
	case errors.Is(err, identity.ErrNotFound):
		if _, err := api.CreateEmailTemplate(ctx, resetEmailCreate(want)); err != nil && !errors.Is(err, identity.ErrConflict) {
			return templateError(tenant, err)
		} else if err != nil {
			return classify(tenant, "creating the reset_email template", err) // created meanwhile: the next pass adopts it
		}
	case err != nil:
		return classify(tenant, "reading the reset_email template", err)
	default:
		update, changed := templateDiff(want, current)
		if len(changed) > 0 {
			if tenant.Status.ResetEmail != nil && tenant.Status.ResetEmail.AppliedHash == hash {
				r.Recorder.Eventf(tenant, corev1.EventTypeWarning, identityv1alpha1.EventReasonDrift,
					"restored values of the reset_email template changed outside the operator: %s", strings.Join(changed, ", "))
			}
			if _, err := api.UpdateEmailTemplate(ctx, identity.TemplateResetEmail, update); err != nil {
				return templateError(tenant, err)
			}
		}
	}
	tenant.Status.ResetEmail = &identityv1alpha1.TemplateSyncStatus{AppliedHash: hash, LastSyncTime: &metav1.Time{Time: now}}
	return nil
}

// resetEmailWrite is the reset_email template the spec declares, as the
// body of its PATCH before the diff (templateDiff keeps what differs).
func resetEmailWrite(spec *identityv1alpha1.ResetEmailTemplate) identity.EmailTemplateUpdate {
	want := identity.EmailTemplateUpdate{Enabled: ptr.To(ptr.Deref(spec.Enabled, true))}
	if spec.From != "" {
		want.From = ptr.To(spec.From)
	}
	if spec.Subject != "" {
		want.Subject = ptr.To(spec.Subject)
	}
	if spec.Body != "" {
		want.Body = ptr.To(spec.Body)
	}
	if spec.ResultURL != "" {
		want.ResultURL = ptr.To(spec.ResultURL)
	}
	if spec.URLLifetimeSeconds != nil {
		want.URLLifetimeInSeconds = ptr.To(int(*spec.URLLifetimeSeconds))
	}
	want.IncludeEmailInRedirect = spec.IncludeEmailInRedirect
	return want
}

// resetEmailCreate is the body that creates the template when it never
// existed: only what the spec declares, so that without a body the
// platform's own (which carries the reset link) is used.
func resetEmailCreate(want identity.EmailTemplateUpdate) identity.EmailTemplate {
	return identity.EmailTemplate{Template: identity.TemplateResetEmail, Syntax: "liquid",
		Body: ptr.Deref(want.Body, ""), From: ptr.Deref(want.From, ""), Subject: ptr.Deref(want.Subject, ""),
		ResultURL: ptr.Deref(want.ResultURL, ""), Enabled: want.Enabled,
		URLLifetimeInSeconds: want.URLLifetimeInSeconds, IncludeEmailInRedirect: want.IncludeEmailInRedirect}
}

// templateError explains the platform's refusal of a customized template:
// with the built-in email provider, from, subject and body cannot be changed.
func templateError(tenant *identityv1alpha1.Tenant, err error) error {
	if errors.Is(err, identity.ErrInvalid) {
		return reconcile.Stalling(identityv1alpha1.ReasonTemplateRefused,
			"the platform refused the reset_email template (%v): customizing from, subject or body needs an EmailProvider for this tenant", err)
	}
	return classify(tenant, "updating the reset_email template", err)
}

// templateDiff keeps the fields of want that differ from current.
func templateDiff(want identity.EmailTemplateUpdate, current *identity.EmailTemplate) (identity.EmailTemplateUpdate, []string) {
	var update identity.EmailTemplateUpdate
	var changed []string
	str := func(name string, w *string, have string, set func(*string)) {
		if w != nil && *w != have {
			set(w)
			changed = append(changed, "resetEmail."+name)
		}
	}
	str("from", want.From, current.From, func(v *string) { update.From = v })
	str("subject", want.Subject, current.Subject, func(v *string) { update.Subject = v })
	str("body", want.Body, current.Body, func(v *string) { update.Body = v })
	str("resultURL", want.ResultURL, current.ResultURL, func(v *string) { update.ResultURL = v })
	if want.URLLifetimeInSeconds != nil && ptr.Deref(current.URLLifetimeInSeconds, -1) != *want.URLLifetimeInSeconds {
		update.URLLifetimeInSeconds = want.URLLifetimeInSeconds
		changed = append(changed, "resetEmail.urlLifetimeSeconds")
	}
	if want.IncludeEmailInRedirect != nil && ptr.Deref(current.IncludeEmailInRedirect, false) != *want.IncludeEmailInRedirect {
		update.IncludeEmailInRedirect = want.IncludeEmailInRedirect
		changed = append(changed, "resetEmail.includeEmailInRedirect")
	}
	if ptr.Deref(current.Enabled, false) != *want.Enabled {
		update.Enabled = want.Enabled
		changed = append(changed, "resetEmail.enabled")
	}
	return update, changed
}

// hashOf fingerprints v, salted with the object's UID, so status can tell
// when what was applied changed without holding the values.
func hashOf(uid any, v any) string {
	data, _ := json.Marshal(v)
	sum := sha256.Sum256(append([]byte(fmt.Sprint(uid)+"\x00"), data...))
	return hex.EncodeToString(sum[:16])
}

// recordRateLimit writes the budget the platform last reported to status.
func recordRateLimit(tenant *identityv1alpha1.Tenant, api identity.Client) {
	rl, ok := api.RateLimit()
	if !ok {
		return
	}
	tenant.Status.RateLimit = &identityv1alpha1.RateLimitStatus{Limit: int32(rl.Limit), Remaining: int32(rl.Remaining)}
	if !rl.Reset.IsZero() {
		tenant.Status.RateLimit.ResetTime = &metav1.Time{Time: rl.Reset.UTC()}
	}
}

// reconcileDelete applies the deletion policy, once the objects managed
// through this Tenant (EmailProviders, CustomDatabaseConnections, Actions) are gone:
// they need its credentials to clean up after themselves.
func (r *TenantReconciler) reconcileDelete(ctx context.Context, tenant *identityv1alpha1.Tenant) error {
	dependents, err := dependentsOf(ctx, r.Client, tenant)
	if err != nil {
		return err
	}
	if len(dependents) > 0 {
		return reconcile.Waiting(identityv1alpha1.ReasonDependentsExist, dependentsRetry,
			"waiting for %s to be deleted first: they need this Tenant's credentials to clean up", strings.Join(dependents, ", "))
	}
	// A Tenant refused as a second writer of its domain wrote nothing, and
	// the pooled client is the first one's.
	holder, err := domainHolder(ctx, r.Client, tenant)
	if err != nil {
		return err
	}
	if holder != nil {
		return reconcile.RemoveFinalizer(ctx, r.Client, tenant, identityv1alpha1.Finalizer)
	}
	// Under Plan or Observe nothing is removed, whatever deletionPolicy
	// says (KeepsRemote posts an event saying so).
	if tenant.Spec.DeletionPolicy == identityv1alpha1.DeletionPolicyDelete &&
		!r.Remote.KeepsRemote(tenant, tenant.Spec.DeletionPolicy, tenant.EffectiveManagementPolicy(), describeTenantSettings(tenant)) {
		err := r.Remote.Bounded(ctx, tenant, describeTenantSettings(tenant), func(ctx context.Context) error {
			api, err := r.Access.ClientFor(ctx, tenant)
			if err != nil {
				return err
			}
			return removeManagedSettings(ctx, api, tenant)
		})
		if err != nil {
			return err
		}
	}
	r.Access.Forget(tenant)
	if r.Transitions != nil {
		r.Transitions.forget(client.ObjectKeyFromObject(tenant))
	}
	return reconcile.RemoveFinalizer(ctx, r.Client, tenant, identityv1alpha1.Finalizer)
}

// removeManagedSettings, for deletionPolicy Delete, removes the settings and
// flags the Tenant declares (the platform's defaults apply again) and
// disables its reset_email template. Flags set by migrations stay: taking
// back a platform change is not the Tenant's to do.
func removeManagedSettings(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant) error {
	var patch identity.SettingsPatch
	if s := tenant.Spec.Settings; s != nil {
		for key, declared := range map[string]bool{
			identity.SettingFriendlyName: s.FriendlyName != nil, identity.SettingSupportEmail: s.SupportEmail != nil,
			identity.SettingSupportURL: s.SupportURL != nil, identity.SettingPictureURL: s.PictureURL != nil,
			identity.SettingDefaultDirectory: s.DefaultDirectory != nil, identity.SettingDefaultAudience: s.DefaultAudience != nil,
			identity.SettingSessionLifetime: s.SessionLifetimeHours != nil, identity.SettingIdleSessionLifetime: s.IdleSessionLifetimeHours != nil,
			identity.SettingEnabledLocales: s.EnabledLocales != nil, identity.SettingSandboxVersion: s.SandboxVersion != nil,
			identity.SettingChangePassword: s.ChangePassword != nil, identity.SettingErrorPage: s.ErrorPage != nil,
			identity.SettingSessionCookie: s.SessionCookieMode != nil, identity.SettingAllowedLogoutURLs: s.AllowedLogoutURLs != nil,
			identity.SettingDefaultRedirection: s.DefaultRedirectionURI != nil,
		} {
			if declared {
				patch.Remove = append(patch.Remove, key)
			}
		}
		sort.Strings(patch.Remove)
	}
	for flag := range tenant.Spec.Flags {
		patch.RemoveFlag(flag)
	}
	if !patch.IsEmpty() {
		if _, err := api.PatchTenantSettings(ctx, patch); err != nil {
			return classify(tenant, "removing the managed settings", err)
		}
	}
	if tenant.Spec.ResetEmail != nil {
		_, err := api.UpdateEmailTemplate(ctx, identity.TemplateResetEmail, identity.EmailTemplateUpdate{Enabled: ptr.To(false)})
		if err != nil && !errors.Is(err, identity.ErrNotFound) {
			return classify(tenant, "disabling the reset_email template", err)
		}
	}
	return nil
}

// dependentsOf lists the objects that reference tenant, as "Kind/name".
func dependentsOf(ctx context.Context, c client.Client, tenant *identityv1alpha1.Tenant) ([]string, error) {
	var out []string
	var providers identityv1alpha1.EmailProviderList
	if err := c.List(ctx, &providers, client.InNamespace(tenant.Namespace), client.MatchingFields{indexTenantRef: tenant.Name}); err != nil {
		return nil, err
	}
	for _, p := range providers.Items {
		out = append(out, "EmailProvider/"+p.Name)
	}
	var connections identityv1alpha1.CustomDatabaseConnectionList
	if err := c.List(ctx, &connections, client.InNamespace(tenant.Namespace), client.MatchingFields{indexTenantRef: tenant.Name}); err != nil {
		return nil, err
	}
	for _, cdc := range connections.Items {
		out = append(out, "CustomDatabaseConnection/"+cdc.Name)
	}
	var actions identityv1alpha1.ActionList
	if err := c.List(ctx, &actions, client.InNamespace(tenant.Namespace), client.MatchingFields{indexTenantRef: tenant.Name}); err != nil {
		return nil, err
	}
	for _, act := range actions.Items {
		out = append(out, "Action/"+act.Name)
	}
	return out, nil
}

// SetupWithManager registers the reconciler and what it watches: its Tenants;
// the Secrets and ConfigMaps they reference (metadata only: contents are
// read through contentReader); PlatformMigrations, which can change every
// tenant's flags; and the EmailProviders and CustomDatabaseConnections that
// reference a Tenant (readiness checks, and deletion order).
func (r *TenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).WithOptions(controllerOptions()).
		For(&identityv1alpha1.Tenant{}, builder.WithPredicates(reconcile.SpecChanged())).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.TenantList{}, indexCredentialsSecret)), builder.OnlyMetadata).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.TenantList{}, indexCABundle)), builder.OnlyMetadata).
		// A migration's spec can change every tenant's flags; its status
		// cannot, and calendar transitions come from each Tenant's own requeue.
		Watches(&identityv1alpha1.PlatformMigration{}, handler.EnqueueRequestsFromMapFunc(r.allTenants), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&identityv1alpha1.EmailProvider{}, handler.EnqueueRequestsFromMapFunc(referencedTenant), builder.WithPredicates(reconcile.ReadinessChanged())).
		Watches(&identityv1alpha1.CustomDatabaseConnection{}, handler.EnqueueRequestsFromMapFunc(referencedTenant), builder.WithPredicates(reconcile.ReadinessChanged())).
		Watches(&identityv1alpha1.Action{}, handler.EnqueueRequestsFromMapFunc(referencedTenant), builder.WithPredicates(reconcile.ReadinessChanged())).
		WatchesRawSource(tenantRecovered(r.Access, mgr.GetClient(), &identityv1alpha1.TenantList{})).
		Complete(r)
}

func (r *TenantReconciler) allTenants(ctx context.Context, _ client.Object) []ctrl.Request {
	var tenants identityv1alpha1.TenantList
	if err := r.List(ctx, &tenants); err != nil {
		return nil
	}
	return requestsFor(tenants.Items)
}

func requestsFor(tenants []identityv1alpha1.Tenant) []ctrl.Request {
	out := make([]ctrl.Request, 0, len(tenants))
	for i := range tenants {
		out = append(out, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&tenants[i])})
	}
	return out
}
