package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/scopes"
)

// Action condition types (the reasons are in api/v1alpha1).
const (
	// ConditionDeployed is True when the deployed version runs the current
	// code, and False (BuildFailed) while the platform cannot build it.
	ConditionDeployed = "Deployed"
	// ConditionBound is True while the action is in its trigger's flow.
	ConditionBound = "Bound"

	indexActionCodeConfigMap = "spec.code.configMapKeyRef.name"
	indexActionSecret        = "spec.secretsRef.name"
	// indexActionName indexes Actions by "<tenantRef.name>/<remote name>":
	// one writer per action.
	indexActionName = "spec.tenantRef.name+actionName"
	// buildingRetry is how soon an action whose draft the platform is still
	// building is looked at again.
	buildingRetry = 2 * time.Second
)

// ActionReconciler keeps an action as declared: its draft written, its
// current code deployed, and its binding at its place in the trigger's
// execution order.
//
// Steady state is one read per resync: the trigger's bindings, which carry
// each bound action with its code and deployed version. The action itself is
// read by id only when it is not bound (yet). The platform never returns
// secret values, so a salted hash of what was sent (status.appliedHash)
// tells when the Secret changed; the draft is deployed only when the
// platform says it differs from the deployed version (all_changes_deployed),
// because every deploy makes a version. The trigger's bindings are written as
// one list, so the action moves only itself: bindings it does not own keep
// their relative order, and the list is sent only when it would change.
type ActionReconciler struct {
	client.Client
	// Reader reads the code's ConfigMap and the secrets' Secret (see contentReader).
	Reader         client.Reader
	Access         *TenantAccess
	Clock          clock.PassiveClock
	Recorder       record.EventRecorder
	Summarizer     reconcile.Summarizer
	ResyncInterval time.Duration
	// Shard makes sure no other operator instance writes what this one does
	// (internal/shard). A tenant's Actions go to the same instance, so the
	// binding lock below covers every writer of the operator.
	Shard reconcile.Ownership
	// Remote creates, adopts, updates and deletes the action by the
	// ownership rule (internal/managed).
	Remote *managed.Step

	// bindingLocks holds one lock per tenant and trigger: a binding write
	// reads the list and sends it back whole, so two Actions placing
	// themselves at once would each drop the other.
	bindingLocks sync.Map
	// written remembers, by object, what this process last wrote
	// (writtenAction). A pass that follows another closely may read the
	// object from a cache that has not seen the last status patch yet; it
	// would take a just-created action for one to adopt, or a secret just
	// sent for one still to send. Forgotten when the object is deleted or
	// leaves this instance's selection.
	written reconcile.Written[writtenAction]
}

// writtenAction is what the status of an Action says once this process's
// last write is in it.
type writtenAction struct {
	actionID  string
	hash      string
	ownership identityv1alpha1.RemoteOwnership
}

// recall puts what this process last wrote into a status read from a cache
// that may not have seen it yet.
func (r *ActionReconciler) recall(act *identityv1alpha1.Action) {
	if w, ok := r.written.Recall(act); ok {
		act.Status.ActionID, act.Status.AppliedHash, act.Status.Ownership = w.actionID, w.hash, w.ownership
	}
}

// remember records the status's remote identity after a pass that applied
// the spec.
func (r *ActionReconciler) remember(act *identityv1alpha1.Action) {
	r.written.Remember(act, writtenAction{actionID: act.Status.ActionID, hash: act.Status.AppliedHash, ownership: act.Status.Ownership})
}

// Reconcile runs one pass for an Action.
func (r *ActionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Pass(ctx, r.Client, r.Summarizer, req, &identityv1alpha1.Action{},
		reconcile.Steps[*identityv1alpha1.Action]{Apply: r.reconcileAction, Delete: r.reconcileDelete, Shard: r.Shard,
			Gone: func(req ctrl.Request) { r.written.Forget(req.NamespacedName) }})
}

// reconcileAction writes the draft (internal/managed), deploys it when it
// differs from the deployed version, and places the binding. A draft the
// platform cannot build stalls the object (Deployed=False, BuildFailed) until
// the spec, the code or the secrets change.
func (r *ActionReconciler) reconcileAction(ctx context.Context, act *identityv1alpha1.Action) (reconcile.Success, error) {
	tenant, err := getTenant(ctx, r.Client, act.Namespace, act.Spec.TenantRef.Name, tenantRetry)
	if err != nil {
		return reconcile.Success{}, err
	}
	if err := r.checkOnlyAction(ctx, act); err != nil {
		return reconcile.Success{}, err
	}
	// Everything the spec points at is read before any call, so a missing
	// ConfigMap or Secret costs the tenant's rate limit nothing.
	desired, err := r.desiredAction(ctx, act)
	if err != nil {
		return reconcile.Success{}, err
	}
	api, err := r.Access.ClientFor(ctx, tenant)
	if err != nil {
		return reconcile.Success{}, err
	}
	if err := checkGrant(ctx, api, act, tenant, scopes.ForAction(act)); err != nil {
		return reconcile.Success{}, err
	}
	neighbours, err := r.neighbours(ctx, act)
	if err != nil {
		return reconcile.Success{}, err
	}
	r.recall(act)
	remote := &remoteAction{r: r, api: api, tenant: tenant, act: act, desired: desired, neighbours: neighbours}
	policy := act.EffectiveManagementPolicy()
	outcome, err := r.Remote.Manage(ctx, act, policy, &act.Status.Ownership, remote)
	if err != nil {
		return reconcile.Success{}, err
	}
	if !policy.Writes() {
		return r.reportPlan(act, remote, outcome.Plan)
	}
	managed.Clear(act, &act.Status.Plan)
	wrote := outcome.Wrote
	r.remember(act)
	current := remote.current
	act.Status.BuildStatus = identityv1alpha1.ActionBuildStatus(current.Status)
	recordDeployedVersion(act, current.DeployedVersion)

	deployed, err := r.deploy(ctx, remote)
	if err != nil {
		return reconcile.Success{}, err
	}
	placed, err := r.bind(ctx, remote, wrote || deployed)
	if err != nil {
		return reconcile.Success{}, err
	}
	if (deployed || placed) && act.Status.Ownership == identityv1alpha1.OwnershipAdopted {
		act.Status.Ownership = identityv1alpha1.OwnershipAdoptedWritten
		r.remember(act)
	}
	act.Status.LastSyncTime = reconcile.SyncTime(act.Status.LastSyncTime, r.Clock.Now(), wrote || deployed || placed, r.ResyncInterval)
	return reconcile.Success{Reason: identityv1alpha1.ReasonActionSynced, RequeueAfter: r.ResyncInterval,
		Message: fmt.Sprintf("%s runs in %s at %s of its bindings (version %d)", desired.name, act.Spec.Trigger, act.Status.Bound, act.Status.DeployedVersion)}, nil
}

// deploy makes the draft the running version when the platform says they
// differ, and sets Deployed. A draft that does not build stalls (the
// version deployed before, if any, keeps running); one still building is
// looked at again shortly.
func (r *ActionReconciler) deploy(ctx context.Context, ra *remoteAction) (bool, error) {
	act, current := ra.act, ra.current
	if err := current.BuildError(); err != nil {
		return false, buildFailed(act, ra.desired, err)
	}
	switch current.Status {
	case identity.ActionStatusPending, identity.ActionStatusBuilding:
		return false, reconcile.Waiting(identityv1alpha1.ReasonBuilding, buildingRetry, "the platform is building %s", describeAction(act))
	}
	deployed := false
	if !current.AllChangesDeployed || current.DeployedVersion == nil {
		version, err := ra.api.DeployAction(ctx, current.ID)
		if errors.Is(err, identity.ErrBuildFailed) {
			return false, buildFailed(act, ra.desired, err)
		}
		if err != nil {
			return false, classify(ra.tenant, "deploying "+describeAction(act), err)
		}
		current.DeployedVersion, current.AllChangesDeployed, deployed = version, true, true
		recordDeployedVersion(act, version)
		r.Recorder.Eventf(act, corev1.EventTypeNormal, identityv1alpha1.EventReasonDeployed, "deployed version %d of %s", version.Number, describeAction(act))
	}
	meta.SetStatusCondition(&act.Status.Conditions, metav1.Condition{Type: ConditionDeployed, Status: metav1.ConditionTrue,
		Reason: identityv1alpha1.ReasonDeployed, ObservedGeneration: act.Generation,
		Message: fmt.Sprintf("version %d runs the current code (%s)", act.Status.DeployedVersion, ra.desired.codeSource)})
	return deployed, nil
}

// buildFailed is the Stalled error of a draft the platform cannot build,
// quoting it, with Deployed=False.
func buildFailed(act *identityv1alpha1.Action, desired *desiredAction, err error) error {
	msg := err.Error()
	var build *identity.ActionBuildFailedError
	if errors.As(err, &build) {
		msg = build.Message()
	}
	running := "nothing runs in " + string(act.Spec.Trigger) + " for it yet"
	if act.Status.DeployedVersion > 0 {
		running = fmt.Sprintf("version %d keeps running", act.Status.DeployedVersion)
	}
	text := fmt.Sprintf("the platform cannot build %s (code: %s): %q; %s: fix the code or spec.dependencies", describeAction(act), desired.codeSource, msg, running)
	act.Status.BuildStatus = identity.ActionStatusFailed
	meta.SetStatusCondition(&act.Status.Conditions, metav1.Condition{Type: ConditionDeployed, Status: metav1.ConditionFalse,
		Reason: identityv1alpha1.ReasonBuildFailed, Message: text, ObservedGeneration: act.Generation})
	return reconcile.Stalling(identityv1alpha1.ReasonBuildFailed, "%s", text)
}

// recordDeployedVersion writes the deployed version to status (nil: none).
func recordDeployedVersion(act *identityv1alpha1.Action, v *identity.ActionVersion) {
	if v == nil {
		act.Status.DeployedVersion, act.Status.DeployedVersionID = 0, ""
		return
	}
	act.Status.DeployedVersion, act.Status.DeployedVersionID = int32(v.Number), v.ID
}

// bind places the action in its trigger's execution order (see
// placeBinding) and records where it is. The bindings Observe read serve
// when they need no change; a change is computed again from a fresh read,
// under the tenant's and trigger's lock, and sent as the whole list. fresh
// says the pass wrote already, so the list read before may be stale (a
// sibling Action placed itself meanwhile).
func (r *ActionReconciler) bind(ctx context.Context, ra *remoteAction, fresh bool) (bool, error) {
	act, trigger, neighbours := ra.act, string(ra.act.Spec.Trigger), ra.neighbours
	self := bindingKey{order: act.Spec.Binding.Order, name: ra.desired.name}
	bindings := ra.bindings
	placed := false
	var err error
	if fresh || placeBinding(bindings, ra.current.ID, ra.desired.displayName, self, neighbours) != nil {
		lock := r.bindingLock(ra.tenant.Spec.Domain, trigger)
		lock.Lock()
		defer lock.Unlock()
		if bindings, err = ra.api.ListTriggerBindings(ctx, trigger); err != nil {
			return false, classify(ra.tenant, "reading the bindings of "+trigger, err)
		}
		if update := placeBinding(bindings, ra.current.ID, ra.desired.displayName, self, neighbours); update != nil {
			if bindings, err = ra.api.UpdateTriggerBindings(ctx, trigger, update); err != nil {
				return false, classify(ra.tenant, "writing the bindings of "+trigger, err)
			}
			placed = true
		}
	}
	position := slices.IndexFunc(bindings, func(b identity.TriggerBinding) bool { return b.Action.ID == ra.current.ID })
	if position < 0 {
		// Written, yet not there: someone else wrote the list meanwhile.
		return false, reconcile.Transient(identityv1alpha1.ReasonRemoteConflict,
			fmt.Errorf("%s is not among the bindings of %s just written: they were changed meanwhile", describeAction(act), trigger))
	}
	act.Status.BindingPosition = int32(position + 1)
	act.Status.Bound = fmt.Sprintf("%d/%d", position+1, len(bindings))
	if placed {
		r.Recorder.Eventf(act, corev1.EventTypeNormal, identityv1alpha1.EventReasonBindingsReordered,
			"bound %s at %s of %s, keeping the order of the bindings it does not manage", describeAction(act), act.Status.Bound, trigger)
	}
	meta.SetStatusCondition(&act.Status.Conditions, metav1.Condition{Type: ConditionBound, Status: metav1.ConditionTrue,
		Reason: identityv1alpha1.ReasonBound, ObservedGeneration: act.Generation,
		Message: fmt.Sprintf("runs at %s of the %s bindings, as %q", act.Status.Bound, trigger, ra.desired.displayName)})
	return placed, nil
}

func (r *ActionReconciler) bindingLock(domain, trigger string) *sync.Mutex {
	l, _ := r.bindingLocks.LoadOrStore(domain+"/"+trigger, &sync.Mutex{})
	return l.(*sync.Mutex)
}

// bindingKey orders the Actions the operator binds on one trigger: by
// spec.binding.order, then by name.
type bindingKey struct {
	order int32
	name  string
}

func (k bindingKey) less(o bindingKey) bool {
	return k.order < o.order || (k.order == o.order && k.name < o.name)
}

// neighbours are the other Actions of the same Tenant and trigger that hold
// their action, by action id: the bindings this one is ordered against.
func (r *ActionReconciler) neighbours(ctx context.Context, act *identityv1alpha1.Action) (map[string]bindingKey, error) {
	var all identityv1alpha1.ActionList
	if err := r.List(ctx, &all, client.InNamespace(act.Namespace), client.MatchingFields{indexTenantRef: act.Spec.TenantRef.Name}); err != nil {
		return nil, err
	}
	out := map[string]bindingKey{}
	for i := range all.Items {
		other := &all.Items[i]
		if other.UID == act.UID || other.Spec.Trigger != act.Spec.Trigger || other.Status.ActionID == "" || !other.DeletionTimestamp.IsZero() {
			continue
		}
		out[other.Status.ActionID] = bindingKey{order: other.Spec.Binding.Order, name: other.RemoteName()}
	}
	return out, nil
}

// placeBinding returns the trigger's whole binding list with the action id
// bound once, as displayName, at its place; nil when current needs no
// change. Its place: where it is, if every neighbour (the operator's other
// Actions on the trigger) that sorts before it is before it and every one
// that sorts after it is after it; otherwise right after the last neighbour
// that sorts before it, or else right before the first that sorts after it,
// or else at the end. Every other binding keeps its relative order, so a
// binding made by someone else is never moved, only passed.
func placeBinding(current []identity.TriggerBinding, id, displayName string, self bindingKey, neighbours map[string]bindingKey) []identity.BindingUpdate {
	positions := 0
	at := -1
	for i, b := range current {
		if b.Action.ID == id {
			positions++
			at = i
		}
	}
	if positions == 1 && current[at].DisplayName == displayName && inPlace(current, at, self, neighbours) {
		return nil
	}
	rest := make([]identity.BindingUpdate, 0, len(current)+1)
	lastBefore, firstAfter := -1, -1
	for _, b := range current {
		if b.Action.ID == id {
			continue
		}
		if k, ok := neighbours[b.Action.ID]; ok {
			if k.less(self) {
				lastBefore = len(rest)
			} else if firstAfter < 0 {
				firstAfter = len(rest)
			}
		}
		rest = append(rest, identity.BindingUpdate{Ref: identity.BindingRef{Type: identity.BindingRefActionID, Value: b.Action.ID}, DisplayName: b.DisplayName})
	}
	insert := len(rest)
	switch {
	case positions == 1 && inPlace(current, at, self, neighbours):
		// Only the display name changes.
		insert = at
	case lastBefore >= 0:
		insert = lastBefore + 1
	case firstAfter >= 0:
		insert = firstAfter
	}
	return slices.Insert(rest, insert, identity.BindingUpdate{Ref: identity.BindingRef{Type: identity.BindingRefActionID, Value: id}, DisplayName: displayName})
}

// inPlace reports whether the binding at is ordered correctly against every
// neighbour in the list.
func inPlace(current []identity.TriggerBinding, at int, self bindingKey, neighbours map[string]bindingKey) bool {
	for i, b := range current {
		k, ok := neighbours[b.Action.ID]
		if !ok || i == at {
			continue
		}
		if (i < at) != k.less(self) {
			return false
		}
	}
	return true
}

// desiredAction is the action the spec declares, with its code and secrets
// resolved.
type desiredAction struct {
	name         string
	trigger      identity.ActionTrigger
	runtime      string
	code         string
	codeSource   string
	dependencies []identity.ActionDependency
	secrets      []identity.ActionSecret
	// hash fingerprints all of the above but displayName (status.appliedHash),
	// its second half (secretsHash) the secrets alone.
	hash, secretsHash string
	displayName       string
}

// desiredAction reads the code's ConfigMap and the secrets' Secret (see
// contentReader) and builds the action to write.
func (r *ActionReconciler) desiredAction(ctx context.Context, act *identityv1alpha1.Action) (*desiredAction, error) {
	spec := &act.Spec
	d := &desiredAction{name: act.RemoteName(), runtime: string(spec.Runtime), displayName: spec.Binding.DisplayName,
		dependencies: []identity.ActionDependency{}, secrets: []identity.ActionSecret{}}
	if d.runtime == "" {
		d.runtime = string(identityv1alpha1.RuntimeNode22)
	}
	if d.displayName == "" {
		d.displayName = d.name
	}
	version := spec.TriggerVersion
	if version == "" {
		version = identityv1alpha1.TriggerVersions[spec.Trigger]
	}
	d.trigger = identity.ActionTrigger{ID: string(spec.Trigger), Version: version}
	for _, dep := range spec.Dependencies {
		d.dependencies = append(d.dependencies, identity.ActionDependency{Name: dep.Name, Version: dep.Version})
	}
	sort.Slice(d.dependencies, func(i, j int) bool { return d.dependencies[i].Name < d.dependencies[j].Name })

	if ref := spec.Code.ConfigMapKeyRef; ref != nil {
		cm := &corev1.ConfigMap{}
		if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: act.Namespace, Name: ref.Name}, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, reconcile.Stalling(identityv1alpha1.ReasonCodeSourceNotFound,
					"ConfigMap %q (spec.code.configMapKeyRef) not found in namespace %q", ref.Name, act.Namespace)
			}
			return nil, err
		}
		if d.code = cm.Data[ref.Key]; strings.TrimSpace(d.code) == "" {
			return nil, reconcile.Stalling(identityv1alpha1.ReasonCodeSourceNotFound,
				"ConfigMap %q has no key %q (or it is empty): spec.code needs the action's source there", ref.Name, ref.Key)
		}
		d.codeSource = fmt.Sprintf("ConfigMap %s, key %s", ref.Name, ref.Key)
	} else {
		d.code, d.codeSource = spec.Code.Inline, "inline"
	}

	if ref := spec.SecretsRef; ref != nil {
		secret := &corev1.Secret{}
		if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: act.Namespace, Name: ref.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, reconcile.Stalling(identityv1alpha1.ReasonActionSecretNotFound,
					"Secret %q (spec.secretsRef) not found in namespace %q: create it with the values the code reads from event.secrets", ref.Name, act.Namespace)
			}
			return nil, err
		}
		for k, v := range secret.Data {
			d.secrets = append(d.secrets, identity.ActionSecret{Name: k, Value: string(v)})
		}
		sort.Slice(d.secrets, func(i, j int) bool { return d.secrets[i].Name < d.secrets[j].Name })
	}
	// Two halves, so that a plan can tell whether the secrets changed.
	d.secretsHash = hashOf(act.UID, d.secrets)
	d.hash = hashOf(act.UID, struct {
		Name         string
		Trigger      identity.ActionTrigger
		Runtime      string
		Code         string
		Dependencies []identity.ActionDependency
	}{d.name, d.trigger, d.runtime, d.code, d.dependencies}) + "." + d.secretsHash
	return d, nil
}

// drift names what differs between the draft the platform holds and the
// desired one (secrets by name: their values are never returned).
func (d *desiredAction) drift(current *identity.Action) []string {
	var out []string
	if current.Name != d.name {
		out = append(out, "name")
	}
	if current.Code != d.code {
		out = append(out, "code")
	}
	if current.Runtime != d.runtime {
		out = append(out, "runtime")
	}
	if !slices.Equal(current.SupportedTriggers, []identity.ActionTrigger{d.trigger}) {
		out = append(out, "supported_triggers")
	}
	deps := slices.Clone(current.Dependencies)
	sort.Slice(deps, func(i, j int) bool { return deps[i].Name < deps[j].Name })
	if !slices.Equal(deps, d.dependencies) {
		out = append(out, "dependencies")
	}
	if !slices.Equal(secretNames(current.Secrets), d.secretNames()) {
		out = append(out, "secrets")
	}
	return out
}

func secretNames(secrets []identity.ActionSecretName) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

func (d *desiredAction) secretNames() []string {
	out := make([]string, 0, len(d.secrets))
	for _, s := range d.secrets {
		out = append(out, s.Name)
	}
	return out
}

// remoteAction is the action on the tenant, for the shared step
// (internal/managed).
type remoteAction struct {
	r       *ActionReconciler
	api     identity.Client
	tenant  *identityv1alpha1.Tenant
	act     *identityv1alpha1.Action
	desired *desiredAction
	// neighbours are the operator's other Actions on the trigger (see
	// neighbours).
	neighbours map[string]bindingKey
	// bindings are the trigger's bindings as Observe read them; current is
	// the action as last read or written; drifted what differs.
	bindings []identity.TriggerBinding
	current  *identity.Action
	drifted  []string
}

// Observe reads the trigger's bindings, which carry the action when it is
// bound; otherwise it reads the action by the id in status, or finds it by
// name (to adopt it, or when it was deleted behind the operator's back).
func (a *remoteAction) Observe(ctx context.Context) (managed.Observation, error) {
	act, trigger := a.act, string(a.act.Spec.Trigger)
	bindings, err := a.api.ListTriggerBindings(ctx, trigger)
	if err != nil {
		return managed.Observation{}, classify(a.tenant, "reading the bindings of "+trigger, err)
	}
	a.bindings = bindings
	if id := act.Status.ActionID; id != "" {
		for i := range bindings {
			// A binding that carries its action's code serves as the read of
			// the action (unverified on the platform: otherwise, read it).
			if b := &bindings[i]; b.Action.ID == id && b.Action.Code != "" && b.Action.Status != "" {
				return a.observed(&b.Action, true), nil
			}
		}
		current, err := a.api.GetAction(ctx, id)
		if err == nil {
			return a.observed(current, true), nil
		}
		if !errors.Is(err, identity.ErrNotFound) {
			return managed.Observation{}, classify(a.tenant, "reading "+describeAction(act), err)
		}
		a.r.Recorder.Eventf(act, corev1.EventTypeWarning, identityv1alpha1.EventReasonDrift, "%s was deleted outside the operator", describeAction(act))
		act.Status.ActionID = ""
		recordDeployedVersion(act, nil)
	}
	current, err := a.api.FindActionByName(ctx, a.desired.name, "")
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return managed.Observation{}, nil
	case err != nil:
		return managed.Observation{}, classify(a.tenant, fmt.Sprintf("looking up action %q", a.desired.name), err)
	}
	// From now on it is read by id.
	act.Status.ActionID = current.ID
	return a.observed(current, false), nil
}

func (a *remoteAction) observed(current *identity.Action, known bool) managed.Observation {
	a.current, a.drifted = current, a.desired.drift(current)
	return managed.Observation{Exists: true, Known: known,
		UpToDate: len(a.drifted) == 0 && a.act.Status.AppliedHash == a.desired.hash}
}

// Create posts the action with its code, dependencies and secrets; the
// platform builds it at once.
func (a *remoteAction) Create(ctx context.Context) error {
	d := a.desired
	created, err := a.api.CreateAction(ctx, a.createBody())
	if err != nil {
		return classify(a.tenant, fmt.Sprintf("creating action %q", d.name), err)
	}
	a.current = created
	a.act.Status.ActionID, a.act.Status.AppliedHash = created.ID, d.hash
	return nil
}

// Update patches what differs; the secrets go (all of them, with their
// values: the list replaces the secret set) when their names differ or
// anything changed since they were last sent (the Secret among it). A draft
// that differs although nothing changed since the last write was changed
// outside the operator: it is restored, with an event.
func (a *remoteAction) Update(ctx context.Context) error {
	d, act := a.desired, a.act
	if len(a.drifted) > 0 && act.Status.AppliedHash == d.hash {
		a.r.Recorder.Eventf(act, corev1.EventTypeWarning, identityv1alpha1.EventReasonDrift,
			"restored %s of %s, changed outside the operator", strings.Join(a.drifted, ", "), describeAction(act))
	}
	updated, err := a.api.UpdateAction(ctx, a.current.ID, a.updateBody())
	if err != nil {
		return classify(a.tenant, "updating "+describeAction(act), err)
	}
	a.current = updated
	act.Status.AppliedHash = d.hash
	return nil
}

// createBody is the POST Create sends and a plan renders.
func (a *remoteAction) createBody() identity.ActionCreate {
	d := a.desired
	return identity.ActionCreate{Name: d.name, SupportedTriggers: []identity.ActionTrigger{d.trigger},
		Code: d.code, Runtime: d.runtime, Dependencies: d.dependencies, Secrets: d.secrets}
}

// updateBody is the PATCH Update sends and a plan renders: what drifted,
// and the secrets when they must go (see Update).
func (a *remoteAction) updateBody() identity.ActionUpdate {
	d := a.desired
	var update identity.ActionUpdate
	for _, field := range a.drifted {
		switch field {
		case "name":
			update.Name = &d.name
		case "code":
			update.Code = &d.code
		case "runtime":
			update.Runtime = &d.runtime
		case "supported_triggers":
			update.SupportedTriggers = &[]identity.ActionTrigger{d.trigger}
		case "dependencies":
			update.Dependencies = &d.dependencies
		}
	}
	if slices.Contains(a.drifted, "secrets") || a.act.Status.AppliedHash != d.hash {
		update.Secrets = &d.secrets
	}
	return update
}

// Describe names the action for events.
func (a *remoteAction) Describe() string { return describeAction(a.act) }

func describeAction(act *identityv1alpha1.Action) string {
	if id := act.Status.ActionID; id != "" {
		return fmt.Sprintf("action %s (%s)", act.RemoteName(), id)
	}
	return "action " + act.RemoteName()
}

// actionKey is the value of indexActionName.
func actionKey(act *identityv1alpha1.Action) string {
	return act.Spec.TenantRef.Name + "/" + act.RemoteName()
}

// checkOnlyAction refuses to write an action that another Action of the
// same Tenant already manages (see incumbent).
func (r *ActionReconciler) checkOnlyAction(ctx context.Context, act *identityv1alpha1.Action) error {
	var all identityv1alpha1.ActionList
	if err := r.List(ctx, &all, client.InNamespace(act.Namespace), client.MatchingFields{indexActionName: actionKey(act)}); err != nil {
		return err
	}
	others := make([]*identityv1alpha1.Action, 0, len(all.Items))
	for i := range all.Items {
		others = append(others, &all.Items[i])
	}
	if other := incumbent(act, others, func(a *identityv1alpha1.Action) bool { return a.Status.Ownership != "" }); other != nil {
		return reconcile.Stalling(identityv1alpha1.ReasonActionClaimed,
			"Action %q already manages action %s of Tenant %q, and an action has one writer: this object writes nothing; delete it, or choose another spec.actionName",
			other.GetName(), act.RemoteName(), act.Spec.TenantRef.Name)
	}
	return nil
}

// reconcileDelete removes the action and its binding (the platform's
// force delete) for deletionPolicy Delete, when the operator owns it
// (status.ownership: created, or adopted and written); for Orphan the
// action stays, bound and running.
func (r *ActionReconciler) reconcileDelete(ctx context.Context, act *identityv1alpha1.Action) error {
	r.recall(act)
	policy := act.Spec.DeletionPolicy
	if policy == "" {
		policy = identityv1alpha1.DeletionPolicyDelete
	}
	ownership := act.Status.Ownership
	if act.Status.ActionID == "" {
		ownership = ""
	}
	err := r.Remote.Delete(ctx, act, policy, ownership, describeAction(act), func(ctx context.Context) error {
		tenant, err := getTenant(ctx, r.Client, act.Namespace, act.Spec.TenantRef.Name, tenantRetry)
		if err != nil {
			return err
		}
		api, err := r.Access.ClientFor(ctx, tenant)
		if err != nil {
			return err
		}
		if err := api.DeleteAction(ctx, act.Status.ActionID, true); err != nil {
			return classify(tenant, "deleting "+describeAction(act), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.written.Forget(client.ObjectKeyFromObject(act))
	return reconcile.RemoveFinalizer(ctx, r.Client, act, identityv1alpha1.Finalizer)
}

// SetupWithManager registers the reconciler; it watches its Tenants (to
// start once one appears), and the ConfigMap of its code and the Secret of
// its secrets (metadata only: contents are read through contentReader).
func (r *ActionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	for index, extract := range map[string]func(*identityv1alpha1.Action) []string{
		indexActionCodeConfigMap: func(a *identityv1alpha1.Action) []string {
			if ref := a.Spec.Code.ConfigMapKeyRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		},
		indexActionSecret: func(a *identityv1alpha1.Action) []string {
			if ref := a.Spec.SecretsRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		},
		indexActionName: func(a *identityv1alpha1.Action) []string { return []string{actionKey(a)} },
	} {
		if err := indexer.IndexField(context.Background(), &identityv1alpha1.Action{}, index, func(obj client.Object) []string {
			return extract(obj.(*identityv1alpha1.Action))
		}); err != nil {
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).WithOptions(controllerOptions()).
		For(&identityv1alpha1.Action{}, builder.WithPredicates(reconcile.SpecChanged())).
		Watches(&identityv1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.ActionList{}, indexTenantRef)), builder.WithPredicates(reconcile.ReadinessChanged())).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.ActionList{}, indexActionCodeConfigMap)), builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.ActionList{}, indexActionSecret)), builder.OnlyMetadata).
		WatchesRawSource(tenantRecovered(r.Access, mgr.GetClient(), &identityv1alpha1.ActionList{})).
		Complete(r)
}
