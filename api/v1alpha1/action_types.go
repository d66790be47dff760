package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActionTriggerID is a trigger of the platform's login and user flows that
// actions are bound to (the Management API's triggerId).
// +kubebuilder:validation:Enum=post-login;credentials-exchange;pre-user-registration;post-user-registration;post-change-password;send-phone-message;password-reset-post-challenge;custom-email-provider;custom-phone-provider;custom-token-exchange
type ActionTriggerID string

// The triggers an Action can be bound to.
const (
	TriggerPostLogin                  ActionTriggerID = "post-login"
	TriggerCredentialsExchange        ActionTriggerID = "credentials-exchange"
	TriggerPreUserRegistration        ActionTriggerID = "pre-user-registration"
	TriggerPostUserRegistration       ActionTriggerID = "post-user-registration"
	TriggerPostChangePassword         ActionTriggerID = "post-change-password"
	TriggerSendPhoneMessage           ActionTriggerID = "send-phone-message"
	TriggerPasswordResetPostChallenge ActionTriggerID = "password-reset-post-challenge"
	TriggerCustomEmailProvider        ActionTriggerID = "custom-email-provider"
	TriggerCustomPhoneProvider        ActionTriggerID = "custom-phone-provider"
	TriggerCustomTokenExchange        ActionTriggerID = "custom-token-exchange"
)

// TriggerVersions is the current version of each trigger, the one an
// Action is written for unless spec.triggerVersion says otherwise.
// post-login v3 is documented by the platform; the others follow its
// trigger catalogue (GET /api/v2/actions/triggers) and are unverified.
var TriggerVersions = map[ActionTriggerID]string{
	TriggerPostLogin:                  "v3",
	TriggerCredentialsExchange:        "v2",
	TriggerPreUserRegistration:        "v2",
	TriggerPostUserRegistration:       "v2",
	TriggerPostChangePassword:         "v2",
	TriggerSendPhoneMessage:           "v2",
	TriggerPasswordResetPostChallenge: "v1",
	TriggerCustomEmailProvider:        "v1",
	TriggerCustomPhoneProvider:        "v1",
	TriggerCustomTokenExchange:        "v1",
}

// ActionRuntime is the Node.js runtime an action runs on.
// +kubebuilder:validation:Enum=node18;node22
type ActionRuntime string

// The runtimes the platform offers actions.
const (
	RuntimeNode18 ActionRuntime = "node18"
	RuntimeNode22 ActionRuntime = "node22"
)

// ActionSpec declares an action: its code, what it needs, and its place in
// the trigger's execution order.
type ActionSpec struct {
	// TenantRef names the Tenant, in this namespace, the action runs on.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tenantRef is immutable: delete this Action and create one for the other tenant"
	TenantRef TenantReference `json:"tenantRef"`

	// ActionName is the action's name on the platform (unique in the
	// tenant); metadata.name when unset. An action of that name is adopted
	// if it exists; changing it renames the action.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule=`self.trim() == self`,message="actionName must not start or end with spaces"
	ActionName string `json:"actionName,omitempty"`

	// Trigger is the flow the action runs in, such as post-login (after a
	// user authenticated, before the application gets the tokens).
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="trigger is immutable: an action is written for one trigger; create another Action for the other trigger"
	Trigger ActionTriggerID `json:"trigger"`

	// TriggerVersion is the version of the trigger's API the code is
	// written for, such as v3 for post-login; the trigger's current version
	// when unset.
	// +optional
	// +kubebuilder:validation:XValidation:rule=`self.matches('^v[0-9]+$')`,message="triggerVersion must be a version such as v3"
	TriggerVersion string `json:"triggerVersion,omitempty"`

	// Runtime is the Node.js runtime the action runs on.
	// +optional
	// +kubebuilder:default=node22
	Runtime ActionRuntime `json:"runtime,omitempty"`

	// Code is the action's JavaScript source, inline or from a ConfigMap
	// key, exporting the trigger's handler such as
	// exports.onExecutePostLogin = async (event, api) => { ... }.
	Code ActionCode `json:"code"`

	// Dependencies are the npm packages the code requires.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	Dependencies []ActionDependency `json:"dependencies,omitempty"`

	// SecretsRef names a Secret, in this namespace, whose keys and values
	// become the action's secrets (event.secrets). The platform never
	// returns secret values, so the operator sends them again, and deploys
	// a new version, whenever the Secret changes.
	// +optional
	SecretsRef *LocalObjectReference `json:"secretsRef,omitempty"`

	// Binding is the action's place in the trigger's execution order.
	// +optional
	Binding ActionBinding `json:"binding,omitempty"`

	// DeletionPolicy says what deleting this object does to the action.
	// Delete (the default) removes the action and its binding; Orphan
	// leaves both, still running.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// ManagementPolicy says what the operator may do to the remote action
	// and its binding: Apply (the default) writes, deploys and binds; Plan
	// reads them and reports in status what Apply would do, writing
	// nothing; Observe reads them and reports the drift, never writing or
	// deleting anything.
	// +optional
	// +kubebuilder:default=Apply
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// ActionCode is the source of an action: inline, or a key of a ConfigMap in
// the same namespace (so it can be tested as a file).
// +kubebuilder:validation:XValidation:rule="has(self.inline) != has(self.configMapKeyRef)",message="code takes exactly one of inline or configMapKeyRef"
type ActionCode struct {
	// Inline is the source.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=102400
	// +kubebuilder:validation:XValidation:rule=`self.contains('exports.on')`,message="inline code must export the trigger's handler, such as exports.onExecutePostLogin = async (event, api) => { ... }"
	Inline string `json:"inline,omitempty"`
	// ConfigMapKeyRef selects the ConfigMap key holding the source.
	// +optional
	ConfigMapKeyRef *KeySelector `json:"configMapKeyRef,omitempty"`
}

// ActionDependency is an npm package the action requires.
type ActionDependency struct {
	// Name of the package, such as axios or @acme/identity-helpers.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=214
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(@[a-z0-9][-a-z0-9._~]*/)?[a-z0-9][-a-z0-9._~]*$')`,message="dependencies[].name must be an npm package name such as axios or @acme/helpers (lowercase)"
	Name string `json:"name"`
	// Version of the package, such as 1.7.2 or latest.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`!self.contains(' ')`,message="dependencies[].version must be one version or tag such as 1.7.2, without spaces"
	Version string `json:"version"`
}

// ActionBinding places an action in its trigger's execution order.
type ActionBinding struct {
	// Order ranks this action among the Actions of the same Tenant and
	// trigger that the operator binds: lower runs first, equal orders run
	// by actionName. Bindings the operator does not manage (made in the
	// dashboard, say) keep their places relative to each other; an action
	// with no managed neighbour yet is bound after them.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Order int32 `json:"order,omitempty"`

	// DisplayName is the binding's name in the flow; actionName when unset.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`
}

// ActionBuildStatus is the platform's build status of an action's draft.
type ActionBuildStatus string

// ActionStatus is what the operator observed and did.
type ActionStatus struct {
	// Conditions: Ready summarizes; Reconciling, Stalled and Paused follow
	// kstatus; CredentialsValid says whether the Tenant's credentials are
	// granted the scopes the action needs; Deployed whether the current code
	// runs (False with BuildFailed quotes the platform); Bound whether the
	// action is in its trigger's flow.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Shard is the operator instance that holds this object: the only one
	// that calls the tenant for it. An instance claims an unclaimed object
	// before its first call, and releases it once the object leaves its
	// selection (the operator's --watch-label-selector); "default" is the
	// instance run without a shard name. Another instance that selects the
	// object waits (condition ShardHandoff) until it is released, or takes
	// it over after twice the reconcile timeout.
	// +optional
	Shard string `json:"shard,omitempty"`
	// ActionID is the platform's id of the action.
	// +optional
	ActionID string `json:"actionID,omitempty"`
	// Ownership is on what grounds the operator holds the action: Created
	// (it made it), Adopted (found by name and not yet written) or
	// AdoptedWritten (found by name, then written). deletionPolicy Delete
	// deletes only a Created or AdoptedWritten action.
	// +optional
	Ownership RemoteOwnership `json:"ownership,omitempty"`
	// BuildStatus is the platform's status of the action's draft: built,
	// failed, pending or building.
	// +optional
	BuildStatus ActionBuildStatus `json:"buildStatus,omitempty"`
	// DeployedVersion is the number of the version the trigger runs.
	// +optional
	DeployedVersion int32 `json:"deployedVersion,omitempty"`
	// DeployedVersionID is the platform's id of that version.
	// +optional
	DeployedVersionID string `json:"deployedVersionID,omitempty"`
	// BindingPosition is the action's place in its trigger's execution
	// order, from 1; 0 while it is not bound.
	// +optional
	BindingPosition int32 `json:"bindingPosition,omitempty"`
	// Bound is the place among all the trigger's bindings, such as "2/3",
	// for a glance.
	// +optional
	Bound string `json:"bound,omitempty"`
	// AppliedHash fingerprints what was last sent: name, trigger, runtime,
	// code, dependencies and secrets (salted; never the values). The
	// platform does not return secrets, so this is how a changed Secret is
	// noticed; and a draft that differs from the spec while the hash is
	// unchanged was changed outside the operator (event DriftCorrected).
	// +optional
	AppliedHash string `json:"appliedHash,omitempty"`
	// LastSyncTime is when the action was last read (or written) and found
	// in the declared state. A pass that changes nothing refreshes it only
	// once half a resync interval has passed since.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// Plan is, under managementPolicy Plan, what Apply would do, field by
	// field (the draft's fields, then deploy and bindings.<trigger> when a
	// deploy or a binding write would follow), and under Observe the drift
	// from the spec (never corrected). Absent under Apply.
	// +optional
	Plan *ManagementPlan `json:"plan,omitempty"`
}

// Action is a piece of JavaScript the platform runs in one of its flows
// (post-login: after a user authenticated), deployed and bound to its
// trigger by the operator.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=act,categories=identity
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenantRef.name`
// +kubebuilder:printcolumn:name="Trigger",type=string,JSONPath=`.spec.trigger`
// +kubebuilder:printcolumn:name="Version",type=integer,JSONPath=`.status.deployedVersion`
// +kubebuilder:printcolumn:name="Build",type=string,JSONPath=`.status.buildStatus`
// +kubebuilder:printcolumn:name="Bound",type=string,JSONPath=`.status.bound`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.managementPolicy`
// +kubebuilder:printcolumn:name="Planned",type=integer,JSONPath=`.status.plan.pending`,priority=1
// +kubebuilder:printcolumn:name="Action ID",type=string,JSONPath=`.status.actionID`,priority=1
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.status.shard`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Action struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired action.
	Spec ActionSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status ActionStatus `json:"status,omitempty"`
}

// RemoteName is the action's name on the platform: spec.actionName, or
// metadata.name.
func (in *Action) RemoteName() string {
	if in.Spec.ActionName != "" {
		return in.Spec.ActionName
	}
	return in.Name
}

// EffectiveManagementPolicy is the Action's policy in force (Apply when
// unset).
func (in *Action) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}

// ActionList is a list of Actions.
// +kubebuilder:object:root=true
type ActionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Actions.
	Items []Action `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Action{}, &ActionList{})
}
