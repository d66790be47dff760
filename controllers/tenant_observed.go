package controllers

import (
	"sort"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
)

// observedState records, from settings just read (or a PATCH's answer),
// what readiness checks read: the sandbox version always, and the flags the
// FlagValue checks of the selecting migrations name. Readiness is then
// decided on status alone, by both reconcilers, without another call.
func observedState(observed *identity.TenantSettings, checkedFlags []string) *identityv1alpha1.ObservedTenantState {
	if observed == nil {
		return nil
	}
	out := &identityv1alpha1.ObservedTenantState{SandboxVersion: observed.SandboxVersion}
	seen := map[string]bool{}
	for _, flag := range checkedFlags {
		if seen[flag] {
			continue
		}
		seen[flag] = true
		f := identityv1alpha1.ObservedFlag{Name: flag}
		if v, ok := observed.Flags[flag]; ok {
			f.Value = &v
		}
		out.Flags = append(out.Flags, f)
	}
	sort.Slice(out.Flags, func(i, j int) bool { return out.Flags[i].Name < out.Flags[j].Name })
	return out
}
