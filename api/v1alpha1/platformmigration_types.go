package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Severity is how much harm the old behaviour can do.
// +kubebuilder:validation:Enum=Low;Medium;High;Critical
type Severity string

// Severities the platform uses for its migrations.
const (
	SeverityLow      Severity = "Low"
	SeverityMedium   Severity = "Medium"
	SeverityHigh     Severity = "High"
	SeverityCritical Severity = "Critical"
)

// ReadinessCheckType names a precondition a tenant must meet before the
// change can be enabled on it without breaking it. Every check is evaluated
// on what the operator already knows: the objects in the cluster and the
// tenant settings the Tenant reconciler last read (status.observed).
// +kubebuilder:validation:Enum=EmailProviderConfigured;SandboxVersionAtLeast;CustomDatabaseSandboxAtLeast;FlagValue
type ReadinessCheckType string

const (
	// ReadinessEmailProviderConfigured: the tenant has an EmailProvider that
	// is enabled and Ready, so mail does not depend on the built-in provider.
	ReadinessEmailProviderConfigured ReadinessCheckType = "EmailProviderConfigured"
	// ReadinessSandboxVersionAtLeast: the tenant's sandbox_version (the
	// Node.js runtime of its rules, hooks and database scripts) is at least
	// version.
	ReadinessSandboxVersionAtLeast ReadinessCheckType = "SandboxVersionAtLeast"
	// ReadinessCustomDatabaseSandboxAtLeast: a tenant with a
	// CustomDatabaseConnection runs its scripts on a sandbox_version of at
	// least version; a tenant without one passes.
	ReadinessCustomDatabaseSandboxAtLeast ReadinessCheckType = "CustomDatabaseSandboxAtLeast"
	// ReadinessFlagValue: the tenant flag named by flag has value on the
	// tenant (a flag the tenant does not report fails).
	ReadinessFlagValue ReadinessCheckType = "FlagValue"
)

// PlatformMigrationSpec describes one breaking change the platform ships, as
// published by the platform: its dates, the change it makes, and which of
// your tenants it concerns.
// +kubebuilder:validation:XValidation:rule="!has(self.mandatoryOptIn) || timestamp(self.mandatoryOptIn) > timestamp(self.gracePeriodStart)",message="mandatoryOptIn must be after gracePeriodStart"
// +kubebuilder:validation:XValidation:rule="has(self.change) || (has(self.readinessChecks) && size(self.readinessChecks) > 0)",message="a migration needs a change (change.flags) or at least one readiness check"
type PlatformMigrationSpec struct {
	// Severity of the change, as the platform publishes it.
	Severity Severity `json:"severity"`

	// Description says what changes and why, for the people who must act.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Description string `json:"description,omitempty"`

	// GracePeriodStart is when tenants may start to opt in. Tenants created
	// after it are enrolled automatically.
	GracePeriodStart metav1.Time `json:"gracePeriodStart"`

	// MandatoryOptIn is the date after which the change is enabled on every
	// selected tenant, whatever the tenant says. Leave it unset while the
	// platform says "TBD": the migration then stays in its grace period.
	// +optional
	MandatoryOptIn *metav1.Time `json:"mandatoryOptIn,omitempty"`

	// Change is what enabling the migration does to a tenant. Leave it out
	// for a change the platform makes by itself (such as the email
	// migrations): a tenant then counts as Enabled once its readiness
	// checks pass.
	// +optional
	Change *MigrationChange `json:"change,omitempty"`

	// ReadinessChecks must pass on a tenant before the change is safe for
	// it; a tenant that fails one is reported NotReady before the deadline.
	// At the deadline the change is enforced regardless.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	ReadinessChecks []ReadinessCheck `json:"readinessChecks,omitempty"`

	// TenantSelector selects the Tenants, by label, that the migration
	// applies to. Unset selects every Tenant.
	// +optional
	TenantSelector *metav1.LabelSelector `json:"tenantSelector,omitempty"`

	// NamespaceSelector restricts the migration to Tenants in namespaces
	// with these labels. Unset selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ReminderInterval is how often the administrators of a tenant that has
	// not enabled the change are reminded (an Event, and an email when the
	// operator has an SMTP relay). At least one hour; default one week.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="reminderInterval must be at least 1h, such as 24h or 168h"
	ReminderInterval *metav1.Duration `json:"reminderInterval,omitempty"`
}

// MigrationChange is what enabling a migration does to a tenant.
type MigrationChange struct {
	// Flags are the tenant flags and the values they take once the
	// migration is enabled, such as change_pwd_flow_v1: false.
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule=`self.all(k, k.matches('^[a-z][a-z0-9_]*$'))`,message="change.flags keys must be platform flag names in snake_case, such as change_pwd_flow_v1"
	// +kubebuilder:validation:XValidation:rule="!('disable_impersonation' in self)",message="change.flags.disable_impersonation is read-only on the platform: a migration cannot set it"
	Flags map[string]bool `json:"flags"`
}

// ReadinessCheck is a precondition a tenant must meet before the change.
// +kubebuilder:validation:XValidation:rule="!(self.type in ['SandboxVersionAtLeast', 'CustomDatabaseSandboxAtLeast']) || has(self.version)",message="version is required for the SandboxVersionAtLeast and CustomDatabaseSandboxAtLeast checks, such as version: \"18\""
// +kubebuilder:validation:XValidation:rule="self.type in ['SandboxVersionAtLeast', 'CustomDatabaseSandboxAtLeast'] || !has(self.version)",message="version applies only to the SandboxVersionAtLeast and CustomDatabaseSandboxAtLeast checks: remove it"
// +kubebuilder:validation:XValidation:rule="self.type != 'FlagValue' || (has(self.flag) && has(self.value))",message="flag and value are required for the FlagValue check, such as flag: enable_legacy_profile, value: false"
// +kubebuilder:validation:XValidation:rule="self.type == 'FlagValue' || (!has(self.flag) && !has(self.value))",message="flag and value apply only to the FlagValue check: remove them"
type ReadinessCheck struct {
	// Type of the check.
	Type ReadinessCheckType `json:"type"`
	// Version is the lowest Node.js major version (or major.minor) the
	// sandbox may run, such as "18", for the SandboxVersionAtLeast and
	// CustomDatabaseSandboxAtLeast checks.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[0-9]+(\\.[0-9]+){0,2}$')`,message="version must be a Node.js version such as 18 or 18.17"
	Version string `json:"version,omitempty"`
	// Flag is the tenant flag the FlagValue check reads, by its platform
	// name.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[a-z][a-z0-9_]*$')`,message="flag must be a platform flag name in snake_case, such as enable_legacy_profile"
	Flag string `json:"flag,omitempty"`
	// Value is the value Flag must have on the tenant for the FlagValue
	// check to pass.
	// +optional
	Value *bool `json:"value,omitempty"`
	// Message tells a tenant's owners what to do when the check fails.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// MigrationPhase is where a migration stands on the calendar.
// +kubebuilder:validation:Enum=Scheduled;GracePeriod;Enforced;Completed
type MigrationPhase string

const (
	// PhaseScheduled: the grace period has not started.
	PhaseScheduled MigrationPhase = "Scheduled"
	// PhaseGracePeriod: tenants may opt in; new tenants are enrolled.
	PhaseGracePeriod MigrationPhase = "GracePeriod"
	// PhaseEnforced: the mandatory date passed; the change is being applied
	// to every selected tenant (for a migration without a change, an end of
	// life: some selected tenants are still affected).
	PhaseEnforced MigrationPhase = "Enforced"
	// PhaseCompleted: the mandatory date passed and every selected tenant
	// has the change.
	PhaseCompleted MigrationPhase = "Completed"
)

// MigrationTenantCounts counts the selected tenants by state.
type MigrationTenantCounts struct {
	// Selected is how many Tenants the migration applies to.
	Selected int32 `json:"selected"`
	// Enabled have the change.
	Enabled int32 `json:"enabled"`
	// OptedIn enabled it early, by naming the migration in optInMigrations.
	OptedIn int32 `json:"optedIn"`
	// AutoEnrolled were created after the grace period started.
	AutoEnrolled int32 `json:"autoEnrolled"`
	// Pending have not opted in yet.
	Pending int32 `json:"pending"`
	// NotReady fail a readiness check.
	NotReady int32 `json:"notReady"`
	// Affected still fail a readiness check of a migration that changes no
	// flag (an end of life) after its mandatory date.
	// +optional
	Affected int32 `json:"affected"`
	// Failed could not be changed.
	Failed int32 `json:"failed"`
	// NotManaged are under managementPolicy Observe: the operator writes
	// nothing to them, so it neither makes the change there nor counts them
	// as enabled (and the migration is never Completed while one is
	// selected).
	// +optional
	NotManaged int32 `json:"notManaged"`
}

// DateImpact is what a migration's mandatory date does to one tenant.
// +kubebuilder:validation:Enum=Change;PlannedOnly;NotManaged
type DateImpact string

const (
	// DateImpactChange: the operator writes the change to the tenant at the
	// mandatory date (it has neither opted in, nor been enrolled, nor the
	// flags already set or declared). After the date: the operator enforced
	// it there.
	DateImpactChange DateImpact = "Change"
	// DateImpactPlannedOnly: the tenant would change, but its Tenant is
	// under managementPolicy Plan: the change is shown on the Tenant as
	// pending, and not written at the date (nor after) until it is switched
	// to Apply.
	DateImpactPlannedOnly DateImpact = "PlannedOnly"
	// DateImpactNotManaged: the Tenant is under managementPolicy Observe:
	// nothing is written to it at the date, and whether the platform's own
	// enforcement reaches it is not the operator's to tell.
	DateImpactNotManaged DateImpact = "NotManaged"
)

// TenantAtDate is one tenant of the mandatory date's plan.
type TenantAtDate struct {
	// Namespace of the Tenant.
	Namespace string `json:"namespace"`
	// Name of the Tenant.
	Name string `json:"name"`
	// Impact of the date on it.
	Impact DateImpact `json:"impact"`
}

// MigrationAtDate is the plan of the mandatory date: how many, and which,
// selected tenants the operator will change when the date comes, so that a
// team sees the blast radius before the date. Once the date has passed it
// says what was enforced.
type MigrationAtDate struct {
	// Passed is true once the mandatory date has passed: the counts are then
	// what was enforced, not what will be.
	Passed bool `json:"passed"`
	// Changes is how many selected tenants the operator writes the change
	// to at the date: those that have not opted in, were not enrolled and
	// do not already carry the flags, whose Tenant is under Apply. After
	// the date: how many it enforced the change on (a Tenant that declares
	// the flags in spec.flags is not counted).
	Changes int32 `json:"changes"`
	// PlannedOnly is how many selected tenants the change would reach but
	// whose Tenant is under managementPolicy Plan: not written at the date.
	PlannedOnly int32 `json:"plannedOnly"`
	// NotManaged is how many selected tenants are under managementPolicy
	// Observe: nothing is written to them at the date.
	NotManaged int32 `json:"notManaged"`
	// Tenants lists the first 50 of those tenants, sorted by namespace and
	// name, with the date's impact on each; the counts stay exact.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Tenants []TenantAtDate `json:"tenants,omitempty"`
	// Summary says it in a sentence, for kubectl describe.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// MaxTenantsAtDate bounds status.atDate.tenants; the counts stay exact.
const MaxTenantsAtDate = 50

// TenantAttention is a tenant that still has to act, and why.
type TenantAttention struct {
	// Namespace of the Tenant.
	Namespace string `json:"namespace"`
	// Name of the Tenant.
	Name string `json:"name"`
	// State of the migration on it.
	State MigrationState `json:"state"`
	// Reason, a CamelCase word, such as NotOptedIn or NoEmailProvider.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says what to do.
	// +optional
	Message string `json:"message,omitempty"`
}

// MaxTenantsNeedingAttention bounds status.tenantsNeedingAttention so that
// status stays small with thousands of tenants; the counts stay exact.
const MaxTenantsNeedingAttention = 50

// PlatformMigrationStatus is what the operator decided and observed.
type PlatformMigrationStatus struct {
	// Conditions: Ready summarizes; Reconciling and Stalled follow kstatus;
	// DeadlinePassed is True once the mandatory date has passed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase of the migration.
	// +optional
	Phase MigrationPhase `json:"phase,omitempty"`
	// Deadline is the mandatory opt-in date in force, unset while TBD.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// EnforcedTime is when the operator started enforcing the change.
	// +optional
	EnforcedTime *metav1.Time `json:"enforcedTime,omitempty"`
	// Tenants counts the selected tenants by state.
	// +optional
	Tenants *MigrationTenantCounts `json:"tenants,omitempty"`
	// Progress is "enabled/selected", for a glance.
	// +optional
	Progress string `json:"progress,omitempty"`
	// AtDate is the plan of the mandatory date for a migration that
	// changes flags: which selected tenants the operator will change when
	// the date comes (with the date TBD: when it is set and comes), which
	// are only planned (managementPolicy Plan) and which are not managed
	// (Observe). After the date it says what was enforced.
	// +optional
	AtDate *MigrationAtDate `json:"atDate,omitempty"`
	// TenantsNeedingAttention lists, up to 50, the tenants that are still
	// pending, not ready, affected, failed or not managed, and why.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	TenantsNeedingAttention []TenantAttention `json:"tenantsNeedingAttention,omitempty"`
	// LastReminderTime is when the last round of reminders went out, so
	// that a restart does not send the next one early.
	// +optional
	LastReminderTime *metav1.Time `json:"lastReminderTime,omitempty"`
}

// PlatformMigration is a breaking change the identity platform ships, with a
// grace period and a mandatory opt-in date. The operator reports which
// tenants have it and which still have to act, and enforces it on every
// selected tenant when the date passes. A migration without a change (an
// end of life the platform makes by itself) is only reported: past its date,
// the tenants that still fail its readiness checks are Affected.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pmig,categories=identity
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.spec.severity`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Grace Start",type=string,format=date-time,JSONPath=`.spec.gracePeriodStart`
// +kubebuilder:printcolumn:name="Mandatory",type=string,format=date-time,JSONPath=`.spec.mandatoryOptIn`
// +kubebuilder:printcolumn:name="Enabled",type=string,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="At Date",type=integer,JSONPath=`.status.atDate.changes`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.tenants.pending`,priority=1
// +kubebuilder:printcolumn:name="Not Ready",type=integer,JSONPath=`.status.tenants.notReady`,priority=1
// +kubebuilder:printcolumn:name="Affected",type=integer,JSONPath=`.status.tenants.affected`,priority=1
// +kubebuilder:printcolumn:name="Planned Only",type=integer,JSONPath=`.status.atDate.plannedOnly`,priority=1
// +kubebuilder:printcolumn:name="Not Managed",type=integer,JSONPath=`.status.tenants.notManaged`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PlatformMigration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the migration as the platform published it.
	Spec PlatformMigrationSpec `json:"spec"`
	// Status is what the operator decided and observed.
	// +optional
	Status PlatformMigrationStatus `json:"status,omitempty"`
}

// PlatformMigrationList is a list of PlatformMigrations.
// +kubebuilder:object:root=true
type PlatformMigrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the PlatformMigrations.
	Items []PlatformMigration `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PlatformMigration{}, &PlatformMigrationList{})
}
