package identity

import (
	"encoding/json"
	"fmt"
)

// StrategyAuth0 is the strategy of database connections, the only kind this client
// creates and finds.
const StrategyAuth0 = "auth0"

// Connection is a database connection as the platform returns it.
type Connection struct {
	// ID is the platform's identifier ("con_...").
	ID string `json:"id"`
	// Name is unique in the tenant; it cannot change.
	Name string `json:"name"`
	// Strategy is "auth0" for database connections; it cannot change.
	Strategy string `json:"strategy"`
	// DisplayName is shown on the login page.
	DisplayName string `json:"display_name,omitempty"`
	// EnabledClients are the application client ids that may use the connection.
	EnabledClients []string `json:"enabled_clients,omitempty"`
	// Realms are the realm names of the password-realm grant (default: [Name]).
	Realms []string `json:"realms,omitempty"`
	// Metadata is free-form string metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Options are the strategy's options, every key kept (see ConnectionOptions).
	Options ConnectionOptions `json:"options"`
}

// ConnectionOptions are the options of an auth0 (database) connection.
//
// The platform replaces options whole on PATCH, so this type round-trips every key: the
// keys it does not model are kept in Extra and sent back unchanged. To change one option,
// GET the connection, change the field, and PATCH the whole Options.
//
// Configuration is write-only in effect: the platform returns each value as ciphertext
// that changes on every write, so a PATCH must carry the plain values again (from the
// controller's Secret) or they are lost. Never log or print options: Configuration and
// the scripts may hold credentials. String redacts them for that reason.
type ConnectionOptions struct {
	// EnabledDatabaseCustomization runs CustomScripts instead of the platform's store
	// for users not yet migrated. It cannot change while the connection has users.
	EnabledDatabaseCustomization *bool `json:"enabledDatabaseCustomization,omitempty"`
	// CustomScripts maps an action (login, get_user, create, verify, change_password,
	// delete, change_email) to its JavaScript.
	CustomScripts map[string]string `json:"customScripts,omitempty"`
	// Configuration is the scripts' global configuration object (plain text when
	// written, ciphertext when read).
	Configuration map[string]string `json:"configuration,omitempty"`
	// ImportMode migrates each user into the platform's store on first login.
	ImportMode *bool `json:"import_mode,omitempty"`
	// RequiresUsername makes a username mandatory.
	RequiresUsername *bool `json:"requires_username,omitempty"`
	// StrategyVersion 2 turns on profile validation of migrated users.
	StrategyVersion *int `json:"strategy_version,omitempty"`
	// Validation bounds usernames.
	Validation *ConnectionValidation `json:"validation,omitempty"`
	// PasswordPolicy is none, low, fair, good or excellent.
	PasswordPolicy *string `json:"passwordPolicy,omitempty"`
	// PasswordComplexityOptions sets the minimum length.
	PasswordComplexityOptions *PasswordComplexityOptions `json:"password_complexity_options,omitempty"`
	// PasswordHistory forbids reusing recent passwords (shape kept as the platform
	// defines it, e.g. {"enable":true,"size":5}).
	PasswordHistory json.RawMessage `json:"password_history,omitempty"`
	// PasswordDictionary forbids common passwords (e.g. {"enable":true}).
	PasswordDictionary json.RawMessage `json:"password_dictionary,omitempty"`
	// PasswordNoPersonalInfo forbids passwords containing profile data (e.g.
	// {"enable":true}).
	PasswordNoPersonalInfo json.RawMessage `json:"password_no_personal_info,omitempty"`
	// BruteForceProtection blocks an IP after repeated failed logins.
	BruteForceProtection *bool `json:"brute_force_protection,omitempty"`
	// DisableSignup refuses public sign-ups.
	DisableSignup *bool `json:"disable_signup,omitempty"`

	// Extra holds every option key the fields above do not model, as the platform sent
	// it, so that a PATCH keeps it.
	Extra map[string]json.RawMessage `json:"-"`
}

// ConnectionValidation is options.validation.
type ConnectionValidation struct {
	// Username bounds the username length.
	Username *UsernameValidation `json:"username,omitempty"`
}

// UsernameValidation is options.validation.username.
type UsernameValidation struct {
	// Min is the shortest allowed username.
	Min int `json:"min"`
	// Max is the longest allowed username.
	Max int `json:"max"`
}

// PasswordComplexityOptions is options.password_complexity_options.
type PasswordComplexityOptions struct {
	// MinLength is the shortest allowed password.
	MinLength *int `json:"min_length,omitempty"`
}

// connectionOptionsFields is ConnectionOptions without its methods, for the codec.
type connectionOptionsFields ConnectionOptions

// MarshalJSON writes the modelled options and every Extra key.
func (o ConnectionOptions) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(connectionOptionsFields(o), o.Extra)
}

// UnmarshalJSON reads the modelled options and keeps the others in Extra.
func (o *ConnectionOptions) UnmarshalJSON(data []byte) error {
	var f connectionOptionsFields
	extra, err := unmarshalWithExtra(data, &f)
	if err != nil {
		return err
	}
	*o = ConnectionOptions(f)
	o.Extra = extra
	return nil
}

// String describes the options without the scripts' bodies or configuration values,
// which may hold credentials.
func (o ConnectionOptions) String() string {
	keys := make([]string, 0, len(o.Configuration))
	for k := range o.Configuration {
		keys = append(keys, k)
	}
	scripts := make([]string, 0, len(o.CustomScripts))
	for k := range o.CustomScripts {
		scripts = append(scripts, k)
	}
	return fmt.Sprintf("ConnectionOptions{scripts: %v, configuration keys: %v, %d other keys}",
		scripts, keys, len(o.Extra))
}

// GoString redacts like String, so %#v does not print secrets either.
func (o ConnectionOptions) GoString() string { return o.String() }

// ConnectionCreate is the body of POST /api/v2/connections.
type ConnectionCreate struct {
	// Name must be alphanumerics and '-', start and end alphanumeric, at most 128.
	Name string `json:"name"`
	// Strategy defaults to StrategyAuth0 when empty.
	Strategy string `json:"strategy"`
	// DisplayName is shown on the login page.
	DisplayName string `json:"display_name,omitempty"`
	// EnabledClients are the application client ids that may use the connection.
	EnabledClients []string `json:"enabled_clients,omitempty"`
	// Realms default to [Name] on the platform.
	Realms []string `json:"realms,omitempty"`
	// Metadata is free-form string metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Options are the connection's options.
	Options *ConnectionOptions `json:"options,omitempty"`
}

// ConnectionUpdate is the body of PATCH /api/v2/connections/{id}. Unset fields are left
// alone, but Options, when set, replaces all options (see ConnectionOptions).
type ConnectionUpdate struct {
	// DisplayName, when set, replaces the display name.
	DisplayName *string `json:"display_name,omitempty"`
	// EnabledClients, when set, replaces the enabled clients (empty: none).
	EnabledClients *[]string `json:"enabled_clients,omitempty"`
	// Realms, when set, replaces the realms.
	Realms *[]string `json:"realms,omitempty"`
	// Metadata, when set, replaces the metadata.
	Metadata *map[string]string `json:"metadata,omitempty"`
	// Options, when set, replaces all options.
	Options *ConnectionOptions `json:"options,omitempty"`
}
