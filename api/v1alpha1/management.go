package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Effective is the policy in force: Apply when the field is empty (an
// object stored before the field existed, or read without defaulting).
func (p ManagementPolicy) Effective() ManagementPolicy {
	if p == "" {
		return ManagementPolicyApply
	}
	return p
}

// Writes reports whether the operator may write the remote object under
// this policy: only under Apply. Plan and Observe read and report.
func (p ManagementPolicy) Writes() bool { return p.Effective() == ManagementPolicyApply }

// EffectiveManagementPolicy is the Tenant's policy in force (Apply when
// unset).
func (in *Tenant) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}

// Manages reports whether the operator writes this Tenant's remote tenant
// (its settings, flags, templates): only under Apply. A PlatformMigration
// must neither count a tenant it does not manage as enabled nor expect the
// date's PATCH to reach it.
func (in *Tenant) Manages() bool { return in.Spec.ManagementPolicy.Writes() }

// EffectiveManagementPolicy is the EmailProvider's policy in force (Apply
// when unset).
func (in *EmailProvider) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}

// EffectiveManagementPolicy is the CustomDatabaseConnection's policy in
// force (Apply when unset).
func (in *CustomDatabaseConnection) EffectiveManagementPolicy() ManagementPolicy {
	return in.Spec.ManagementPolicy.Effective()
}

// PlanAction is the request Apply would make to the remote object.
// +kubebuilder:validation:Enum=Create;Update;None
type PlanAction string

const (
	// PlanCreate: the remote object does not exist; Apply would create it
	// with the changes listed (every field from nothing).
	PlanCreate PlanAction = "Create"
	// PlanUpdate: the remote object exists and differs; Apply would send
	// the changes listed.
	PlanUpdate PlanAction = "Update"
	// PlanNone: the remote object is in the declared state; Apply would
	// send nothing (changes due at a later date may still be listed).
	PlanNone PlanAction = "None"
)

// SecretChange says whether a value taken from a Secret differs from the
// one the operator last sent. The value itself, or any hash of it, never
// appears in status.
// +kubebuilder:validation:Enum=Changed;Unchanged
type SecretChange string

const (
	// SecretChanged: the Secret's value is not the one last sent (or none
	// was sent yet: the platform never returns secrets, so a value it holds
	// but the operator did not send counts as changed).
	SecretChanged SecretChange = "Changed"
	// SecretUnchanged: the value last sent; Apply sends it again only
	// because the request carries it whole.
	SecretUnchanged SecretChange = "Unchanged"
)

// PlannedChange is one field of a request Apply would send, with the value
// the remote object holds now and the value it would get.
type PlannedChange struct {
	// Field is the field's path in the request body, in the platform's
	// spelling, prefixed by the remote object when a kind writes several:
	// settings.friendly_name, settings.flags.change_pwd_flow_v1,
	// email_templates.reset_email.subject (Tenant); credentials.api_key
	// (EmailProvider); options.customScripts.login (CustomDatabaseConnection).
	Field string `json:"field"`
	// From is the value the remote object holds, as JSON (a string is
	// quoted); empty when it holds none, or when the value is a secret.
	// +optional
	From string `json:"from,omitempty"`
	// To is the value Apply sends, as JSON; null removes the field (the
	// platform's default applies). Empty when the value is a secret.
	// +optional
	To string `json:"to,omitempty"`
	// Secret is set instead of From and To for a value taken from a Secret:
	// Changed or Unchanged.
	// +optional
	Secret SecretChange `json:"secret,omitempty"`
	// Due is set for a change that is not pending now but becomes so at a
	// PlatformMigration's next date (its mandatory opt-in, say): Apply sends
	// it at that moment, not before. Due changes are not counted in pending.
	// +optional
	Due *metav1.Time `json:"due,omitempty"`
	// Migration names the PlatformMigrations whose change sets the field,
	// when it comes from one rather than from this object's spec.
	// +optional
	Migration string `json:"migration,omitempty"`
}

// ManagementPlan is what the operator would write to the remote object,
// reported under managementPolicy Plan (the plan) and Observe (the drift,
// which is never corrected). It is computed from the very request bodies
// Apply sends, so that switching to Apply sends exactly these changes
// (unless the remote object changes meanwhile). Absent under Apply.
type ManagementPlan struct {
	// Policy the plan was made under: Plan or Observe.
	Policy ManagementPolicy `json:"policy"`
	// Action is the request Apply would make: Create, Update or None.
	Action PlanAction `json:"action"`
	// Pending counts the changes Apply would send now: a secret sent again
	// unchanged and changes due later are not counted.
	Pending int32 `json:"pending"`
	// Changes lists every field Apply would send whose value differs from
	// the remote object's (and every secret it would send), then the
	// changes due at a later date.
	// +optional
	// +listType=atomic
	Changes []PlannedChange `json:"changes,omitempty"`
}

// Condition types of managementPolicy Plan and Observe. Under Apply
// neither is set.
//
// Ready under Plan and Observe: once the remote object was read, Ready is
// True with reason Planned or Observed (and Reconciling and Stalled are
// absent), whatever is pending: the operator did all it may do, so
// kstatus, Argo CD and Flux see the object Current and `kubectl wait
// --for=condition=Ready` returns; whether anything would change is the
// Planned or Drifted condition's answer. A read that fails is reported as
// under Apply (Ready False, Reconciling or Stalled). Under Observe, a
// remote object that does not exist is Stalled with reason
// RemoteObjectMissing: there is nothing to observe, and Observe never
// creates it.
const (
	// ConditionPlanned (Plan): True with reason ChangesPending and the
	// count and fields in its message, or NoChanges.
	ConditionPlanned = "Planned"
	// ConditionDrifted (Observe): True with reason DriftDetected when the
	// remote object differs from the spec (status.plan lists how; nothing
	// corrects it), False with reason InSync when it does not.
	ConditionDrifted = "Drifted"
)
