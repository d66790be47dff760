package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PausedAnnotation stops all calls to the identity API for the annotated
// object while its value is "true"; the object reports a Paused condition.
const PausedAnnotation = "identity.tenantops.io/paused"

// Finalizer is held by every kind while its remote object may still need
// cleaning up according to its deletion policy.
const Finalizer = "identity.tenantops.io/finalizer"

// DeletionPolicy says what happens to the remote object when its Kubernetes
// object is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the remote object before the Kubernetes
	// object goes away.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the remote object as it is.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// ManagementPolicy says what the operator may do to the remote object, after
// Crossplane's management policies.
// +kubebuilder:validation:Enum=Apply;Plan;Observe
type ManagementPolicy string

const (
	// ManagementPolicyApply reads the remote object and writes the declared
	// state to it (the default).
	ManagementPolicyApply ManagementPolicy = "Apply"
	// ManagementPolicyPlan reads the remote object and reports in status,
	// field by field, what Apply would send; it sends nothing.
	ManagementPolicyPlan ManagementPolicy = "Plan"
	// ManagementPolicyObserve adopts the remote object read-only: status
	// shows the remote state and its drift from the spec; nothing is written,
	// and deleting the object never deletes the remote object.
	ManagementPolicyObserve ManagementPolicy = "Observe"
)

// LocalObjectReference names an object in the referring object's own
// namespace. References never cross namespaces: whoever can write in a
// namespace reaches only the tenants whose credentials live there.
// +structType=atomic
type LocalObjectReference struct {
	// Name of the object in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a lowercase DNS-1123 subdomain (letters, digits, '-' and '.'), such as acme-credentials"
	Name string `json:"name"`
}

// TenantReference names the Tenant, in the same namespace, that an object is
// managed on.
// +structType=atomic
type TenantReference struct {
	// Name of the Tenant in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// KeySelector selects one key of a ConfigMap or Secret in the same namespace.
// +structType=atomic
type KeySelector struct {
	// Name of the ConfigMap or Secret in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="key must consist of letters, digits, '-', '_' or '.'"
	Key string `json:"key"`
}

// Condition types shared by every kind. Ready is the summary; Reconciling and
// Stalled follow kstatus so that Argo CD, Flux and `kubectl wait` read them.
const (
	// ConditionReady is True when the remote state matches the spec.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is working towards the spec.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a change by a person.
	ConditionStalled = "Stalled"
	// ConditionPaused is True while the paused annotation is set.
	ConditionPaused = "Paused"
	// ConditionCredentialsValid is True when the Tenant's credentials get a
	// token granted every scope the object's declared spec needs, and False
	// (reason CredentialsRejected or InsufficientScope, naming the missing
	// scopes) when they do not: checked before the object's first call.
	ConditionCredentialsValid = "CredentialsValid"
)

// RateLimitStatus is the rate-limit budget the identity API last reported for
// a tenant (its X-RateLimit-* headers).
type RateLimitStatus struct {
	// Limit is the size of the budget.
	// +optional
	Limit int32 `json:"limit,omitempty"`
	// Remaining is what was left of it on the last response.
	// +optional
	Remaining int32 `json:"remaining,omitempty"`
	// ResetTime is when the budget is refilled.
	// +optional
	ResetTime *metav1.Time `json:"resetTime,omitempty"`
}
