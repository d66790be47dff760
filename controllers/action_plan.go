package controllers

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// What an Action reports under managementPolicy Plan and Observe: the
// draft's fields Apply would send (rendered from the very bodies Create and
// Update send), then the two writes that follow a draft under Apply - a
// deploy, and the trigger's bindings - when Apply would make them.

// planFieldDeploy and planFieldBindings name those two writes in a plan.
const (
	planFieldDeploy   = "deploy"
	planFieldBindings = "bindings."
)

// Plan renders what Apply would send for the draft (exists: an update of
// the action Observe read; else a create), then the deploy and binding
// writes that would follow. Secrets are listed as changed or unchanged,
// never with a value.
func (a *remoteAction) Plan(exists bool) []identityv1alpha1.PlannedChange {
	state := identityv1alpha1.SecretChanged
	if strings.HasSuffix(a.act.Status.AppliedHash, "."+a.desired.secretsHash) {
		state = identityv1alpha1.SecretUnchanged
	}
	body := managed.Body{Secrets: map[string]identityv1alpha1.SecretChange{"secrets": state}}
	if exists {
		body.Value, body.Current = a.updateBody(), a.current
	} else {
		body.Value = a.createBody()
	}
	changes := managed.Render(body)
	if !exists && len(a.desired.secrets) == 0 {
		// An empty secret list is sent with a create, but there is nothing
		// secret to report.
		changes = slices.DeleteFunc(changes, func(c identityv1alpha1.PlannedChange) bool { return c.Field == "secrets" })
	}
	if a.deployFollows(exists) {
		c := identityv1alpha1.PlannedChange{Field: planFieldDeploy, To: `"a new version"`}
		if exists && a.current.DeployedVersion != nil {
			c.From = fmt.Sprint(a.current.DeployedVersion.Number)
		}
		changes = append(changes, c)
	}
	if c, ok := a.bindingChange(exists); ok {
		changes = append(changes, c)
	}
	return changes
}

// deployFollows reports whether Apply would deploy after writing the
// draft: the draft is new, or differs from the deployed version, or would
// once written (anything but a new name changes what runs).
func (a *remoteAction) deployFollows(exists bool) bool {
	if !exists || !a.current.AllChangesDeployed || a.current.DeployedVersion == nil {
		return true
	}
	if !strings.HasSuffix(a.act.Status.AppliedHash, "."+a.desired.secretsHash) {
		return true
	}
	return slices.ContainsFunc(a.drifted, func(f string) bool { return f != "name" })
}

// bindingChange is the binding write Apply would make: where the action is
// bound now (nothing: not bound) and where it would be, "position/count".
func (a *remoteAction) bindingChange(exists bool) (identityv1alpha1.PlannedChange, bool) {
	id := "(new action)"
	if exists {
		id = a.current.ID
	}
	update := placeBinding(a.bindings, id, a.desired.displayName, bindingKey{order: a.act.Spec.Binding.Order, name: a.desired.name}, a.neighbours)
	if update == nil {
		return identityv1alpha1.PlannedChange{}, false
	}
	c := identityv1alpha1.PlannedChange{Field: planFieldBindings + string(a.act.Spec.Trigger)}
	if at := slices.IndexFunc(a.bindings, func(b identity.TriggerBinding) bool { return b.Action.ID == id }); at >= 0 {
		c.From = quote(fmt.Sprintf("%d/%d as %s", at+1, len(a.bindings), a.bindings[at].DisplayName))
	}
	at := slices.IndexFunc(update, func(b identity.BindingUpdate) bool { return b.Ref.Value == id })
	c.To = quote(fmt.Sprintf("%d/%d as %s", at+1, len(update), a.desired.displayName))
	return c, true
}

func quote(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// reportPlan ends a Plan or Observe pass: status shows the action and its
// binding as the platform holds them, and the plan.
func (r *ActionReconciler) reportPlan(act *identityv1alpha1.Action, a *remoteAction, plan *identityv1alpha1.ManagementPlan) (reconcile.Success, error) {
	act.Status.BuildStatus, act.Status.BindingPosition, act.Status.Bound = "", 0, ""
	recordDeployedVersion(act, nil)
	if a.current != nil {
		act.Status.BuildStatus = identityv1alpha1.ActionBuildStatus(a.current.Status)
		recordDeployedVersion(act, a.current.DeployedVersion)
		if at := slices.IndexFunc(a.bindings, func(b identity.TriggerBinding) bool { return b.Action.ID == a.current.ID }); at >= 0 {
			act.Status.BindingPosition, act.Status.Bound = int32(at+1), fmt.Sprintf("%d/%d", at+1, len(a.bindings))
		}
	}
	// Deployed and Bound say what Apply achieved; the plan speaks now.
	conditions := act.GetConditions()
	meta.RemoveStatusCondition(&conditions, ConditionDeployed)
	meta.RemoveStatusCondition(&conditions, ConditionBound)
	act.SetConditions(conditions)
	return managed.Report(act, &act.Status.Plan, plan, describeAction(act), r.ResyncInterval)
}
