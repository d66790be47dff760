package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EmailProviderName names the service a tenant sends its email through.
// +kubebuilder:validation:Enum=mandrill;ses;sendgrid;sparkpost;mailgun;smtp;azure_cs;ms365;custom
type EmailProviderName string

// The providers the platform supports.
const (
	ProviderMandrill  EmailProviderName = "mandrill"
	ProviderSES       EmailProviderName = "ses"
	ProviderSendGrid  EmailProviderName = "sendgrid"
	ProviderSparkPost EmailProviderName = "sparkpost"
	ProviderMailgun   EmailProviderName = "mailgun"
	ProviderSMTP      EmailProviderName = "smtp"
	ProviderAzureCS   EmailProviderName = "azure_cs"
	ProviderMS365     EmailProviderName = "ms365"
	ProviderCustom    EmailProviderName = "custom"
)

// SecretCredentialKeys lists, for each provider, the keys its credentials
// Secret must hold. Non-secret credentials (SMTP host, region...) are in the
// spec, where the API server validates them.
var SecretCredentialKeys = map[EmailProviderName][]string{
	ProviderMandrill:  {"api_key"},
	ProviderSES:       {"accessKeyId", "secretAccessKey"},
	ProviderSendGrid:  {"api_key"},
	ProviderSparkPost: {"api_key"},
	ProviderMailgun:   {"api_key"},
	ProviderSMTP:      {"smtp_pass"},
	ProviderAzureCS:   {"connectionString"},
	ProviderMS365:     {"clientSecret"},
	ProviderCustom:    nil,
}

// EmailProviderSpec declares the tenant's email provider. A tenant has at
// most one.
// +kubebuilder:validation:XValidation:rule="self.provider == 'custom' || has(self.credentialsSecretRef)",message="credentialsSecretRef is required for every provider but custom: name the Secret holding the provider's secret keys"
// +kubebuilder:validation:XValidation:rule="(self.provider == 'smtp') == has(self.smtp)",message="smtp (host, port, user) is required when provider is smtp, and allowed only then"
// +kubebuilder:validation:XValidation:rule="(self.provider == 'ses') == has(self.ses)",message="ses (region) is required when provider is ses, and allowed only then"
// +kubebuilder:validation:XValidation:rule="(self.provider == 'mailgun') == has(self.mailgun)",message="mailgun (domain) is required when provider is mailgun, and allowed only then"
// +kubebuilder:validation:XValidation:rule="(self.provider == 'ms365') == has(self.ms365)",message="ms365 (tenantID, clientID) is required when provider is ms365, and allowed only then"
// +kubebuilder:validation:XValidation:rule="!has(self.sparkpost) || self.provider == 'sparkpost'",message="sparkpost is allowed only when provider is sparkpost"
type EmailProviderSpec struct {
	// TenantRef names the Tenant, in this namespace, that sends through
	// this provider.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tenantRef is immutable: delete this EmailProvider and create one for the other tenant"
	TenantRef TenantReference `json:"tenantRef"`

	// Provider is the email service.
	Provider EmailProviderName `json:"provider"`

	// DefaultFromAddress is the sender of emails whose template does not set
	// one, such as "Acme <no-reply@acme.example>".
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:XValidation:rule=`self.matches('^([^<>]*<[^@\\s<>]+@[^@\\s<>]+\\.[^@\\s<>]+>|[^@\\s<>]+@[^@\\s<>]+\\.[^@\\s<>]+)$')`,message="defaultFromAddress must be an address such as no-reply@acme.example or \"Acme <no-reply@acme.example>\""
	DefaultFromAddress string `json:"defaultFromAddress"`

	// Enabled sends the tenant's email through this provider.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// CredentialsSecretRef names the Secret, in this namespace, with the
	// provider's secret keys: api_key (mandrill, sendgrid, sparkpost,
	// mailgun), accessKeyId and secretAccessKey (ses), smtp_pass (smtp),
	// connectionString (azure_cs), clientSecret (ms365). The platform never
	// returns them, so the operator sends them again whenever the Secret
	// changes.
	// +optional
	CredentialsSecretRef *LocalObjectReference `json:"credentialsSecretRef,omitempty"`

	// SMTP is the SMTP server, for provider smtp.
	// +optional
	SMTP *SMTPServer `json:"smtp,omitempty"`
	// SES is the Amazon SES region, for provider ses.
	// +optional
	SES *SESSettings `json:"ses,omitempty"`
	// Mailgun is the sending domain, for provider mailgun.
	// +optional
	Mailgun *MailgunSettings `json:"mailgun,omitempty"`
	// SparkPost is the region, for provider sparkpost.
	// +optional
	SparkPost *SparkPostSettings `json:"sparkpost,omitempty"`
	// MS365 is the Microsoft 365 application, for provider ms365.
	// +optional
	MS365 *MS365Settings `json:"ms365,omitempty"`

	// Settings are provider-specific settings passed through as given, such
	// as {"message": {"configuration_set_name": "transactional"}} for ses.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Settings *apiextensionsv1.JSON `json:"settings,omitempty"`

	// DeletionPolicy says what deleting this object does to the provider.
	// Delete (the default) removes it, and the tenant falls back to the
	// built-in provider; Orphan leaves it.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// ManagementPolicy says what the operator may do to the remote provider:
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

// SMTPServer is an SMTP server; its password is the Secret's smtp_pass.
type SMTPServer struct {
	// Host name of the server.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$')`,message="smtp.host must be a host name or IP address, without scheme or port"
	Host string `json:"host"`
	// Port of the server, such as 587.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// User to log in as.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=254
	User string `json:"user"`
}

// SESSettings is where Amazon SES sends from.
type SESSettings struct {
	// Region, such as eu-west-1.
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[a-z]{2}(-[a-z]+)+-[0-9]$')`,message="ses.region must be an AWS region such as eu-west-1"
	Region string `json:"region"`
}

// MailgunSettings is the Mailgun sending domain.
type MailgunSettings struct {
	// Domain to send from, such as mg.acme.example.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=253
	Domain string `json:"domain"`
	// Region, eu for the EU region; unset for the US.
	// +optional
	// +kubebuilder:validation:Enum=eu
	Region string `json:"region,omitempty"`
}

// SparkPostSettings is the SparkPost region.
type SparkPostSettings struct {
	// Region, eu for the EU region; unset for the US.
	// +optional
	// +kubebuilder:validation:Enum=eu
	Region string `json:"region,omitempty"`
}

// MS365Settings is the Microsoft 365 application that sends mail; its
// secret is the Secret's clientSecret.
type MS365Settings struct {
	// TenantID of the Microsoft Entra tenant (a GUID).
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')`,message="ms365.tenantID must be a GUID such as 00000000-0000-0000-0000-000000000000"
	TenantID string `json:"tenantID"`
	// ClientID of the application (a GUID).
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')`,message="ms365.clientID must be a GUID such as 00000000-0000-0000-0000-000000000000"
	ClientID string `json:"clientID"`
}

// EmailProviderStatus is what the operator observed and did.
type EmailProviderStatus struct {
	// Conditions: Ready summarizes; Reconciling, Stalled and Paused follow
	// kstatus; CredentialsValid tells whether the Secret has what the
	// provider needs.
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
	// Ownership is on what grounds the operator holds the tenant's
	// provider: Created (it made it), Adopted (found and not yet written) or
	// AdoptedWritten (found, then written). deletionPolicy Delete deletes
	// only a Created or AdoptedWritten provider.
	// +optional
	Ownership RemoteOwnership `json:"ownership,omitempty"`
	// Provider observed on the tenant.
	// +optional
	Provider EmailProviderName `json:"provider,omitempty"`
	// Enabled as observed on the tenant.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// AppliedCredentialsHash fingerprints the credentials last sent
	// (salted; never the values): the platform does not return secrets, so
	// this is how a changed Secret is noticed.
	// +optional
	AppliedCredentialsHash string `json:"appliedCredentialsHash,omitempty"`
	// LastSyncTime is when the provider was last read (or written) and found
	// in the declared state. A pass that changes nothing refreshes it only
	// once half a resync interval has passed since.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// Plan is, under managementPolicy Plan, what Apply would send, field by
	// field, and under Observe the drift from the spec (never corrected).
	// Absent under Apply.
	// +optional
	Plan *ManagementPlan `json:"plan,omitempty"`
}

// EmailProvider is the service a tenant sends its email through. A custom
// provider is what lifts the built-in provider's fixed sender address and
// its ban on template customization.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=emailprov,categories=identity
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenantRef.name`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="From",type=string,JSONPath=`.spec.defaultFromAddress`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.managementPolicy`
// +kubebuilder:printcolumn:name="Planned",type=integer,JSONPath=`.status.plan.pending`,priority=1
// +kubebuilder:printcolumn:name="Shard",type=string,JSONPath=`.status.shard`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EmailProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired provider.
	Spec EmailProviderSpec `json:"spec"`
	// Status is what the operator observed.
	// +optional
	Status EmailProviderStatus `json:"status,omitempty"`
}

// EmailProviderList is a list of EmailProviders.
// +kubebuilder:object:root=true
type EmailProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the EmailProviders.
	Items []EmailProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EmailProvider{}, &EmailProviderList{})
}
