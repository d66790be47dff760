package identity_test

import (
	"errors"
	"testing"

	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// The Actions calls against the emulator over HTTPS: the draft, its build,
// versions, the trigger's bindings written whole, and the errors each
// refusal becomes.
func TestEmulatorActionLifecycle(t *testing.T) {
	e := emulatortest.Start(t)
	tn := newTenant(t, e, "actions.emulator.local")
	ctx := ctxT(t)
	c := tn.client
	postLogin := []identity.ActionTrigger{{ID: "post-login", Version: "v3"}}
	code := "exports.onExecutePostLogin = async (event, api) => {};"

	created, err := c.CreateAction(ctx, identity.ActionCreate{Name: "greeting", SupportedTriggers: postLogin, Code: code, Runtime: "node22",
		Dependencies: []identity.ActionDependency{{Name: "lodash", Version: "4.17.21"}},
		Secrets:      []identity.ActionSecret{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}})
	if err != nil {
		t.Fatalf("CreateAction: %v", err)
	}
	if created.Status != identity.ActionStatusBuilt || created.AllChangesDeployed || created.DeployedVersion != nil || len(created.Secrets) != 2 {
		t.Fatalf("created = %+v", created)
	}
	if _, err := c.CreateAction(ctx, identity.ActionCreate{Name: "greeting", SupportedTriggers: postLogin, Code: code}); !errors.Is(err, identity.ErrConflict) {
		t.Errorf("a second action of the name: %v, want ErrConflict", err)
	}
	found, err := c.FindActionByName(ctx, "greeting", "post-login")
	if err != nil || found.ID != created.ID {
		t.Fatalf("FindActionByName = %+v, %v", found, err)
	}
	if _, err := c.FindActionByName(ctx, "greeting", "credentials-exchange"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("FindActionByName for another trigger: %v, want ErrNotFound", err)
	}

	// A ref to an action never deployed is refused.
	bind := []identity.BindingUpdate{{Ref: identity.BindingRef{Type: identity.BindingRefActionID, Value: created.ID}, DisplayName: "Greets"}}
	if _, err := c.UpdateTriggerBindings(ctx, "post-login", bind); !errors.Is(err, identity.ErrInvalid) {
		t.Errorf("binding an undeployed action: %v, want ErrInvalid", err)
	}
	v1, err := c.DeployAction(ctx, created.ID)
	if err != nil || v1.Number != 1 || !v1.Deployed {
		t.Fatalf("DeployAction = %+v, %v", v1, err)
	}
	bindings, err := c.UpdateTriggerBindings(ctx, "post-login", bind)
	if err != nil || len(bindings) != 1 || bindings[0].Action.ID != created.ID || bindings[0].DisplayName != "Greets" {
		t.Fatalf("UpdateTriggerBindings = %+v, %v", bindings, err)
	}
	listed, err := c.ListTriggerBindings(ctx, "post-login")
	if err != nil || len(listed) != 1 || listed[0].Action.Code != code || listed[0].Action.DeployedVersion == nil {
		t.Fatalf("ListTriggerBindings = %+v, %v: each binding carries its action", listed, err)
	}

	// The secrets sent replace the set; a draft that changed is not deployed.
	updated, err := c.UpdateAction(ctx, created.ID, identity.ActionUpdate{Secrets: &[]identity.ActionSecret{{Name: "A", Value: "rotated"}}})
	if err != nil || len(updated.Secrets) != 1 || updated.Secrets[0].Name != "A" || updated.AllChangesDeployed {
		t.Fatalf("UpdateAction = %+v, %v", updated, err)
	}

	// Code that does not build: the draft says so, the deploy is refused.
	broken := "exports.onExecutePostLogin = async (event, api => {};"
	failed, err := c.UpdateAction(ctx, created.ID, identity.ActionUpdate{Code: &broken})
	if err != nil {
		t.Fatalf("UpdateAction with broken code: %v", err)
	}
	var build *identity.ActionBuildFailedError
	if err := failed.BuildError(); !errors.As(err, &build) || build.Message() == "" {
		t.Fatalf("BuildError = %v", err)
	}
	if _, err := c.DeployAction(ctx, created.ID); !errors.Is(err, identity.ErrBuildFailed) || !errors.As(err, &build) || build.Message() == "" {
		t.Fatalf("deploying a failed build: %v, want ErrBuildFailed quoting the platform", err)
	}
	versions, err := c.ListActionVersions(ctx, created.ID)
	if err != nil || len(versions) != 1 {
		t.Fatalf("ListActionVersions = %d, %v", len(versions), err)
	}

	// Deleting a bound action takes force; deleting what is gone is done.
	if err := c.DeleteAction(ctx, created.ID, false); !errors.Is(err, identity.ErrInvalid) && !errors.Is(err, identity.ErrConflict) {
		t.Errorf("deleting a bound action without force: %v", err)
	}
	if err := c.DeleteAction(ctx, created.ID, true); err != nil {
		t.Fatalf("DeleteAction: %v", err)
	}
	if err := c.DeleteAction(ctx, created.ID, true); err != nil {
		t.Errorf("deleting it again: %v, want done", err)
	}
	if _, err := c.GetAction(ctx, created.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("GetAction after delete: %v, want ErrNotFound", err)
	}
	if left, err := c.ListTriggerBindings(ctx, "post-login"); err != nil || len(left) != 0 {
		t.Errorf("bindings after a forced delete: %+v, %v", left, err)
	}
}
