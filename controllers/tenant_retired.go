package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/migration"
)

// A flag the tenant no longer has. The platform retires flags: once a
// behaviour is gone for everyone, the switch for it goes too, and a PATCH
// naming it is refused (400 "Additional properties not allowed: <flag>' on
// property flags", or "You are not allowed to set flag <flag>"). When the
// flag comes from a PlatformMigration's change, not from the Tenant's own
// spec.flags, that is not the Tenant's to fix: the flag is remembered in
// status.retiredFlags and never sent again, the migration is reported
// Failed with reason FlagRetired, and the tenant's other settings are
// applied in the same pass. A refused flag the Tenant declares itself stays
// the terminal FlagRefused (reasons FlagRetired, in api/v1alpha1).

// flagRetiredError is the platform's refusal of a flag that only migrations
// set on this tenant.
type flagRetiredError struct {
	flag       string
	migrations []string
	err        error
}

func (e *flagRetiredError) Error() string {
	return fmt.Sprintf("flag %s of %s is retired: %v", e.flag, strings.Join(e.migrations, ", "), e.err)
}

func (e *flagRetiredError) Unwrap() error { return e.err }

// retiredByPlatform returns the refusal as a flagRetiredError when err is
// the platform's refusal of a flag that p sends for a migration and the
// Tenant does not declare, and nil otherwise.
func (p *migrationPlan) retiredByPlatform(tenant *identityv1alpha1.Tenant, err error) *flagRetiredError {
	var forbidden *identity.ForbiddenFlagError
	if !errors.As(err, &forbidden) {
		return nil
	}
	if _, declared := tenant.Spec.Flags[forbidden.Flag]; declared {
		return nil
	}
	if _, sent := p.flags[forbidden.Flag]; !sent || len(p.changedBy[forbidden.Flag]) == 0 {
		return nil
	}
	migrations := append([]string(nil), p.changedBy[forbidden.Flag]...)
	sort.Strings(migrations)
	return &flagRetiredError{flag: forbidden.Flag, migrations: migrations, err: err}
}

// retireFlag records a retired flag in status, takes it out of the flags
// to send and reports each migration that sets it.
func (r *TenantReconciler) retireFlag(ctx context.Context, tenant *identityv1alpha1.Tenant, p *migrationPlan, retired *flagRetiredError) {
	message := retired.err.Error()
	var apiErr *identity.APIError
	if errors.As(retired.err, &apiErr) {
		message = apiErr.Message
	}
	entry := identityv1alpha1.RetiredFlag{Flag: retired.flag, Migrations: retired.migrations, Message: message,
		RefusedTime: metav1.Time{Time: r.Clock.Now()}}
	kept := tenant.Status.RetiredFlags[:0:0]
	for _, f := range tenant.Status.RetiredFlags {
		if f.Flag != retired.flag {
			kept = append(kept, f)
		}
	}
	tenant.Status.RetiredFlags = append(kept, entry)

	delete(p.flags, retired.flag)
	for _, name := range retired.migrations {
		p.decisions[name] = flagRetiredDecision(name, retiredFlagsOf(tenant, map[string]bool{retired.flag: true}))
	}
	log.FromContext(ctx).Info("a migration's flag is retired on the platform", "flag", retired.flag, "migrations", retired.migrations)
	r.Recorder.Eventf(tenant, corev1.EventTypeWarning, identityv1alpha1.EventReasonFlagRetired,
		"the platform no longer accepts flags.%s, set by %s (%s): it is not sent again; the other settings are applied",
		retired.flag, strings.Join(retired.migrations, ", "), message)
}

// retiredFlagsOf returns the retired flags of tenant among flags.
func retiredFlagsOf(tenant *identityv1alpha1.Tenant, flags map[string]bool) []identityv1alpha1.RetiredFlag {
	var out []identityv1alpha1.RetiredFlag
	for _, f := range tenant.Status.RetiredFlags {
		if _, ok := flags[f.Flag]; ok {
			out = append(out, f)
		}
	}
	return out
}

// withoutFlags is flags without the retired ones.
func withoutFlags(flags map[string]bool, retired []identityv1alpha1.RetiredFlag) map[string]bool {
	out := make(map[string]bool, len(flags))
	for k, v := range flags {
		out[k] = v
	}
	for _, f := range retired {
		delete(out, f.Flag)
	}
	return out
}

// flagRetiredDecision is what a migration whose change names retired flags
// means for the tenant: its change cannot be made as published, which a
// person must look at (the platform's notice says whether the behaviour is
// now on for everyone); its other flags are still applied.
func flagRetiredDecision(name string, retired []identityv1alpha1.RetiredFlag) migration.Decision {
	parts := make([]string, 0, len(retired))
	for _, f := range retired {
		parts = append(parts, fmt.Sprintf("flags.%s (%s)", f.Flag, f.Message))
	}
	return migration.Decision{Apply: true, State: identityv1alpha1.MigrationFailed, Reason: identityv1alpha1.ReasonFlagRetired,
		Message: fmt.Sprintf("the platform no longer accepts %s: the operator does not send it again and applies the tenant's other settings; "+
			"check the platform's notice for it and update or delete PlatformMigration %s", strings.Join(parts, ", "), name)}
}

// keepRetired keeps the retired flags that a selecting migration still
// names: one that none names any more is forgotten.
func (p *migrationPlan) keepRetired(retired []identityv1alpha1.RetiredFlag) []identityv1alpha1.RetiredFlag {
	var out []identityv1alpha1.RetiredFlag
	for _, f := range retired {
		if p.named[f.Flag] {
			out = append(out, f)
		}
	}
	return out
}
