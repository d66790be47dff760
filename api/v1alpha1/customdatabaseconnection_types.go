package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CustomDatabaseConnectionSpec declares a database connection whose users
// live in (or come from) a legacy store, reached through action scripts.
// +kubebuilder:validation:XValidation:rule="!has(self.completeMigration) || !self.completeMigration || (has(self.importMode) && self.importMode)",message="completeMigration needs importMode: true (only an import-mode connection migrates users)"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.completeMigration) || !oldSelf.completeMigration || (has(self.completeMigration) && self.completeMigration)",message="completeMigration cannot be switched back to false: the legacy store is no longer called once the migration is completed; create a new connection to migrate again"
// +kubebuilder:validation:XValidation:rule="!has(self.expectedUsers) || (has(self.importMode) && self.importMode)",message="expectedUsers is only meaningful with importMode: true"
type CustomDatabaseConnectionSpec struct {
	// TenantRef names the Tenant, in this namespace, the connection lives on.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tenantRef is immutable: a connection cannot move to another tenant"
	TenantRef TenantReference `json:"tenantRef"`

	// ConnectionName is the connection's name on the platform: letters,
	// digits and '-', starting and ending with a letter or digit, at most
	// 128 characters. A connection with this name is adopted if it exists.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$')`,message="connectionName may contain only letters, digits and '-', and must start and end with a letter or digit, such as legacy-users"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionName is immutable: the platform cannot rename a connection; create a new CustomDatabaseConnection"
	ConnectionName string `json:"connectionName"`

	// DisplayName is shown on the login page.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// Scripts are the action scripts run by the platform. login and getUser
	// are required.
	Scripts DatabaseScripts `json:"scripts"`

	// ConfigurationSecretRef names a Secret whose keys and values become the
	// connection's configuration, the global `configuration` object of the
	// scripts (database URLs, API keys).
	// +optional
	ConfigurationSecretRef *LocalObjectReference `json:"configurationSecretRef,omitempty"`

	// ImportMode migrates users on their first successful login ("lazy
	// migration"): the platform keeps each user it has seen, and calls the
	// legacy store only for users it does not know yet.
	// +optional
	ImportMode bool `json:"importMode,omitempty"`

	// RequiresUsername makes users have a username besides their email.
	// +optional
	RequiresUsername bool `json:"requiresUsername,omitempty"`

	// Validation of user attributes (strategy_version 2): email set, unique
	// and well formed; username unique and within UsernameLength.
	// +optional
	Validation *UserValidation `json:"validation,omitempty"`

	// PasswordPolicy sets the strength new passwords need.
	// +optional
	PasswordPolicy *PasswordPolicy `json:"passwordPolicy,omitempty"`

	// BruteForceProtection blocks an address after repeated failed logins.
	// +optional
	// +kubebuilder:default=true
	BruteForceProtection *bool `json:"bruteForceProtection,omitempty"`

	// DisableSignup stops users from signing up themselves.
	// +optional
	DisableSignup bool `json:"disableSignup,omitempty"`

	// EnabledClients are the client IDs of the applications that may use the
	// connection.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=500
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	EnabledClients []string `json:"enabledClients,omitempty"`

	// ExpectedUsers is how many users the legacy store holds, to show
	// progress as migrated/expected.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ExpectedUsers *int64 `json:"expectedUsers,omitempty"`

	// UserCountInterval is how often migrated users are counted (one API
	// call each time). At least one minute; default ten minutes.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="userCountInterval must be at least 1m, such as 10m"
	UserCountInterval *metav1.Duration `json:"userCountInterval,omitempty"`

	// CompleteMigration ends the lazy migration: login and getUser are
	// replaced with scripts that find nobody, import mode stays on, and the
	// legacy store is no longer called. It cannot be switched back.
	// +optional
	CompleteMigration bool `json:"completeMigration,omitempty"`

	// DeletionPolicy says what deleting this object does to the connection.
	// Orphan (the default) keeps it and its users; Delete removes it.
	// +optional
	// +kubebuilder:default=Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// ManagementPolicy says what the operator may do to the remote connection:
	// Apply (the default) writes the declared state; Plan reads it and
	// reports in status what Apply would send, writing nothing; Observe reads
	// it and reports the drift, never writing or deleting it.
	// Under Plan and Observe, Ready is True (reason Planned or Observed)
	// once the remote object was read: status.plan lists what Apply would
	// send, and the Planned (Plan) or Drifted (Observe) condition says
	// whether anything would change. Switching to Apply sends the planned
	// change.
	// +optional
	// +kubebuilder:default=Apply
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// DatabaseScripts are the action scripts of a custom database connection,
// each inline or from a ConfigMap key.
type DatabaseScripts struct {
	// Login verifies an email and password against the legacy store:
	// function login(email, password, callback).
	Login Script `json:"login"`
	// GetUser finds a user by email, for password resets and lookups:
	// function getByEmail(email, callback).
	GetUser Script `json:"getUser"`
	// Create adds a user to the legacy store (without import mode).
	// +optional
	Create *Script `json:"create,omitempty"`
	// Verify marks a user's email verified in the legacy store.
	// +optional
	Verify *Script `json:"verify,omitempty"`
	// ChangePassword sets a user's password in the legacy store.
	// +optional
	ChangePassword *Script `json:"changePassword,omitempty"`
	// Delete removes a user from the legacy store.
	// +optional
	Delete *Script `json:"delete,omitempty"`
	// ChangeEmail changes a user's email in the legacy store.
	// +optional
	ChangeEmail *Script `json:"changeEmail,omitempty"`
}

// Script is the JavaScript source of one action script: inline, or a key of
// a ConfigMap in the same namespace (so it can be tested as a file).
// +kubebuilder:validation:XValidation:rule="has(self.inline) != has(self.configMapKeyRef)",message="a script takes exactly one of inline or configMapKeyRef"
type Script struct {
	// Inline is the script's source.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=102400
	// +kubebuilder:validation:XValidation:rule=`self.contains('function')`,message="an inline script must define its function, such as function login(email, password, callback) { ... }"
	Inline string `json:"inline,omitempty"`
	// ConfigMapKeyRef selects the ConfigMap key holding the source.
	// +optional
	ConfigMapKeyRef *KeySelector `json:"configMapKeyRef,omitempty"`
}

// UserValidation turns on validation of user attributes.
// +kubebuilder:validation:XValidation:rule="!has(self.usernameLength) || self.usernameLength.min <= self.usernameLength.max",message="validation.usernameLength.min must not exceed validation.usernameLength.max"
type UserValidation struct {
	// Enabled turns validation on (strategy_version 2): emails and
	// usernames are checked and stored lower-case.
	Enabled bool `json:"enabled"`
	// UsernameLength bounds usernames.
	// +optional
	UsernameLength *LengthRange `json:"usernameLength,omitempty"`
}

// LengthRange bounds a length.
type LengthRange struct {
	// Min length, from 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	Min int32 `json:"min"`
	// Max length, up to 128.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	Max int32 `json:"max"`
}

// PasswordStrength is the platform's password policy level.
// +kubebuilder:validation:Enum=none;low;fair;good;excellent
type PasswordStrength string

// PasswordPolicy sets what new passwords need.
type PasswordPolicy struct {
	// Strength is the platform's policy level (passwordPolicy).
	// +optional
	// +kubebuilder:default=good
	Strength PasswordStrength `json:"strength,omitempty"`
	// MinLength of a password, from 1 to 128 (password_complexity_options.min_length).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	MinLength *int32 `json:"minLength,omitempty"`
	// History is how many previous passwords cannot be reused, up to 24
	// (password_history); 0 turns it off.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=24
	History *int32 `json:"history,omitempty"`
	// Dictionary refuses common passwords (password_dictionary).
	// +optional
	Dictionary bool `json:"dictionary,omitempty"`
	// NoPersonalInfo refuses passwords containing the user's name or email
	// (password_no_personal_info).
	// +optional
	NoPersonalInfo bool `json:"noPersonalInfo,omitempty"`
}

// ConnectionPhase is where a connection's user migration stands.
// +kubebuilder:validation:Enum=Pending;Migrating;Completed;Active
type ConnectionPhase string

const (
	// ConnectionPending: the connection does not exist on the tenant yet.
	ConnectionPending ConnectionPhase = "Pending"
	// ConnectionMigrating: import mode is on and users move on login.
	ConnectionMigrating ConnectionPhase = "Migrating"
	// ConnectionCompleted: the migration was completed; the legacy store is
	// no longer called.
	ConnectionCompleted ConnectionPhase = "Completed"
	// ConnectionActive: a custom database without import mode; the legacy
	// store stays the source of truth.
	ConnectionActive ConnectionPhase = "Active"
)

// CustomDatabaseConnectionStatus is what the operator observed and did.
type CustomDatabaseConnectionStatus struct {
	// Conditions: Ready summarizes; Reconciling, Stalled and Paused follow
	// kstatus; ScriptsValid names a script the platform refused.
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
	// ConnectionID is the platform's id of the connection.
	// +optional
	ConnectionID string `json:"connectionID,omitempty"`
	// Ownership is on what grounds the operator holds the connection:
	// Created (it made it), Adopted (found by name and not yet written) or
	// AdoptedWritten (found by name, then written). deletionPolicy Delete
	// deletes only a Created or AdoptedWritten connection.
	// +optional
	Ownership RemoteOwnership `json:"ownership,omitempty"`
	// Phase of the user migration.
	// +optional
	Phase ConnectionPhase `json:"phase,omitempty"`
	// UsersMigrated is how many users the platform holds in the connection.
	// +optional
	UsersMigrated *int64 `json:"usersMigrated,omitempty"`
	// Progress is "migrated/expected" (or the migrated count), for a glance.
	// +optional
	Progress string `json:"progress,omitempty"`
	// LastUserCountTime is when users were last counted.
	// +optional
	LastUserCountTime *metav1.Time `json:"lastUserCountTime,omitempty"`
	// AppliedHash fingerprints the options last sent (scripts, configuration
	// and settings, salted; never the values), to tell when a Secret or
	// ConfigMap changed.
	// +optional
	AppliedHash string `json:"appliedHash,omitempty"`
	// AppliedConfigurationHash fingerprints the configuration values last
	// sent (salted; never the values): a plan says from it whether the
	// configuration Secret changed since, without showing either.
	// +optional
	AppliedConfigurationHash string `json:"appliedConfigurationHash,omitempty"`
	// Plan is, under managementPolicy Plan, what Apply would send, field by
	// field, and under Observe the drift from the spec (never corrected).
	// Absent under Apply.
	// +optional
	Plan *ManagementPlan `json:"plan,omitempty"`
}

// CustomDatabaseConnection is a database connection backed by action scripts,
// typically migrating users lazily from a legacy store.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dbconn,categories=identity
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenantRef.name`
// +kubebuilder:printcolumn:name="Connection",type=string,JSONPath=`.spec.connectionName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Migrated",type=string,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.managementPolicy`
// +kubebuilder:printcolumn:name="Planned",type=integer,JSONPath=`.status.plan.pending`,priority=1
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.status.shard`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CustomDatabaseConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired connection.
	Spec CustomDatabaseConnectionSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status CustomDatabaseConnectionStatus `json:"status,omitempty"`
}

// CustomDatabaseConnectionList is a list of CustomDatabaseConnections.
// +kubebuilder:object:root=true
type CustomDatabaseConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the CustomDatabaseConnections.
	Items []CustomDatabaseConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CustomDatabaseConnection{}, &CustomDatabaseConnectionList{})
}
