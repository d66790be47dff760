package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
	"github.com/tenantops/identity-operator/test/emulator/server"
)

// greetingCode is a post-login action that reads a secret.
const greetingCode = `exports.onExecutePostLogin = async (event, api) => {
  if (!event.secrets.GREETING) {
    api.access.deny('the action has no GREETING secret');
  }
};`

// greetingAction is an Action named name with its code in ConfigMap
// <name>-code, its secrets in Secret <name>-secrets, and extra spec lines.
func greetingAction(name, code, greeting, extra string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s-code}
data:
  action.js: %[2]q
---
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-secrets}
stringData: {GREETING: %[3]q, AUDIENCE: "https://api.acme.example"}
---
apiVersion: identity.tenantops.io/v1alpha1
kind: Action
metadata: {name: %[1]s}
spec:
  tenantRef: {name: acme}
  trigger: post-login
  code: {configMapKeyRef: {name: %[1]s-code, key: action.js}}
  secretsRef: {name: %[1]s-secrets}
%[4]s`, name, code, greeting, extra)
}

func actionObject(name string) *identityv1alpha1.Action {
	return &identityv1alpha1.Action{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// remoteAction reads an action on the tenant by name through the
// Management API.
func (f *fixture) remoteAction(api identity.Client, name string) *identity.Action {
	f.t.Helper()
	a, err := api.FindActionByName(context.Background(), name, "")
	f.g.Expect(err).NotTo(HaveOccurred(), "action %s on the tenant", name)
	return a
}

// boundNames lists the post-login bindings' action names in execution order.
func (f *fixture) boundNames(api identity.Client) []string {
	f.t.Helper()
	bindings, err := api.ListTriggerBindings(context.Background(), "post-login")
	f.g.Expect(err).NotTo(HaveOccurred())
	names := make([]string, 0, len(bindings))
	for _, b := range bindings {
		names = append(names, b.Action.Name)
	}
	return names
}

// noSecretIn fails when a value shows in the object or its events.
func (f *fixture) noSecretIn(obj client.Object, values ...string) {
	f.t.Helper()
	data, err := json.Marshal(obj)
	f.g.Expect(err).NotTo(HaveOccurred())
	events := strings.Join(f.events(obj.GetName()), "\n")
	for _, v := range values {
		f.g.Expect(strings.Contains(string(data), v)).To(BeFalse(), "a secret value is in the object")
		f.g.Expect(strings.Contains(events, v)).To(BeFalse(), "a secret value is in an event")
	}
}

func TestActionIsDeployedBoundAndShownByKubectlGet(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello-s3cret", `  dependencies:
  - {name: lodash, version: 4.17.21}
  binding: {displayName: Greets the user}
`))
	act := actionObject("greeting")
	f.ready(act)

	remote := f.remoteAction(api, "greeting")
	f.g.Expect(act.Status.ActionID).To(Equal(remote.ID))
	f.g.Expect(remote.Code).To(Equal(greetingCode))
	f.g.Expect(remote.Runtime).To(Equal("node22"))
	f.g.Expect(remote.SupportedTriggers).To(Equal([]identity.ActionTrigger{{ID: "post-login", Version: "v3"}}))
	f.g.Expect(remote.Dependencies).To(Equal([]identity.ActionDependency{{Name: "lodash", Version: "4.17.21"}}))
	f.g.Expect(remote.Secrets).To(ConsistOf(HaveField("Name", "AUDIENCE"), HaveField("Name", "GREETING")))
	f.g.Expect(remote.AllChangesDeployed).To(BeTrue())
	f.g.Expect(remote.DeployedVersion).NotTo(BeNil())
	f.g.Expect(remote.DeployedVersion.Number).To(Equal(1))
	bindings, err := api.ListTriggerBindings(context.Background(), "post-login")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(bindings).To(HaveLen(1))
	f.g.Expect(bindings[0].DisplayName).To(Equal("Greets the user"))

	f.g.Expect(act.Status.Ownership).To(Equal(identityv1alpha1.OwnershipCreated))
	f.g.Expect(act.Status.DeployedVersionID).To(Equal(remote.DeployedVersion.ID))
	f.g.Expect(act.Status.AppliedHash).NotTo(BeEmpty())
	f.condition(act, controllers.ConditionDeployed, metav1.ConditionTrue, identityv1alpha1.ReasonDeployed)
	msg := f.condition(act, controllers.ConditionBound, metav1.ConditionTrue, identityv1alpha1.ReasonBound)
	f.g.Expect(msg).To(ContainSubstring(`runs at 1/1 of the post-login bindings, as "Greets the user"`))
	f.g.Expect(f.row("actions", "greeting")).To(And(
		HaveKeyWithValue("Tenant", "acme"), HaveKeyWithValue("Trigger", "post-login"), HaveKeyWithValue("Version", "1"),
		HaveKeyWithValue("Build", "built"), HaveKeyWithValue("Bound", "1/1"), HaveKeyWithValue("Ready", "True"),
		HaveKeyWithValue("Reason", "Synced"), HaveKeyWithValue("Action ID", remote.ID)))
	f.g.Eventually(func() []string { return f.events("greeting") }, 10*time.Second, 100*time.Millisecond).Should(And(
		ContainElement(HavePrefix("Normal Deployed: deployed version 1 of action greeting")),
		ContainElement(HavePrefix("Normal BindingPlaced: bound action greeting"))))
	f.noSecretIn(act, "hello-s3cret")
}

func TestActionCodeChangeDeploysExactlyOneNewVersion(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	act := actionObject("greeting")
	f.ready(act)
	f.emu.ResetRequests(domain)

	changed := strings.Replace(greetingCode, "the action has no GREETING secret", "no GREETING", 1)
	f.apply(greetingAction("greeting", changed, "hello", ""))
	f.g.Eventually(func() string { return f.row("actions", "greeting")["Version"] }, 20*time.Second, 200*time.Millisecond).Should(Equal("2"))
	time.Sleep(2 * resync)
	requests := f.emu.Requests(domain)
	f.g.Expect(requests.Count("PATCH", "/api/v2/actions/actions/{id}")).To(Equal(1), "one write of the draft")
	f.g.Expect(requests.Count("POST", "/api/v2/actions/actions/{id}/deploy")).To(Equal(1), "one new version")
	f.g.Expect(requests.Count("PATCH", "/api/v2/actions/triggers/{triggerId}/bindings")).To(BeZero(), "the binding stays where it is")
	versions, err := api.ListActionVersions(context.Background(), act.Status.ActionID)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(versions).To(HaveLen(2))
	f.g.Expect(versions[0].Code).To(Equal(changed))
	f.g.Expect(versions[0].Deployed).To(BeTrue())
	f.g.Expect(versions[1].Deployed).To(BeFalse())
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"greeting"}))
}

func TestActionBindingKeepsForeignBindingsInTheirOrder(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	// Bindings made in the dashboard before the operator came.
	f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "dashboard-risk", Bind: true})
	f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "dashboard-audit", Bind: true})

	f.apply(greetingAction("greeting", greetingCode, "hello", "  binding: {order: 10}\n") + "---" +
		greetingAction("roles", greetingCode, "hello", "  binding: {order: 5}\n"))
	f.ready(actionObject("greeting"))
	f.ready(actionObject("roles"))
	f.g.Eventually(func() []string { return f.boundNames(api) }, 20*time.Second, 200*time.Millisecond).
		Should(Equal([]string{"dashboard-risk", "dashboard-audit", "roles", "greeting"}))

	// Someone reorders the flow in the dashboard, putting greeting first.
	bindings, err := api.ListTriggerBindings(context.Background(), "post-login")
	f.g.Expect(err).NotTo(HaveOccurred())
	byName := map[string]identity.TriggerBinding{}
	for _, b := range bindings {
		byName[b.Action.Name] = b
	}
	var reordered []identity.BindingUpdate
	for _, name := range []string{"greeting", "dashboard-audit", "roles", "dashboard-risk"} {
		reordered = append(reordered, identity.BindingUpdate{Ref: identity.BindingRef{Type: identity.BindingRefActionID, Value: byName[name].Action.ID}, DisplayName: byName[name].DisplayName})
	}
	_, err = api.UpdateTriggerBindings(context.Background(), "post-login", reordered)
	f.g.Expect(err).NotTo(HaveOccurred())

	// Within a resync greeting is after roles again, and the dashboard's new
	// order of its own bindings stands. Whichever of the two Actions looks
	// first moves itself, and only itself: greeting to after roles, or roles
	// to before greeting.
	valid := [][]string{{"dashboard-audit", "roles", "greeting", "dashboard-risk"}, {"roles", "greeting", "dashboard-audit", "dashboard-risk"}}
	f.g.Eventually(func() []string { return f.boundNames(api) }, 20*time.Second, 200*time.Millisecond).Should(BeElementOf(valid))
	time.Sleep(resync)
	f.emu.ResetRequests(domain)
	time.Sleep(2 * resync)
	f.g.Expect(f.emu.Requests(domain).ManagementWrites()).To(BeZero(), "placed once, left alone")
	final := f.boundNames(api)
	f.g.Expect(final).To(BeElementOf(valid))
	position := func(name string) string {
		for i, n := range final {
			if n == name {
				return fmt.Sprintf("%d/%d", i+1, len(final))
			}
		}
		return ""
	}
	f.g.Expect(f.row("actions", "greeting")).To(HaveKeyWithValue("Bound", position("greeting")))
	f.g.Expect(f.row("actions", "roles")).To(HaveKeyWithValue("Bound", position("roles")))
}

func TestActionRotatedSecretIsSentAgainAndDeployed(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello-first", ""))
	act := actionObject("greeting")
	f.ready(act)
	firstHash := act.Status.AppliedHash
	before := f.remoteAction(api, "greeting")
	f.emu.ResetRequests(domain)

	f.apply(greetingAction("greeting", greetingCode, "hello-second", ""))
	f.g.Eventually(func() string {
		_ = k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "greeting"}, act)
		return act.Status.AppliedHash
	}, 20*time.Second, 200*time.Millisecond).ShouldNot(Equal(firstHash))
	f.g.Eventually(func() string { return f.row("actions", "greeting")["Version"] }, 20*time.Second, 200*time.Millisecond).Should(Equal("2"))
	time.Sleep(2 * resync)
	requests := f.emu.Requests(domain)
	f.g.Expect(requests.Count("PATCH", "/api/v2/actions/actions/{id}")).To(Equal(1), "one PATCH carries the rotated secrets")
	f.g.Expect(requests.Count("POST", "/api/v2/actions/actions/{id}/deploy")).To(Equal(1), "and one deploy makes them run")
	after := f.remoteAction(api, "greeting")
	updated := map[string]string{}
	for _, s := range before.Secrets {
		updated[s.Name] = s.UpdatedAt
	}
	for _, s := range after.Secrets {
		if s.Name == "GREETING" {
			f.g.Expect(s.UpdatedAt).NotTo(Equal(updated[s.Name]), "GREETING was written again")
		}
	}
	f.g.Expect(after.DeployedVersion.Number).To(Equal(2))
	f.noSecretIn(act, "hello-first", "hello-second")
}

func TestActionBuildErrorIsStalledQuotingThePlatformUntilTheSpecChanges(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	broken := "exports.onExecutePostLogin = async (event, api => {\n};"
	manifest := func(code string) string {
		return fmt.Sprintf(`
apiVersion: identity.tenantops.io/v1alpha1
kind: Action
metadata: {name: greeting}
spec:
  tenantRef: {name: acme}
  trigger: post-login
  runtime: node18
  code: {inline: %q}
`, code)
	}
	f.apply(manifest(broken))
	act := actionObject("greeting")
	msg := f.condition(act, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonBuildFailed)
	remote := f.remoteAction(api, "greeting")
	f.g.Expect(remote.Status).To(Equal(identity.ActionStatusFailed))
	f.g.Expect(remote.Errors).NotTo(BeEmpty())
	f.g.Expect(msg).To(And(ContainSubstring(remote.Errors[0].Msg), ContainSubstring("code: inline"),
		ContainSubstring("nothing runs in post-login for it yet")))
	f.condition(act, controllers.ConditionDeployed, metav1.ConditionFalse, identityv1alpha1.ReasonBuildFailed)
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Build", "failed"), HaveKeyWithValue("Ready", "False"),
		HaveKeyWithValue("Reason", "BuildFailed"), Not(HaveKey("Version")), Not(HaveKey("Bound"))))
	f.g.Expect(f.boundNames(api)).To(BeEmpty())

	// Nothing is tried again until the spec changes.
	f.emu.ResetRequests(domain)
	time.Sleep(3 * resync)
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/api/v2/actions/actions/{id}/deploy")).To(BeZero())
	f.g.Expect(f.emu.Requests(domain).ManagementWrites()).To(BeZero())

	f.apply(manifest(greetingCode))
	f.ready(act)
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Build", "built"), HaveKeyWithValue("Version", "1"), HaveKeyWithValue("Bound", "1/1")))
	f.g.Expect(f.remoteAction(api, "greeting").Runtime).To(Equal("node18"))
}

func TestActionDeletionPolicies(t *testing.T) {
	for _, policy := range []string{"Delete", "Orphan"} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t)
			domain, creds := f.tenant("acme", "")
			api := f.identityClient(domain, creds)
			f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "dashboard-risk", Bind: true})
			f.apply(greetingAction("greeting", greetingCode, "hello", "  deletionPolicy: "+policy+"\n"))
			act := actionObject("greeting")
			f.ready(act)
			f.g.Expect(f.boundNames(api)).To(Equal([]string{"dashboard-risk", "greeting"}))

			act.Namespace = f.ns
			f.g.Expect(k8s.Delete(context.Background(), act)).To(Succeed())
			f.gone(act)
			_, err := api.FindActionByName(context.Background(), "greeting", "")
			if policy == "Delete" {
				f.g.Expect(err).To(MatchError(identity.ErrNotFound))
				f.g.Expect(f.boundNames(api)).To(Equal([]string{"dashboard-risk"}), "its binding went with it, the foreign one stayed")
			} else {
				f.g.Expect(err).NotTo(HaveOccurred())
				f.g.Expect(f.boundNames(api)).To(Equal([]string{"dashboard-risk", "greeting"}), "the orphan still runs")
			}
		})
	}
}

func TestActionSteadyStateReadsOncePerResyncAndWritesNothing(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("acme", "")
	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	f.ready(actionObject("greeting"))
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})

	time.Sleep(resync / 2)
	f.emu.ResetRequests(domain)
	time.Sleep(3 * resync)
	requests := f.emu.Requests(domain)
	bindingReads, settingsReads := requests.Count("GET", "/api/v2/actions/triggers/{triggerId}/bindings"), requests.Count("GET", "/api/v2/tenants/settings")
	t.Logf("steady state, 3 resyncs: %d GET of the bindings, %d GET of the tenant settings (Tenant controller), %d writes, %d token requests",
		bindingReads, settingsReads, requests.ManagementWrites(), requests.Tokens())
	f.g.Expect(requests.ManagementReads()).To(Equal(bindingReads+settingsReads), "the action costs no other read: %v", requests.Lines())
	f.g.Expect(requests.ManagementWrites()).To(BeZero())
	f.g.Expect(bindingReads).To(BeNumerically("~", 3, 1), "one read per resync")
}

func TestActionPausedMakesNoCall(t *testing.T) {
	f := newFixture(t)
	domain, _ := f.tenant("acme", "")
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})
	f.emu.ResetRequests(domain)
	f.apply(strings.Replace(greetingAction("greeting", greetingCode, "hello", ""), "metadata: {name: greeting}",
		"metadata: {name: greeting, annotations: {identity.tenantops.io/paused: \"true\"}}", 1))
	act := actionObject("greeting")
	f.condition(act, identityv1alpha1.ConditionPaused, metav1.ConditionTrue, "Paused")
	time.Sleep(resync)
	f.g.Expect(f.emu.Requests(domain).Count("GET", "/api/v2/actions/triggers/{triggerId}/bindings")).To(BeZero())
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/api/v2/actions/actions")).To(BeZero())
}

func TestActionNamesTheScopesItLacksAndSendsNothing(t *testing.T) {
	f := newFixture(t)
	domain := "acme." + f.ns + ".identity.test"
	// The application may read and write actions, but not place them in a
	// trigger's flow.
	f.partialClient(domain, "read:tenant_settings", "read:actions", "create:actions", "update:actions", "delete:actions")
	f.tenantFor(domain, "acme", "")
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})
	f.emu.ResetRequests(domain)
	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	act := actionObject("greeting")
	msg := f.condition(act, identityv1alpha1.ConditionCredentialsValid, metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope)
	f.g.Expect(msg).To(ContainSubstring("lack update:triggers (to bind the action to post-login); "))
	f.condition(act, identityv1alpha1.ConditionStalled, metav1.ConditionTrue, identityv1alpha1.ReasonInsufficientScope)
	spent := f.emu.Requests(domain)
	f.g.Expect(spent.ManagementWrites()).To(BeZero(), "%v", spent)
	f.g.Expect(spent.Count("GET", "/api/v2/actions/triggers/{triggerId}/bindings")).To(BeZero())
}

func TestActionChangedOutsideTheOperatorIsRestoredAndDeployed(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	act := actionObject("greeting")
	f.ready(act)
	ctx := context.Background()

	// Someone edits the code in the dashboard and deploys it.
	edited := "exports.onExecutePostLogin = async (event, api) => { api.access.deny('edited by hand'); };"
	_, err := api.UpdateAction(ctx, act.Status.ActionID, identity.ActionUpdate{Code: &edited})
	f.g.Expect(err).NotTo(HaveOccurred())
	_, err = api.DeployAction(ctx, act.Status.ActionID)
	f.g.Expect(err).NotTo(HaveOccurred())

	f.g.Eventually(func() []string { return f.events("greeting") }, 20*time.Second, 200*time.Millisecond).
		Should(ContainElement(HavePrefix("Warning DriftCorrected: restored code of action greeting")))
	f.g.Eventually(func() string { return f.row("actions", "greeting")["Version"] }, 20*time.Second, 200*time.Millisecond).Should(Equal("3"))
	remote := f.remoteAction(api, "greeting")
	f.g.Expect(remote.Code).To(Equal(greetingCode))
	f.g.Expect(remote.DeployedVersion.Code).To(Equal(greetingCode), "the spec's code runs again")
	f.g.Expect(remote.AllChangesDeployed).To(BeTrue())
}

func TestActionDeletedOutsideTheOperatorIsMadeAgain(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	act := actionObject("greeting")
	f.ready(act)
	first := act.Status.ActionID
	f.g.Expect(api.DeleteAction(context.Background(), first, true)).To(Succeed())

	f.g.Eventually(func() []string { return f.events("greeting") }, 20*time.Second, 200*time.Millisecond).
		Should(ContainElement(ContainSubstring("Warning DriftCorrected: action greeting (" + first + ") was deleted outside the operator")))
	f.g.Eventually(func() string {
		_ = k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "greeting"}, act)
		return act.Status.ActionID
	}, 20*time.Second, 200*time.Millisecond).ShouldNot(Or(BeEmpty(), Equal(first)))
	f.ready(act)
	f.g.Expect(f.remoteAction(api, "greeting").ID).To(Equal(act.Status.ActionID))
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"greeting"}), "bound again")
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Version", "1"), HaveKeyWithValue("Bound", "1/1")))
}

func TestActionAdoptsTheActionOfItsNameOnce(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	// Made and bound in the dashboard before the operator came.
	existing := f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "greeting", Bind: true})

	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	act := actionObject("greeting")
	f.ready(act)
	f.g.Expect(act.Status.ActionID).To(Equal(existing))
	f.g.Expect(act.Status.Ownership).To(Equal(identityv1alpha1.OwnershipAdoptedWritten))
	f.g.Eventually(func() []string { return f.events("greeting") }, 10*time.Second, 100*time.Millisecond).
		Should(ContainElement(HavePrefix("Normal Adopted: adopted the existing action greeting")))
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"greeting"}), "one binding, not a second")
	remote := f.remoteAction(api, "greeting")
	f.g.Expect(remote.Code).To(Equal(greetingCode))
	f.g.Expect(remote.DeployedVersion.Number).To(Equal(2), "the dashboard's version 1, then the spec's")
}

func TestTenantDeletionWaitsForItsAction(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello", ""))
	act := actionObject("greeting")
	f.ready(act)
	tenant := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: f.ns}}

	f.g.Expect(k8s.Delete(context.Background(), tenant)).To(Succeed())
	msg := f.condition(tenant, identityv1alpha1.ConditionReady, metav1.ConditionFalse, identityv1alpha1.ReasonDependentsExist)
	f.g.Expect(msg).To(ContainSubstring("Action/greeting"))

	act.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), act)).To(Succeed())
	f.gone(act)
	f.gone(tenant)
	_, err := api.FindActionByName(context.Background(), "greeting", "")
	f.g.Expect(err).To(MatchError(identity.ErrNotFound), "the action was deleted with the tenant's credentials before the Tenant went")
}

func TestActionRenamedInTheSpecIsRenamedOnThePlatform(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.apply(greetingAction("greeting", greetingCode, "hello", "  actionName: greeting-v1\n"))
	act := actionObject("greeting")
	f.ready(act)
	id := act.Status.ActionID
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"greeting-v1"}))
	f.emu.ResetRequests(domain)

	f.apply(greetingAction("greeting", greetingCode, "hello", "  actionName: greeting-v2\n"))
	f.g.Eventually(func() []string { return f.boundNames(api) }, 20*time.Second, 200*time.Millisecond).Should(Equal([]string{"greeting-v2"}))
	f.ready(act)
	f.g.Expect(f.remoteAction(api, "greeting-v2").ID).To(Equal(id), "the same action, renamed")
	bindings, err := api.ListTriggerBindings(context.Background(), "post-login")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(bindings[0].DisplayName).To(Equal("greeting-v2"), "the binding's name follows (binding.displayName is unset)")
	time.Sleep(resync)
	f.g.Expect(f.emu.Requests(domain).Count("POST", "/api/v2/actions/actions/{id}/deploy")).To(BeZero(), "a name is no code: no new version")
	f.g.Expect(f.row("actions", "greeting")).To(HaveKeyWithValue("Version", "1"))
}

func TestActionPlanWritesNothingAndApplyThenDoesWhatItListed(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "dashboard-risk", Bind: true})
	f.apply(greetingAction("greeting", greetingCode, "hello-s3cret", "  managementPolicy: Plan\n"))
	act := actionObject("greeting")
	plan := f.planned(act, identityv1alpha1.ReasonPlanned)
	f.g.Expect(plan.Action).To(Equal(identityv1alpha1.PlanCreate))
	f.g.Expect(plan.Changes).To(ContainElements(
		identityv1alpha1.PlannedChange{Field: "name", To: `"greeting"`},
		identityv1alpha1.PlannedChange{Field: "runtime", To: `"node22"`},
		identityv1alpha1.PlannedChange{Field: "secrets", Secret: identityv1alpha1.SecretChanged},
		identityv1alpha1.PlannedChange{Field: "deploy", To: `"a new version"`},
		identityv1alpha1.PlannedChange{Field: "bindings.post-login", To: `"2/2 as greeting"`}))
	f.g.Expect(plan.Changes).To(ContainElement(HaveField("Field", "code")))
	f.condition(act, identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, identityv1alpha1.ReasonChangesPending)
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Policy", "Plan"), HaveKeyWithValue("Ready", "True")))
	// Each resync: the bindings and a search by name (no action yet), and
	// the Tenant's settings.
	f.noWritesOver(domain, 3, 3*3)
	_, err := api.FindActionByName(context.Background(), "greeting", "")
	f.g.Expect(err).To(MatchError(identity.ErrNotFound))
	f.noSecretIn(act, "hello-s3cret")

	// Apply: created, deployed and bound, as listed.
	f.setPolicy(act, identityv1alpha1.ManagementPolicyApply)
	f.ready(act)
	f.g.Expect(act.Status.Plan).To(BeNil())
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"dashboard-risk", "greeting"}))
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Version", "1"), HaveKeyWithValue("Bound", "2/2")))

	// Back to Plan with new code: an update of the code and a deploy;
	// the secrets are sent again unchanged; the binding stays.
	f.setPolicy(act, identityv1alpha1.ManagementPolicyPlan)
	f.planned(act, identityv1alpha1.ReasonPlanned)
	changed := strings.Replace(greetingCode, "the action has no GREETING secret", "no GREETING", 1)
	f.apply(greetingAction("greeting", changed, "hello-s3cret", "  managementPolicy: Plan\n"))
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "greeting"}, act)).To(Succeed())
		g.Expect(act.Status.Plan).NotTo(BeNil())
		g.Expect(act.Status.Plan.Action).To(Equal(identityv1alpha1.PlanUpdate))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	fields := []string{}
	for _, c := range act.Status.Plan.Changes {
		fields = append(fields, c.Field)
	}
	f.g.Expect(fields).To(ConsistOf("code", "secrets", "deploy"))
	f.g.Expect(act.Status.Plan.Pending).To(Equal(int32(2)), "the secrets go again unchanged: not counted")
	f.g.Expect(act.Status.Plan.Changes).To(ContainElement(identityv1alpha1.PlannedChange{Field: "deploy", From: "1", To: `"a new version"`}))
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Version", "1"), HaveKeyWithValue("Bound", "2/2")))
}

func TestActionObserveReportsDriftAndNeverWritesOrDeletes(t *testing.T) {
	f := newFixture(t)
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	existing := f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "greeting", Bind: true})
	f.apply(greetingAction("greeting", greetingCode, "hello", "  managementPolicy: Observe\n  deletionPolicy: Delete\n"))
	act := actionObject("greeting")
	plan := f.planned(act, identityv1alpha1.ReasonObserved)
	f.g.Expect(plan.Action).To(Equal(identityv1alpha1.PlanUpdate))
	msg := f.condition(act, identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonDriftDetected)
	f.g.Expect(msg).To(And(ContainSubstring("code"), ContainSubstring("does not correct it")))
	f.g.Expect(act.Status.ActionID).To(Equal(existing))
	f.g.Expect(act.Status.Ownership).To(BeEmpty(), "only looked at, never adopted")
	f.g.Expect(f.row("actions", "greeting")).To(And(HaveKeyWithValue("Policy", "Observe"), HaveKeyWithValue("Version", "1"),
		HaveKeyWithValue("Bound", "1/1"), HaveKeyWithValue("Build", "built")))
	// Each resync: the bindings (which carry the action) and the Tenant's settings.
	f.noWritesOver(domain, 3, 3*2)
	f.g.Expect(f.events("greeting")).NotTo(ContainElement(HavePrefix("Warning DriftCorrected")))

	f.emu.ResetRequests(domain)
	act.Namespace = f.ns
	f.g.Expect(k8s.Delete(context.Background(), act)).To(Succeed())
	f.gone(act)
	f.g.Expect(f.emu.Writes(domain)).To(BeEmpty())
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"greeting"}), "still there, still bound")
	f.g.Expect(f.events("greeting")).To(ContainElement(And(HavePrefix("Normal RemoteObjectLeft"), ContainSubstring("managementPolicy is Observe"))))
}

// faultLog counts the emulator's answers with an injected fault on the
// Actions routes.
type faultLog struct{ n atomic.Int64 }

func (l *faultLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *faultLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *faultLog) WithGroup(string) slog.Handler            { return l }
func (l *faultLog) Handle(_ context.Context, r slog.Record) error {
	var fault, actions bool
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "fault":
			fault = a.Value.Bool()
		case "route":
			actions = strings.Contains(a.Value.String(), "/api/v2/actions/")
		}
		return true
	})
	if fault && actions {
		l.n.Add(1)
	}
	return nil
}

func TestActionsConvergeUnderFaultsWithOneActionAndOneBindingEach(t *testing.T) {
	faults := &faultLog{}
	f := newFixture(t, func(c *server.Config) { c.Logger = slog.New(faults) })
	domain, creds := f.tenant("acme", "")
	api := f.identityClient(domain, creds)
	f.ready(&identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}})
	f.emu.SeedAction(domain, emulatortest.ActionSeed{Name: "dashboard-risk", Bind: true})
	// 10% of the requests answered 5xx, and 15% carried out but their
	// reply lost: a create or a binding write retried meets its own work.
	// (At a quarter of the requests failing, the tenant's breaker opens now
	// and then - three failures in a row - and its probes fail a quarter of
	// the time: the time bound below leaves room for a few probe rounds.)
	f.emu.SetFaults(0.10, 0)
	f.emu.SetLostReplies(0.15)
	names := []string{"alpha", "bravo", "charlie"}
	for i, name := range names {
		f.apply(greetingAction(name, greetingCode, "hello", fmt.Sprintf("  binding: {order: %d}\n", i)))
	}
	f.g.Eventually(func(g Gomega) {
		for _, name := range names {
			act := actionObject(name)
			g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, act)).To(Succeed())
			ready := meta.FindStatusCondition(act.Status.Conditions, identityv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s", name, ready.Message)
		}
	}, 120*time.Second, 200*time.Millisecond).Should(Succeed())
	f.emu.SetFaults(0, 0)
	f.emu.SetLostReplies(0)
	t.Logf("%d Actions API requests answered with an injected fault", faults.n.Load())
	f.g.Expect(faults.n.Load()).To(BeNumerically(">", 0), "no fault was injected: the test proves nothing")
	time.Sleep(2 * resync)

	// One action per object, each bound once, in the declared order after
	// the foreign binding, each running the spec's code in one version.
	f.g.Expect(f.boundNames(api)).To(Equal([]string{"dashboard-risk", "alpha", "bravo", "charlie"}))
	for _, name := range names {
		remote := f.remoteAction(api, name)
		f.g.Expect(remote.DeployedVersion).NotTo(BeNil(), name)
		f.g.Expect(remote.DeployedVersion.Code).To(Equal(greetingCode), name)
		f.g.Expect(remote.AllChangesDeployed).To(BeTrue(), name)
		versions, err := api.ListActionVersions(context.Background(), remote.ID)
		f.g.Expect(err).NotTo(HaveOccurred())
		f.g.Expect(versions).To(HaveLen(1), "%s: one version, however many deploys failed or lost their answer", name)
		act := actionObject(name)
		f.g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, act)).To(Succeed())
		f.g.Expect(act.Status.ActionID).To(Equal(remote.ID), name)
		f.g.Expect(act.Status.Ownership.Deletable()).To(BeTrue(), "%s: %s", name, act.Status.Ownership)
	}
}
