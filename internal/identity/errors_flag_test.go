package identity

import "testing"

// The platform refuses a flag in two ways: a flag it does not let the caller
// set, and a flag it does not have (never had, or retired). Both name the
// flag, and both are a ForbiddenFlagError; the same schema refusal of a
// top-level setting is not about a flag.
func TestParseForbiddenFlagNamesTheRefusedFlag(t *testing.T) {
	tests := []struct {
		name, message, wantFlag string
		wantOK                  bool
	}{
		{"not allowed, quoted", "You are not allowed to set flag 'disable_impersonation'", "disable_impersonation", true},
		{"not allowed, bare", "You are not allowed to set flag enable_sso.", "enable_sso", true},
		{"unknown flag, as the platform words it",
			"Payload validation error: 'Additional properties not allowed: change_pwd_flow_v1' on property flags (Flags used to enable/disable features).",
			"change_pwd_flow_v1", true},
		{"unknown flag, as the emulator words it",
			"Payload validation error: 'Additional properties not allowed: enable_retired_feature' on property flags.",
			"enable_retired_feature", true},
		{"unknown top-level setting is not a flag", "Payload validation error: 'Additional properties not allowed: colour'.", "", false},
		{"unknown key of another object is not a flag",
			"Payload validation error: 'Additional properties not allowed: foo' on property options.customScripts", "", false},
		{"another validation error", "Payload validation error: 'Expected type boolean but found type string' on property flags.enable_sso", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flag, ok := parseForbiddenFlag(tt.message)
			if ok != tt.wantOK || flag != tt.wantFlag {
				t.Errorf("parseForbiddenFlag(%q) = %q, %t; want %q, %t", tt.message, flag, ok, tt.wantFlag, tt.wantOK)
			}
		})
	}
}
