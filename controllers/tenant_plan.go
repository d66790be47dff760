package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/migration"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// Field prefixes of a Tenant's plan: it writes two remote objects.
const (
	planSettings   = "settings."
	planResetEmail = "email_templates.reset_email."
)

// planTenant is a pass under managementPolicy Plan or Observe. It reads
// the settings (and the reset_email template, when the spec declares one)
// and reports what Apply would send - the very settingsDiff PATCH and
// template body that syncSettings and syncResetEmail send - and sends
// nothing. Under Plan, the flags a migration would set at its next date
// are listed too, with that date (due). Nothing prepared for a transition
// is kept for the tenant: the date's PATCH goes only to tenants under
// Apply. The settings read are recorded as under Apply (status.settings,
// flags, observed), so status shows the remote state; what was applied
// (appliedHash, lastSyncTime) is left alone, since nothing was.
func (r *TenantReconciler) planTenant(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant, inputs *migrationInputs,
	plan *migrationPlan, now time.Time) (reconcile.Success, error) {
	if r.Transitions != nil {
		r.Transitions.forget(client.ObjectKeyFromObject(tenant))
	}
	policy := tenant.EffectiveManagementPolicy()
	observed, err := api.GetTenantSettings(ctx)
	if err != nil {
		return reconcile.Success{}, classify(tenant, "reading the tenant settings", err)
	}
	tenant.Status.Settings = observedSettings(tenant.Spec.Settings, observed)
	tenant.Status.Observed = observedState(observed, plan.checkedFlags)
	tenant.Status.Flags = map[string]bool{}
	for flag := range plan.flags {
		if v, ok := observed.Flags[flag]; ok {
			tenant.Status.Flags[flag] = v
		}
	}

	changes := settingsChanges(tenant, plan, observed)
	template, err := r.resetEmailChanges(ctx, api, tenant)
	if err != nil {
		return reconcile.Success{}, err
	}
	changes = append(changes, template...)
	requeue := r.ResyncInterval
	if policy == identityv1alpha1.ManagementPolicyPlan {
		changes = append(changes, dueFlagChanges(tenant, inputs, plan, observed)...)
		// At the date the due changes become pending: the plan says so then.
		if d, ok := migration.RequeueAfter(now, plan.nextTransition); ok && d < requeue {
			requeue = d
		}
	}
	notApplied(tenant, inputs, plan, observed)
	r.recordMigrations(ctx, tenant, plan, now)

	result := &identityv1alpha1.ManagementPlan{Policy: policy, Action: identityv1alpha1.PlanNone, Changes: changes}
	result.Pending = managed.Count(changes)
	if result.Pending > 0 {
		result.Action = identityv1alpha1.PlanUpdate
	}
	return managed.Report(tenant, &tenant.Status.Plan, result, "tenant "+tenant.Spec.Domain, requeue)
}

// settingsChanges renders the settings PATCH Apply would send now: the
// flags a migration sets name it.
func settingsChanges(tenant *identityv1alpha1.Tenant, plan *migrationPlan, observed *identity.TenantSettings) []identityv1alpha1.PlannedChange {
	patch, _ := settingsDiff(tenant.Spec.Settings, plan.flags, observed)
	changes := managed.Render(managed.Body{Prefix: planSettings, Value: patch, Current: observed, Expand: []string{"flags"}})
	for i := range changes {
		if flag, ok := strings.CutPrefix(changes[i].Field, planSettings+"flags."); ok {
			changes[i].Migration = migrationsOf(plan, flag)
		}
	}
	return changes
}

// dueFlagChanges lists the flags the selecting migrations set at their
// next transition (a mandatory date) and not before, that the tenant does
// not hold yet: what the date's PATCH would send, with the date.
func dueFlagChanges(tenant *identityv1alpha1.Tenant, inputs *migrationInputs, plan *migrationPlan, observed *identity.TenantSettings) []identityv1alpha1.PlannedChange {
	at := plan.nextTransition
	if at.IsZero() {
		return nil
	}
	then := inputs.plan(tenant, at)
	var out []identityv1alpha1.PlannedChange
	for flag, value := range then.flags {
		if now, ok := plan.flags[flag]; ok && now == value {
			continue // pending now already, or no change at the date
		}
		have, held := observed.Flags[flag]
		if held && have == value {
			continue
		}
		c := identityv1alpha1.PlannedChange{Field: planSettings + "flags." + flag, To: fmt.Sprint(value),
			Due: &metav1.Time{Time: at.UTC()}, Migration: migrationsOf(then, flag)}
		if held {
			c.From = fmt.Sprint(have)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// migrationsOf names the migrations whose change sets flag, for a plan.
func migrationsOf(plan *migrationPlan, flag string) string {
	names := append([]string(nil), plan.changedBy[flag]...)
	sort.Strings(names)
	return strings.Join(names, ",")
}

// resetEmailChanges reads the reset_email template, when the spec declares
// one, and renders what syncResetEmail would send: the create body when it
// does not exist, the templateDiff PATCH otherwise.
func (r *TenantReconciler) resetEmailChanges(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant) ([]identityv1alpha1.PlannedChange, error) {
	spec := tenant.Spec.ResetEmail
	if spec == nil {
		return nil, nil
	}
	want := resetEmailWrite(spec)
	current, err := api.GetEmailTemplate(ctx, identity.TemplateResetEmail)
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return managed.Render(managed.Body{Prefix: planResetEmail, Value: resetEmailCreate(want)}), nil
	case err != nil:
		return nil, classify(tenant, "reading the reset_email template", err)
	}
	update, _ := templateDiff(want, current)
	return managed.Render(managed.Body{Prefix: planResetEmail, Value: update, Current: current}), nil
}

// notApplied reports, under Plan or Observe, a migration decided enabled
// whose flags the tenant does not hold: nothing sends them, so it is not
// enabled, and is never counted as such. One whose flags the tenant holds
// (set by hand, or before the policy changed) is enabled indeed.
func notApplied(tenant *identityv1alpha1.Tenant, inputs *migrationInputs, plan *migrationPlan, observed *identity.TenantSettings) {
	for i := range inputs.migrations {
		m := &inputs.migrations[i]
		d, ok := plan.decisions[m.Name]
		if !ok || !d.Apply || d.State != identityv1alpha1.MigrationEnabled || m.Spec.Change == nil {
			continue
		}
		var missing []string
		for flag, value := range m.Spec.Change.Flags {
			if have, held := observed.Flags[flag]; !held || have != value {
				missing = append(missing, fmt.Sprintf("flags.%s=%t", flag, value))
			}
		}
		if len(missing) == 0 {
			continue
		}
		sort.Strings(missing)
		d.State, d.Reason = identityv1alpha1.MigrationPending, identityv1alpha1.ReasonNotApplied
		d.Message = fmt.Sprintf("%s (%s), but the tenant does not have %s, and managementPolicy %s does not send it",
			d.Message, m.Name, strings.Join(missing, ", "), tenant.EffectiveManagementPolicy())
		plan.decisions[m.Name] = d
	}
}
