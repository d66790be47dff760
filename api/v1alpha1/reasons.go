package v1alpha1

// Condition and event reasons, declared once per kind here so that the
// controllers, the tests and anyone reading status (kubectl wait, alerts)
// share one spelling. The summary conditions (Ready, Reconciling, Stalled)
// carry them.

// Reasons of every kind that calls a tenant through a Tenant's credentials.
const (
	ReasonCredentialsSecretNotFound = "CredentialsSecretNotFound"
	ReasonCredentialsSecretInvalid  = "CredentialsSecretInvalid"
	ReasonCredentialsRejected       = "CredentialsRejected"
	// ReasonInsufficientScope: the credentials' token lacks a scope the
	// declared spec needs (condition CredentialsValid, and Stalled); nothing
	// is sent until the grant is fixed.
	ReasonInsufficientScope = "InsufficientScope"
	// ReasonScopesGranted: the token is granted every scope the declared
	// spec needs (condition CredentialsValid).
	ReasonScopesGranted = "ScopesGranted"
	// ReasonScopesNotReported: the platform named no scopes with the token,
	// so they could not be checked before the calls (condition
	// CredentialsValid, True: the calls themselves tell).
	ReasonScopesNotReported = "ScopesNotReported"
	ReasonCABundleNotFound  = "CABundleNotFound"
	ReasonCABundleInvalid   = "CABundleInvalid"
	// ReasonTenantUnreachable: the platform could not be reached, or kept
	// failing (network errors, 5xx) after the client's retries.
	ReasonTenantUnreachable = "TenantUnreachable"
	// ReasonTenantUnavailable: the tenant is taken for down (its breaker is
	// open); the object waits for the next probe.
	ReasonTenantUnavailable = "TenantUnavailable"
	ReasonRateLimited       = "RateLimited"
	ReasonPlatformRefused   = "PlatformRefused"
	ReasonFlagRefused       = "FlagRefused"
	ReasonTenantNotFound    = "TenantNotFound"
	// ReasonRemoteNotFound: the platform answered 404 where the object was
	// expected to exist (it was deleted meanwhile); retried.
	ReasonRemoteNotFound = "RemoteObjectNotFound"
	// ReasonRemoteConflict: the platform answered 409 (someone else made or
	// changed the object meanwhile); retried.
	ReasonRemoteConflict = "RemoteObjectConflict"
	// EventReasonAdopted: an existing remote object was found by its name and
	// taken over (status.ownership Adopted).
	EventReasonAdopted = "Adopted"
	// EventReasonRemoteObjectLeft: the object was deleted and the remote
	// object left in place; the event says which and why.
	EventReasonRemoteObjectLeft = "RemoteObjectLeft"
)

// Reasons of managementPolicy Plan and Observe, on every kind that writes
// remotely (see ConditionPlanned and ConditionDrifted).
const (
	// ReasonPlanned is Ready's reason under Plan once the remote object was
	// read and the plan computed.
	ReasonPlanned = "Planned"
	// ReasonObserved is Ready's reason under Observe once the remote object
	// was read and compared with the spec.
	ReasonObserved = "Observed"
	// ReasonChangesPending: Apply would send the changes in status.plan.
	ReasonChangesPending = "ChangesPending"
	// ReasonNoChanges: Apply would send nothing now.
	ReasonNoChanges = "NoChanges"
	// ReasonDriftDetected: the remote object differs from the spec, and
	// Observe leaves it so.
	ReasonDriftDetected = "DriftDetected"
	// ReasonInSync: the remote object is as the spec declares.
	ReasonInSync = "InSync"
	// ReasonRemoteMissing: under Observe, the remote object does not exist
	// (Observe never creates it).
	ReasonRemoteMissing = "RemoteObjectMissing"
	// ReasonNotApplied is a Tenant migration's reason when its change is
	// due but not on the tenant, because managementPolicy Plan or Observe
	// does not send it.
	ReasonNotApplied = "NotAppliedByPolicy"
)

// Tenant reasons.
const (
	ReasonSynced          = "Synced"
	ReasonDependentsExist = "DependentsExist"
	ReasonTemplateRefused = "TemplateRefused"
	ReasonFlagOverridden  = "FlagOverriddenByMigration"
	// ReasonFlagRetired is the reason of a migration (in the Tenant's
	// status.migrations) whose change names a flag the platform no longer has.
	ReasonFlagRetired     = "FlagRetired"
	EventReasonDrift      = "DriftCorrected"
	EventReasonOverridden = "FlagOverriddenByMigration"
	// EventReasonMigrationEnabled is posted once on a Tenant when a
	// migration's change is on it (opted in, enrolled or enforced).
	EventReasonMigrationEnabled = "MigrationEnabled"
	// EventReasonFlagRetired is posted on a Tenant when a migration's flag
	// is found retired.
	EventReasonFlagRetired = "FlagRetired"
	// ReasonDuplicateTenant: another Tenant, created earlier, already
	// manages the same domain; this one writes nothing.
	ReasonDuplicateTenant = "DuplicateTenant"
)

// PlatformMigration reasons.
const (
	ReasonEvaluated           = "Evaluated"
	ReasonInvalidSelector     = "InvalidSelector"
	ReasonMandatoryDatePassed = "MandatoryDatePassed"
	ReasonMandatoryDateAhead  = "MandatoryDateAhead"
	ReasonMandatoryDateTBD    = "MandatoryDateTBD"
	ReasonApplyPending        = "ApplyPending"
	// ReasonNotManaged: the Tenant is under managementPolicy Observe; the
	// migration neither makes its change there nor counts it as enabled.
	ReasonNotManaged = "NotManaged"
	// ReasonPlannedOnly: the Tenant is under managementPolicy Plan; the
	// change is shown on it as pending and not written.
	ReasonPlannedOnly   = "PlannedOnly"
	EventReasonReminder = "MigrationReminder"
	EventReasonEnforced = "MigrationEnforced"
)

// EmailProvider reasons.
const (
	ReasonDuplicateEmailProvider = "DuplicateEmailProvider"
	ReasonProviderSynced         = "Synced"
	ReasonInvalidSettings        = "InvalidSettings"
)

// CustomDatabaseConnection reasons.
const (
	ReasonScriptInvalid               = "ScriptInvalid"
	ReasonScriptsAccepted             = "ScriptsAccepted"
	ReasonScriptSourceNotFound        = "ScriptSourceNotFound"
	ReasonConfigurationSecretNotFound = "ConfigurationSecretNotFound"
	ReasonLegacyStoreDisconnected     = "LegacyStoreDisconnected"
	// ReasonConnectionClaimed: another CustomDatabaseConnection, created
	// earlier, already manages the same connection name of the same Tenant;
	// this one writes nothing.
	ReasonConnectionClaimed       = "ConnectionClaimed"
	EventReasonMigrationCompleted = "MigrationCompleted"
)

// Action reasons.
const (
	// ReasonActionSynced: the action's current code is deployed and bound.
	ReasonActionSynced = "Synced"
	// ReasonBuildFailed: the platform could not build the action's code
	// (a syntax error, a dependency it cannot resolve); the message quotes
	// it. Nothing is retried until the spec, the code's ConfigMap or the
	// Secret changes.
	ReasonBuildFailed = "BuildFailed"
	// ReasonBuilding: the platform is still building the draft; looked at
	// again shortly.
	ReasonBuilding = "Building"
	// ReasonDeployed: the Deployed condition's reason when the draft runs.
	ReasonDeployed = "Deployed"
	// ReasonBound: the Bound condition's reason when the action is in its
	// trigger's flow.
	ReasonBound                = "Bound"
	ReasonCodeSourceNotFound   = "CodeSourceNotFound"
	ReasonActionSecretNotFound = "SecretsNotFound"
	ReasonActionSecretInvalid  = "SecretsInvalid"
	// ReasonActionClaimed: another Action, created earlier, already manages
	// the action of the same name on the same Tenant; this one writes
	// nothing.
	ReasonActionClaimed = "ActionClaimed"
	// EventReasonDeployed: a new version of the action was deployed.
	EventReasonDeployed = "Deployed"
	// EventReasonBindingsReordered: the trigger's bindings were written to
	// place the action.
	EventReasonBindingsReordered = "BindingPlaced"
)
