// Package scopes says which Management API scopes a declared spec needs:
// the one place that maps what an object declares to the calls the operator
// will make for it, and each call to the scope the platform checks. A
// reconciler compares them with the scopes its token was granted before its
// first call (identity.Client.GrantedScopes), so that a grant that falls
// short is reported by name before any request fails, and no request that
// would fail is sent.
//
// Under the management policies Plan and Observe the operator only reads:
// those objects need the read scopes alone.
package scopes

import (
	"fmt"
	"slices"
	"strings"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Scopes of the Management API the operator calls (auth0-api.md).
const (
	ReadTenantSettings   = "read:tenant_settings"
	UpdateTenantSettings = "update:tenant_settings"
	ReadEmailTemplates   = "read:email_templates"
	CreateEmailTemplates = "create:email_templates"
	UpdateEmailTemplates = "update:email_templates"
	ReadEmailProvider    = "read:email_provider"
	CreateEmailProvider  = "create:email_provider"
	UpdateEmailProvider  = "update:email_provider"
	DeleteEmailProvider  = "delete:email_provider"
	ReadConnections      = "read:connections"
	CreateConnections    = "create:connections"
	UpdateConnections    = "update:connections"
	DeleteConnections    = "delete:connections"
	ReadUsers            = "read:users"
	ReadActions          = "read:actions"
	CreateActions        = "create:actions"
	UpdateActions        = "update:actions"
	DeleteActions        = "delete:actions"
	UpdateTriggers       = "update:triggers"
)

// Need is one scope a spec needs, and what for (a person reading the
// condition learns which part of the spec asks for it).
type Need struct {
	Scope string
	For   string
}

// Needs are the scopes one object needs, in the order its calls come.
type Needs []Need

// Scopes lists the scopes, each once.
func (n Needs) Scopes() []string {
	var out []string
	for _, need := range n {
		if !slices.Contains(out, need.Scope) {
			out = append(out, need.Scope)
		}
	}
	return out
}

// Only keeps the needs whose scope is among scopes.
func (n Needs) Only(scopes []string) Needs {
	var out Needs
	for _, need := range n {
		if slices.Contains(scopes, need.Scope) {
			out = append(out, need)
		}
	}
	return out
}

// String names each scope with what it is for, as in
// "update:email_templates (to write spec.resetEmail)".
func (n Needs) String() string {
	parts := make([]string, 0, len(n))
	for _, need := range n {
		parts = append(parts, fmt.Sprintf("%s (%s)", need.Scope, need.For))
	}
	return strings.Join(parts, ", ")
}

// ForTenant is what a Tenant needs: its settings read at every pass, and
// written when it declares settings or flags or a migration sets flags on
// it (migrationFlags); its reset_email template read, created and updated
// when it declares one. Removing the managed settings on deletion uses the
// same two update scopes.
func ForTenant(t *identityv1alpha1.Tenant, migrationFlags bool) Needs {
	writes := t.Spec.ManagementPolicy.Writes()
	n := Needs{{ReadTenantSettings, "to read the tenant settings"}}
	if writes {
		switch {
		case t.Spec.Settings != nil || len(t.Spec.Flags) > 0:
			n = append(n, Need{UpdateTenantSettings, "to write spec.settings and spec.flags"})
		case migrationFlags:
			n = append(n, Need{UpdateTenantSettings, "to write the flags of the migrations enabled for it"})
		}
	}
	if t.Spec.ResetEmail != nil {
		n = append(n, Need{ReadEmailTemplates, "to read the reset_email template"})
		if writes {
			n = append(n, Need{CreateEmailTemplates, "to create the reset_email template of spec.resetEmail"},
				Need{UpdateEmailTemplates, "to write spec.resetEmail"})
		}
	}
	return n
}

// ForEmailProvider is what an EmailProvider needs: the provider read, then
// created or updated; deleted with it under deletionPolicy Delete (the
// default).
func ForEmailProvider(p *identityv1alpha1.EmailProvider) Needs {
	n := Needs{{ReadEmailProvider, "to read the email provider"}}
	if !p.Spec.ManagementPolicy.Writes() {
		return n
	}
	n = append(n, Need{CreateEmailProvider, "to create the email provider"}, Need{UpdateEmailProvider, "to write the declared provider"})
	if p.Spec.DeletionPolicy != identityv1alpha1.DeletionPolicyOrphan {
		n = append(n, Need{DeleteEmailProvider, "to delete it with this object: deletionPolicy Delete"})
	}
	return n
}

// ForConnection is what a CustomDatabaseConnection needs: the connection
// read (by id, or found by name), its migrated users counted, and under
// Apply the connection created and updated (completing the migration is an
// update too); deleted with it under deletionPolicy Delete.
func ForConnection(c *identityv1alpha1.CustomDatabaseConnection) Needs {
	n := Needs{{ReadConnections, "to read the connection"}, {ReadUsers, "to count the migrated users"}}
	if !c.Spec.ManagementPolicy.Writes() {
		return n
	}
	n = append(n, Need{CreateConnections, "to create the connection"}, Need{UpdateConnections, "to write the declared options and scripts"})
	if c.Spec.DeletionPolicy == identityv1alpha1.DeletionPolicyDelete {
		n = append(n, Need{DeleteConnections, "to delete it with this object: deletionPolicy Delete"})
	}
	return n
}

// ForAction is what an Action needs: its trigger's bindings and the action
// read; under Apply the action created (deploying is create:actions too)
// and its draft updated, the trigger's bindings written to place it, and
// the action deleted with it under deletionPolicy Delete (the default).
func ForAction(a *identityv1alpha1.Action) Needs {
	n := Needs{{ReadActions, "to read the action and the bindings of " + string(a.Spec.Trigger)}}
	if !a.Spec.ManagementPolicy.Writes() {
		return n
	}
	n = append(n, Need{CreateActions, "to create and deploy the action"}, Need{UpdateActions, "to write the declared code, dependencies and secrets"},
		Need{UpdateTriggers, "to bind the action to " + string(a.Spec.Trigger)})
	if a.Spec.DeletionPolicy != identityv1alpha1.DeletionPolicyOrphan {
		n = append(n, Need{DeleteActions, "to delete it with this object: deletionPolicy Delete"})
	}
	return n
}
