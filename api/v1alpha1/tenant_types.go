package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TenantSpec declares an identity tenant and the part of its configuration
// the operator keeps in place. What the spec does not mention is left alone.
// +kubebuilder:validation:XValidation:rule="!has(self.settings) || !has(self.settings.idleSessionLifetimeHours) || !has(self.settings.sessionLifetimeHours) || self.settings.idleSessionLifetimeHours <= self.settings.sessionLifetimeHours",message="settings.idleSessionLifetimeHours must not exceed settings.sessionLifetimeHours"
type TenantSpec struct {
	// Domain is the tenant's hostname, such as acme.eu.auth0.com. The
	// Management API is reached at https://DOMAIN/api/v2/. It cannot change
	// after creation: manage another tenant with another Tenant object.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$')`,message="domain must be a lowercase hostname such as acme.eu.auth0.com, without scheme, port or path"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="domain is immutable: create a new Tenant to manage another domain"
	Domain string `json:"domain"`

	// DialAddress, when set, is the host:port the operator connects to
	// instead of resolving the domain, while it keeps the domain for the Host
	// header, SNI and certificate checks (like curl's --resolve). Use it for
	// private routing or to reach the identity API emulator.
	// +optional
	// +kubebuilder:validation:MaxLength=261
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):[0-9]{1,5}$') && int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535`,message="dialAddress must be host:port with a port from 1 to 65535, such as 10.0.0.7:443 or [::1]:8443"
	DialAddress string `json:"dialAddress,omitempty"`

	// CABundleRef selects a ConfigMap key holding PEM certificates to trust
	// for the tenant's certificate, in addition to the system roots.
	// +optional
	CABundleRef *KeySelector `json:"caBundleRef,omitempty"`

	// CredentialsSecretRef names the Secret, in the same namespace, with the
	// keys client_id and client_secret of a machine-to-machine application
	// authorized for the Management API.
	CredentialsSecretRef LocalObjectReference `json:"credentialsSecretRef"`

	// Settings are the tenant settings the operator manages. Only the fields
	// given here are written; the others keep whatever value they have.
	// +optional
	Settings *TenantSettings `json:"settings,omitempty"`

	// Flags are tenant flags the operator manages, by their platform name
	// (for example enable_sso: true). Flags of the migrations enabled for
	// this tenant are merged in and win over these once a migration is
	// enforced.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule=`self.all(k, k.matches('^[a-z][a-z0-9_]*$'))`,message="flags keys must be platform flag names in snake_case, such as enable_sso"
	// +kubebuilder:validation:XValidation:rule="!('disable_impersonation' in self)",message="flags.disable_impersonation is read-only on the platform: remove it from flags"
	Flags map[string]bool `json:"flags,omitempty"`

	// ResetEmail manages the tenant's reset_email template, the email that
	// carries password reset links.
	// +optional
	ResetEmail *ResetEmailTemplate `json:"resetEmail,omitempty"`

	// AdministratorEmails receive the reminders of migrations this tenant
	// has not enabled yet.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=254
	// +kubebuilder:validation:XValidation:rule=`self.all(e, e.matches('^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'))`,message="administratorEmails must be email addresses such as admin@example.com"
	AdministratorEmails []string `json:"administratorEmails,omitempty"`

	// CreatedAt is when the tenant was created on the platform. A tenant
	// created after a migration's grace period started is enrolled in it
	// automatically, so set this for a tenant older than its Tenant object.
	// Unset, the Tenant object's creation time is used.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`

	// OptInMigrations names the PlatformMigrations this tenant opts into
	// early, during their grace period.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self.all(m, m.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))`,message="optInMigrations must name PlatformMigrations (lowercase DNS names such as vulnerable-password-flow)"
	OptInMigrations []string `json:"optInMigrations,omitempty"`

	// DeletionPolicy says what deleting this object does to the tenant.
	// Orphan (the default) leaves every setting as it is; Delete removes the
	// flags and settings this object manages (so the platform's defaults
	// apply) and disables its reset_email template. The tenant itself is
	// never deleted.
	// +optional
	// +kubebuilder:default=Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// ManagementPolicy says what the operator may do to the remote tenant:
	// Apply (the default) writes the declared state; Plan reads it and
	// reports in status what Apply would send, writing nothing; Observe reads
	// it and reports the drift, never writing or deleting it.
	// Under Plan and Observe, Ready is True (reason Planned or Observed)
	// once the remote object was read: status.plan lists what Apply would
	// send, and the Planned (Plan) or Drifted (Observe) condition says
	// whether anything would change. Switching to Apply sends the planned
	// change.
	// Neither sends the flags of a PlatformMigration, not even at its
	// mandatory date: under Plan they are listed with the date (due).
	// +optional
	// +kubebuilder:default=Apply
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// TenantSettings are the tenant settings the operator can manage. Field
// names follow Kubernetes conventions; each maps to the platform setting
// named in its documentation.
type TenantSettings struct {
	// FriendlyName is the tenant's display name (friendly_name).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	FriendlyName *string `json:"friendlyName,omitempty"`
	// SupportEmail is shown to end users who need help (support_email).
	// +optional
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$')`,message="settings.supportEmail must be an email address such as support@example.com"
	SupportEmail *string `json:"supportEmail,omitempty"`
	// SupportURL is shown to end users who need help (support_url).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https'",message="settings.supportURL must be an https:// URL"
	SupportURL *string `json:"supportURL,omitempty"`
	// PictureURL is the tenant's logo (picture_url).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https'",message="settings.pictureURL must be an https:// URL"
	PictureURL *string `json:"pictureURL,omitempty"`
	// DefaultDirectory is the connection used by the password grant
	// (default_directory).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DefaultDirectory *string `json:"defaultDirectory,omitempty"`
	// DefaultAudience is the API audience of tokens requested without one
	// (default_audience).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	DefaultAudience *string `json:"defaultAudience,omitempty"`
	// SessionLifetimeHours is how long a login session lasts
	// (session_lifetime), from 1 hour to 1 year.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=8760
	SessionLifetimeHours *int32 `json:"sessionLifetimeHours,omitempty"`
	// IdleSessionLifetimeHours ends a session after this much inactivity
	// (idle_session_lifetime); at most SessionLifetimeHours.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=8760
	IdleSessionLifetimeHours *int32 `json:"idleSessionLifetimeHours,omitempty"`
	// EnabledLocales are the languages of the hosted pages, the first being
	// the default (enabled_locales).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=35
	// +kubebuilder:validation:XValidation:rule=`self.all(l, l.matches('^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'))`,message="settings.enabledLocales must be language tags such as en or pt-BR"
	EnabledLocales []string `json:"enabledLocales,omitempty"`
	// SandboxVersion is the Node.js version custom scripts run on
	// (sandbox_version), such as "18".
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	SandboxVersion *string `json:"sandboxVersion,omitempty"`
	// ChangePassword customizes the hosted change-password page (change_password).
	// +optional
	ChangePassword *HostedPage `json:"changePassword,omitempty"`
	// ErrorPage customizes the hosted error page (error_page).
	// +optional
	ErrorPage *ErrorPage `json:"errorPage,omitempty"`
	// SessionCookieMode keeps the session cookie across browser restarts
	// (persistent, the platform's default) or drops it when the browser
	// closes (non-persistent) (session_cookie.mode).
	// +optional
	// +kubebuilder:validation:Enum=persistent;non-persistent
	SessionCookieMode *string `json:"sessionCookieMode,omitempty"`
	// AllowedLogoutURLs are the URLs users may be redirected to after they
	// log out, for logouts that name no application (allowed_logout_urls).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(u, isURL(u))",message="settings.allowedLogoutURLs must be absolute URLs such as https://app.example.com/logged-out"
	AllowedLogoutURLs []string `json:"allowedLogoutURLs,omitempty"`
	// DefaultRedirectionURI is where a login that starts without an
	// application (an invitation, a password reset) lands
	// (default_redirection_uri).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https'",message="settings.defaultRedirectionURI must be an https:// URL"
	DefaultRedirectionURI *string `json:"defaultRedirectionURI,omitempty"`
}

// HostedPage is a hosted page the tenant may customize.
type HostedPage struct {
	// Enabled turns the customization on.
	Enabled bool `json:"enabled"`
	// HTML is the page's template.
	// +optional
	// +kubebuilder:validation:MaxLength=102400
	HTML string `json:"html,omitempty"`
}

// ErrorPage customizes the page shown when a login fails irrecoverably.
// +kubebuilder:validation:XValidation:rule="!has(self.url) || !has(self.html)",message="settings.errorPage takes either url (redirect) or html (hosted page), not both"
type ErrorPage struct {
	// HTML is the hosted error page's template.
	// +optional
	// +kubebuilder:validation:MaxLength=102400
	HTML string `json:"html,omitempty"`
	// ShowLogLink shows a link to the log entry on the error page.
	// +optional
	ShowLogLink bool `json:"showLogLink,omitempty"`
	// URL redirects users to an error page of your own.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https'",message="settings.errorPage.url must be an https:// URL"
	URL string `json:"url,omitempty"`
}

// ResetEmailTemplate is the reset_email template: the email carrying a
// single-use, time-limited password reset link.
type ResetEmailTemplate struct {
	// Enabled sends this template (true) or the platform's default (false).
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
	// From is the sender, such as "Acme <no-reply@acme.example>". It needs a
	// configured EmailProvider: the built-in provider sends from a fixed address.
	// +optional
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:XValidation:rule=`self.matches('^([^<>]*<[^@\\s<>]+@[^@\\s<>]+\\.[^@\\s<>]+>|[^@\\s<>]+@[^@\\s<>]+\\.[^@\\s<>]+)$')`,message="resetEmail.from must be an address such as no-reply@acme.example or \"Acme <no-reply@acme.example>\""
	From string `json:"from,omitempty"`
	// Subject of the email (Liquid syntax).
	// +optional
	// +kubebuilder:validation:MaxLength=998
	Subject string `json:"subject,omitempty"`
	// Body of the email (Liquid syntax, HTML). Needs a configured EmailProvider.
	// +optional
	// +kubebuilder:validation:MaxLength=102400
	Body string `json:"body,omitempty"`
	// ResultURL is where users land after they set a new password.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http']",message="resetEmail.resultURL must be an http(s):// URL"
	ResultURL string `json:"resultURL,omitempty"`
	// URLLifetimeSeconds is how long a reset link stays valid, from 60
	// seconds to 30 days (urlLifetimeInSeconds).
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=2592000
	URLLifetimeSeconds *int32 `json:"urlLifetimeSeconds,omitempty"`
	// IncludeEmailInRedirect appends the user's email to the result URL.
	// +optional
	IncludeEmailInRedirect *bool `json:"includeEmailInRedirect,omitempty"`
}

// MigrationState is where a tenant stands with one PlatformMigration.
// +kubebuilder:validation:Enum=Enabled;Pending;NotReady;Affected;Failed;NotManaged
type MigrationState string

const (
	// MigrationEnabled: the change is on for this tenant.
	MigrationEnabled MigrationState = "Enabled"
	// MigrationPending: the tenant has not opted in and the deadline has not passed.
	MigrationPending MigrationState = "Pending"
	// MigrationNotReady: a readiness check of the migration fails for this tenant.
	MigrationNotReady MigrationState = "NotReady"
	// MigrationAffected: the migration changes no flag (an end of life the
	// platform makes by itself), its mandatory date has passed, and the
	// tenant still fails one of its readiness checks.
	MigrationAffected MigrationState = "Affected"
	// MigrationFailed: the change could not be applied.
	MigrationFailed MigrationState = "Failed"
	// MigrationNotManaged: the Tenant is under managementPolicy Observe: the
	// operator writes nothing to it, so it neither makes the change nor
	// knows whether the tenant has it. A PlatformMigration counts it apart,
	// never as enabled.
	MigrationNotManaged MigrationState = "NotManaged"
)

// TenantMigrationStatus is one migration as this tenant sees it.
type TenantMigrationStatus struct {
	// Name of the PlatformMigration.
	Name string `json:"name"`
	// State of the migration on this tenant.
	State MigrationState `json:"state"`
	// Reason is a CamelCase word for why it is in this state, such as
	// OptedIn, AutoEnrolled, Enforced or NoEmailProvider.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says, for a person, what it means and what to do.
	// +optional
	Message string `json:"message,omitempty"`
	// EnabledTime is when the change was applied to the tenant.
	// +optional
	EnabledTime *metav1.Time `json:"enabledTime,omitempty"`
}

// TenantStatus is what the operator last observed and did.
type TenantStatus struct {
	// Conditions: Ready summarizes; Reconciling, Stalled and Paused follow
	// kstatus; CredentialsValid and SettingsSynced tell which step failed.
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
	// LastSyncTime is when the tenant was last read (or written) and found
	// in the declared state. A pass that changes nothing refreshes it only
	// once half a resync interval has passed since, so it is at most that
	// stale and a burst of passes (a warm-up before a deadline, watch events)
	// writes no status.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// AppliedHash fingerprints the settings and flags last applied (the
	// Tenant's own merged with its migrations'). A difference found while it
	// still matches is drift made outside the operator; a difference after
	// it changed is simply the new desired state.
	// +optional
	AppliedHash string `json:"appliedHash,omitempty"`
	// RefusedHash fingerprints the settings and flags the platform last
	// refused (a flag it does not allow). While the declared state is the
	// same, the operator does not send it again until the stalled-retry
	// interval has passed since RefusedTime: a refusal is for a person to
	// fix, not for a retry loop.
	// +optional
	RefusedHash string `json:"refusedHash,omitempty"`
	// RefusedTime is when the platform last refused RefusedHash.
	// +optional
	RefusedTime *metav1.Time `json:"refusedTime,omitempty"`
	// Settings are the managed settings with the values observed on the
	// tenant at the last sync (only those the spec declares).
	// +optional
	Settings *ObservedTenantSettings `json:"settings,omitempty"`
	// Flags are the managed flags with the values observed on the tenant
	// (its own and those of enabled migrations).
	// +optional
	Flags map[string]bool `json:"flags,omitempty"`
	// Observed is what the readiness checks of the migrations selecting
	// this tenant read, as found at the last read of its settings.
	// +optional
	Observed *ObservedTenantState `json:"observed,omitempty"`
	// RetiredFlags are flags of enabled migrations that the platform no
	// longer accepts. They are not sent again while a selecting migration
	// names them; the other settings are applied without them.
	// +optional
	// +listType=map
	// +listMapKey=flag
	// +kubebuilder:validation:MaxItems=64
	RetiredFlags []RetiredFlag `json:"retiredFlags,omitempty"`
	// Migrations lists every PlatformMigration that selects this tenant.
	// +optional
	// +listType=map
	// +listMapKey=name
	Migrations []TenantMigrationStatus `json:"migrations,omitempty"`
	// MigrationsPending counts the migrations not yet enabled on this tenant.
	// +optional
	MigrationsPending int32 `json:"migrationsPending"`
	// RateLimit is the Management API budget last seen for this tenant.
	// +optional
	RateLimit *RateLimitStatus `json:"rateLimit,omitempty"`
	// ResetEmail is the reset_email template as last applied.
	// +optional
	ResetEmail *TemplateSyncStatus `json:"resetEmail,omitempty"`
	// Plan is, under managementPolicy Plan, what Apply would send, field by
	// field, and under Observe the drift from the spec (never corrected).
	// Absent under Apply.
	// +optional
	Plan *ManagementPlan `json:"plan,omitempty"`
}

// ObservedTenantState is the part of a tenant's settings that readiness
// checks read, recorded at each read of the settings (GET, or the answer of
// a PATCH): no call is made for it.
type ObservedTenantState struct {
	// SandboxVersion is the tenant's sandbox_version, the Node.js major
	// version its rules, hooks and custom database scripts run on. Empty
	// when the platform did not report one.
	// +optional
	SandboxVersion string `json:"sandboxVersion,omitempty"`
	// Flags are the flags that the FlagValue readiness checks of the
	// selecting migrations name, with the values the tenant reports. A flag
	// missing here was not looked for yet; one without a value is one the
	// tenant does not report.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Flags []ObservedFlag `json:"flags,omitempty"`
}

// ObservedFlag is a tenant flag as the tenant reports it.
type ObservedFlag struct {
	// Name is the flag's platform name.
	Name string `json:"name"`
	// Value is the flag's value; unset when the tenant does not report the
	// flag (a GET may leave a flag out).
	// +optional
	Value *bool `json:"value,omitempty"`
}

// RetiredFlag is a flag the platform refused because it no longer has it.
type RetiredFlag struct {
	// Flag is the flag's platform name.
	Flag string `json:"flag"`
	// Migrations are the PlatformMigrations whose change sets the flag.
	// +optional
	// +listType=atomic
	Migrations []string `json:"migrations,omitempty"`
	// Message is the platform's refusal.
	// +optional
	Message string `json:"message,omitempty"`
	// RefusedTime is when the platform refused it.
	RefusedTime metav1.Time `json:"refusedTime"`
}

// ObservedTenantSettings are the managed settings as the tenant holds them.
// They mirror TenantSettings without its validation: what the platform
// reports is recorded as it is, and a status write does not pay for the
// spec's CEL rules.
type ObservedTenantSettings struct {
	// FriendlyName (friendly_name).
	// +optional
	FriendlyName *string `json:"friendlyName,omitempty"`
	// SupportEmail (support_email).
	// +optional
	SupportEmail *string `json:"supportEmail,omitempty"`
	// SupportURL (support_url).
	// +optional
	SupportURL *string `json:"supportURL,omitempty"`
	// PictureURL (picture_url).
	// +optional
	PictureURL *string `json:"pictureURL,omitempty"`
	// DefaultDirectory (default_directory).
	// +optional
	DefaultDirectory *string `json:"defaultDirectory,omitempty"`
	// DefaultAudience (default_audience).
	// +optional
	DefaultAudience *string `json:"defaultAudience,omitempty"`
	// SessionLifetimeHours (session_lifetime).
	// +optional
	SessionLifetimeHours *int32 `json:"sessionLifetimeHours,omitempty"`
	// IdleSessionLifetimeHours (idle_session_lifetime).
	// +optional
	IdleSessionLifetimeHours *int32 `json:"idleSessionLifetimeHours,omitempty"`
	// EnabledLocales (enabled_locales).
	// +optional
	// +listType=atomic
	EnabledLocales []string `json:"enabledLocales,omitempty"`
	// SandboxVersion (sandbox_version).
	// +optional
	SandboxVersion *string `json:"sandboxVersion,omitempty"`
	// ChangePassword (change_password).
	// +optional
	ChangePassword *ObservedHostedPage `json:"changePassword,omitempty"`
	// ErrorPage (error_page).
	// +optional
	ErrorPage *ObservedErrorPage `json:"errorPage,omitempty"`
	// SessionCookieMode (session_cookie.mode).
	// +optional
	SessionCookieMode *string `json:"sessionCookieMode,omitempty"`
	// AllowedLogoutURLs (allowed_logout_urls).
	// +optional
	// +listType=atomic
	AllowedLogoutURLs []string `json:"allowedLogoutURLs,omitempty"`
	// DefaultRedirectionURI (default_redirection_uri).
	// +optional
	DefaultRedirectionURI *string `json:"defaultRedirectionURI,omitempty"`
}

// ObservedHostedPage is a hosted page's customization as the tenant holds it.
type ObservedHostedPage struct {
	// Enabled says whether the customization is on.
	Enabled bool `json:"enabled"`
	// HTML is the page's template.
	// +optional
	HTML string `json:"html,omitempty"`
}

// ObservedErrorPage is the error page's customization as the tenant holds it.
type ObservedErrorPage struct {
	// HTML is the hosted error page's template.
	// +optional
	HTML string `json:"html,omitempty"`
	// ShowLogLink shows a link to the log entry on the error page.
	// +optional
	ShowLogLink bool `json:"showLogLink,omitempty"`
	// URL is the error page of the tenant's own it redirects to.
	// +optional
	URL string `json:"url,omitempty"`
}

// TemplateSyncStatus records what was last applied to an email template.
type TemplateSyncStatus struct {
	// AppliedHash fingerprints the spec last applied, so a change is seen
	// without reading the template.
	// +optional
	AppliedHash string `json:"appliedHash,omitempty"`
	// LastSyncTime is when the template was last read and brought in line.
	// It is re-read at most hourly when the spec does not change.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
}

// Tenant is an identity tenant (Auth0 or wire-compatible) whose settings,
// flags and reset email the operator keeps as declared, and on which
// PlatformMigrations are enabled.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tnt,categories=identity
// +kubebuilder:printcolumn:name="Domain",type=string,JSONPath=`.spec.domain`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.managementPolicy`
// +kubebuilder:printcolumn:name="Migrations Pending",type=integer,JSONPath=`.status.migrationsPending`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Planned",type=integer,JSONPath=`.status.plan.pending`,priority=1
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`,priority=1
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.status.shard`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Tenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the tenant.
	Spec TenantSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status TenantStatus `json:"status,omitempty"`
}

// TenantList is a list of Tenants.
// +kubebuilder:object:root=true
type TenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Tenants.
	Items []Tenant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Tenant{}, &TenantList{})
}
