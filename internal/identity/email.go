package identity

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Email provider names the platform accepts.
const (
	EmailProviderMandrill  = "mandrill"
	EmailProviderSES       = "ses"
	EmailProviderSendGrid  = "sendgrid"
	EmailProviderSparkPost = "sparkpost"
	EmailProviderMailgun   = "mailgun"
	EmailProviderSMTP      = "smtp"
	EmailProviderAzureCS   = "azure_cs"
	EmailProviderMS365     = "ms365"
	EmailProviderCustom    = "custom"
)

// EmailProvider is the tenant's one email provider as the platform returns it. The
// platform never returns secret credentials (API keys, passwords): Credentials holds
// only the non-secret ones (smtp host, port and user; region; domain), so drift in
// secrets cannot be observed and a controller must remember what it sent.
type EmailProvider struct {
	// Name is one of the EmailProvider* constants.
	Name string `json:"name"`
	// Enabled is whether the tenant sends mail through this provider.
	Enabled bool `json:"enabled"`
	// DefaultFromAddress is the sender of mail whose template sets none.
	DefaultFromAddress string `json:"default_from_address,omitempty"`
	// Credentials are the non-secret credential fields the platform returns.
	Credentials EmailCredentials `json:"credentials,omitempty"`
	// Settings are provider-specific settings, kept as JSON.
	Settings map[string]json.RawMessage `json:"settings,omitempty"`
}

// EmailCredentials are a provider's credentials; which fields apply depends on the
// provider (see auth0-api.md). String and GoString redact every value, so printing
// them by mistake leaks nothing.
type EmailCredentials struct {
	// APIKey is the key of mandrill, sendgrid, sparkpost and mailgun (secret).
	APIKey string `json:"api_key,omitempty"`
	// Region is the region of sparkpost, mailgun and ses.
	Region string `json:"region,omitempty"`
	// Domain is mailgun's sending domain.
	Domain string `json:"domain,omitempty"`
	// AccessKeyID is the ses access key id (secret).
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// SecretAccessKey is the ses secret key (secret).
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	// SMTPHost is the smtp server host.
	SMTPHost string `json:"smtp_host,omitempty"`
	// SMTPPort is the smtp server port.
	SMTPPort int `json:"smtp_port,omitempty"`
	// SMTPUser is the smtp user name.
	SMTPUser string `json:"smtp_user,omitempty"`
	// SMTPPass is the smtp password (secret).
	SMTPPass string `json:"smtp_pass,omitempty"`
	// ConnectionString is azure_cs's connection string (secret).
	ConnectionString string `json:"connectionString,omitempty"`
	// TenantID is ms365's directory id.
	TenantID string `json:"tenantId,omitempty"`
	// ClientID is ms365's application id.
	ClientID string `json:"clientId,omitempty"`
	// ClientSecret is ms365's application secret (secret).
	ClientSecret string `json:"clientSecret,omitempty"`
}

// String lists which credential fields are set, never their values.
func (c EmailCredentials) String() string {
	data, _ := json.Marshal(c)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprintf("EmailCredentials{set: %v}", keys)
}

// GoString redacts like String.
func (c EmailCredentials) GoString() string { return c.String() }

// EmailProviderCreate is the body of POST /api/v2/emails/provider.
type EmailProviderCreate struct {
	// Name is one of the EmailProvider* constants.
	Name string `json:"name"`
	// Enabled defaults to true on the platform when nil.
	Enabled *bool `json:"enabled,omitempty"`
	// DefaultFromAddress is the sender of mail whose template sets none.
	DefaultFromAddress string `json:"default_from_address,omitempty"`
	// Credentials for the provider (custom: empty).
	Credentials EmailCredentials `json:"credentials"`
	// Settings are provider-specific settings.
	Settings map[string]json.RawMessage `json:"settings,omitempty"`
}

// EmailProviderUpdate is the body of PATCH /api/v2/emails/provider: only set fields are
// sent.
type EmailProviderUpdate struct {
	// Name, when set, changes the provider.
	Name *string `json:"name,omitempty"`
	// Enabled, when set, turns the provider on or off.
	Enabled *bool `json:"enabled,omitempty"`
	// DefaultFromAddress, when set, replaces the default sender.
	DefaultFromAddress *string `json:"default_from_address,omitempty"`
	// Credentials, when set, replaces the credentials.
	Credentials *EmailCredentials `json:"credentials,omitempty"`
	// Settings, when set, replaces the settings.
	Settings *map[string]json.RawMessage `json:"settings,omitempty"`
}

// Email template names the controllers manage.
const (
	TemplateVerifyEmail    = "verify_email"
	TemplateResetEmail     = "reset_email"
	TemplateWelcomeEmail   = "welcome_email"
	TemplateBlockedAccount = "blocked_account"
	TemplateChangePassword = "change_password"
	TemplatePasswordReset  = "password_reset"
)

// EmailTemplate is one email template as the platform returns it (camelCase on the
// wire).
type EmailTemplate struct {
	// Template is the template's name (TemplateResetEmail...).
	Template string `json:"template"`
	// Body is the mail body (Liquid).
	Body string `json:"body,omitempty"`
	// From is the sender address.
	From string `json:"from,omitempty"`
	// Subject is the mail subject.
	Subject string `json:"subject,omitempty"`
	// Syntax is the template language, "liquid".
	Syntax string `json:"syntax,omitempty"`
	// ResultURL is where the user lands after following the link.
	ResultURL string `json:"resultUrl,omitempty"`
	// URLLifetimeInSeconds is how long the mailed link works.
	URLLifetimeInSeconds *int `json:"urlLifetimeInSeconds,omitempty"`
	// IncludeEmailInRedirect adds the email to the ResultURL query.
	IncludeEmailInRedirect *bool `json:"includeEmailInRedirect,omitempty"`
	// Enabled is whether the platform sends this mail.
	Enabled *bool `json:"enabled,omitempty"`
}

// EmailTemplateUpdate is the body of PATCH /api/v2/email-templates/{name}: only set
// fields are sent.
type EmailTemplateUpdate struct {
	// Body, when set, replaces the body.
	Body *string `json:"body,omitempty"`
	// From, when set, replaces the sender.
	From *string `json:"from,omitempty"`
	// Subject, when set, replaces the subject.
	Subject *string `json:"subject,omitempty"`
	// Syntax, when set, replaces the template language.
	Syntax *string `json:"syntax,omitempty"`
	// ResultURL, when set, replaces the landing URL.
	ResultURL *string `json:"resultUrl,omitempty"`
	// URLLifetimeInSeconds, when set, replaces the link lifetime.
	URLLifetimeInSeconds *int `json:"urlLifetimeInSeconds,omitempty"`
	// IncludeEmailInRedirect, when set, replaces that choice.
	IncludeEmailInRedirect *bool `json:"includeEmailInRedirect,omitempty"`
	// Enabled, when set, turns the mail on or off.
	Enabled *bool `json:"enabled,omitempty"`
}

// PasswordChangeTicket is the body of POST /api/v2/tickets/password-change: either
// UserID, or ConnectionID with Email.
type PasswordChangeTicket struct {
	// UserID is the user whose password the ticket resets.
	UserID string `json:"user_id,omitempty"`
	// ConnectionID with Email names the user instead of UserID.
	ConnectionID string `json:"connection_id,omitempty"`
	// Email with ConnectionID names the user instead of UserID.
	Email string `json:"email,omitempty"`
	// ResultURL is where the user lands after setting the password.
	ResultURL string `json:"result_url,omitempty"`
	// ClientID is the application whose login the user returns to.
	ClientID string `json:"client_id,omitempty"`
	// TTLSec is the ticket's lifetime; 0 means the platform default (5 days).
	TTLSec int `json:"ttl_sec,omitempty"`
	// MarkEmailAsVerified verifies the email when the ticket is used.
	MarkEmailAsVerified *bool `json:"mark_email_as_verified,omitempty"`
	// IncludeEmailInRedirect adds the email to the ResultURL query.
	IncludeEmailInRedirect *bool `json:"includeEmailInRedirect,omitempty"`
}
