package migration

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Readiness reasons, one per way a check fails, as they appear in status.
const (
	// ReasonNoEmailProvider: the tenant has no enabled, Ready EmailProvider.
	ReasonNoEmailProvider = "NoEmailProvider"
	// ReasonSandboxVersionTooOld: the tenant's sandbox_version is below the
	// check's version.
	ReasonSandboxVersionTooOld = "SandboxVersionTooOld"
	// ReasonCustomDatabaseOnOldSandbox: the tenant has a custom database
	// connection and its sandbox_version is below the check's version.
	ReasonCustomDatabaseOnOldSandbox = "CustomDatabaseOnOldSandbox"
	// ReasonSandboxVersionUnknown: the operator has not read the tenant's
	// sandbox_version yet, or it is not a version.
	ReasonSandboxVersionUnknown = "SandboxVersionUnknown"
	// ReasonFlagNotSet: the tenant does not report the check's flag with the
	// check's value.
	ReasonFlagNotSet = "FlagNotSet"
	// ReasonReadinessUnknown: the tenant's settings have not been read
	// since the check appeared, so whether it passes is not known yet.
	ReasonReadinessUnknown = "ReadinessUnknown"
)

// TenantState is what readiness checks read about one tenant: what the
// cluster holds (its EmailProviders and CustomDatabaseConnections) and what
// the Tenant reconciler recorded at its last read of the settings.
type TenantState struct {
	// Observed is false until the tenant's settings have been read once.
	Observed bool
	// SandboxVersion is the tenant's sandbox_version ("" when not reported).
	SandboxVersion string
	// Flags are the flags looked for at the last read (those the FlagValue
	// checks name) with the value the tenant reports, nil for a flag it does
	// not report. A flag missing from the map was not looked for yet.
	Flags map[string]*bool
	// EmailProviderReady is true when the tenant has an enabled, Ready
	// EmailProvider.
	EmailProviderReady bool
	// CustomDatabases name the tenant's custom database connections, as
	// "CustomDatabaseConnection/<object> (connection <name>)".
	CustomDatabases []string
}

// CheckReadiness evaluates checks, in order, on a tenant's state. The first
// check that fails gives the reason, and a message that says what was found
// and what to do: the check's own message when it has one, the operator's
// advice otherwise.
func CheckReadiness(checks []identityv1alpha1.ReadinessCheck, s TenantState) Readiness {
	for _, check := range checks {
		reason, found, advice := failure(check, s)
		if reason == "" {
			continue
		}
		if reason == ReasonReadinessUnknown {
			return Readiness{Unknown: true, Reason: reason, Message: found}
		}
		joiner := "; "
		if check.Message != "" {
			advice = check.Message
			if r := advice[0]; r >= 'A' && r <= 'Z' {
				joiner = ". " // the check's message is a sentence of its own
			}
		}
		return Readiness{Reason: reason, Message: found + joiner + advice}
	}
	return Readiness{Ready: true}
}

// failure is why check fails on s (reason, what was found, what to do), or
// an empty reason when it passes.
func failure(check identityv1alpha1.ReadinessCheck, s TenantState) (reason, found, advice string) {
	switch check.Type {
	case identityv1alpha1.ReadinessEmailProviderConfigured:
		if !s.EmailProviderReady {
			return ReasonNoEmailProvider, "the tenant has no enabled, Ready EmailProvider", "configure an EmailProvider for this tenant"
		}
	case identityv1alpha1.ReadinessSandboxVersionAtLeast:
		if reason, found := sandboxBelow(check.Version, s); reason != "" {
			if reason == ReasonSandboxVersionTooOld {
				found = fmt.Sprintf("the tenant's sandbox_version is %s, below %s", s.SandboxVersion, check.Version)
			}
			return reason, found, fmt.Sprintf("test its rules, hooks and database scripts on Node.js %s, then set spec.settings.sandboxVersion: %q", check.Version, check.Version)
		}
	case identityv1alpha1.ReadinessCustomDatabaseSandboxAtLeast:
		if len(s.CustomDatabases) == 0 {
			return "", "", ""
		}
		if reason, found := sandboxBelow(check.Version, s); reason != "" {
			dbs := append([]string(nil), s.CustomDatabases...)
			sort.Strings(dbs)
			if reason == ReasonSandboxVersionTooOld {
				reason = ReasonCustomDatabaseOnOldSandbox
				found = fmt.Sprintf("%s runs its scripts on sandbox_version %s, below %s", strings.Join(dbs, ", "), s.SandboxVersion, check.Version)
			}
			return reason, found, fmt.Sprintf("test the database scripts on Node.js %s, then set spec.settings.sandboxVersion: %q", check.Version, check.Version)
		}
	case identityv1alpha1.ReadinessFlagValue:
		want := check.Value != nil && *check.Value
		advice = fmt.Sprintf("set spec.flags.%s: %t once the tenant's applications are ready for it", check.Flag, want)
		have, looked := s.Flags[check.Flag]
		switch {
		case !s.Observed || !looked:
			return ReasonReadinessUnknown, fmt.Sprintf("the operator has not read flags.%s from the tenant yet", check.Flag), ""
		case have == nil:
			return ReasonFlagNotSet, fmt.Sprintf("the tenant does not report flags.%s (it must be %t)", check.Flag, want), advice
		case *have != want:
			return ReasonFlagNotSet, fmt.Sprintf("flags.%s is %t on the tenant (it must be %t)", check.Flag, *have, want), advice
		}
	}
	return "", "", ""
}

// sandboxBelow says whether the tenant's sandbox is below version: a reason
// (SandboxVersionTooOld; SandboxVersionUnknown or ReadinessUnknown, with
// what was found), or "" when it is not.
func sandboxBelow(version string, s TenantState) (reason, found string) {
	if !s.Observed {
		return ReasonReadinessUnknown, "the operator has not read the tenant's sandbox_version yet"
	}
	if s.SandboxVersion == "" {
		return ReasonSandboxVersionUnknown, "the tenant reports no sandbox_version"
	}
	atLeast, err := VersionAtLeast(s.SandboxVersion, version)
	if err != nil {
		return ReasonSandboxVersionUnknown, fmt.Sprintf("the tenant reports sandbox_version %q, which is not a Node.js version", s.SandboxVersion)
	}
	if atLeast {
		return "", ""
	}
	return ReasonSandboxVersionTooOld, ""
}

// VersionAtLeast reports whether version have is at least want. Both are
// dotted numbers such as "18" or "18.17.1", compared number by number (so
// "8" is below "12"), a missing part counting as 0 ("18" equals "18.0").
// A leading "v" or "node" is accepted on have, as platforms write either.
func VersionAtLeast(have, want string) (bool, error) {
	h, err := parseVersion(have)
	if err != nil {
		return false, err
	}
	w, err := parseVersion(want)
	if err != nil {
		return false, err
	}
	for i := 0; i < len(h) || i < len(w); i++ {
		var a, b int
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return a > b, nil
		}
	}
	return true, nil
}

func parseVersion(v string) ([]int, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(v)), "node"), "v")
	if s == "" {
		return nil, fmt.Errorf("%q is not a version", v)
	}
	parts := strings.Split(s, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a version", v)
		}
		out[i] = n
	}
	return out, nil
}

// CheckedFlags are the flags the FlagValue checks of m name, so that the
// Tenant reconciler records their values at each read of the settings.
func CheckedFlags(m *identityv1alpha1.PlatformMigration) []string {
	var out []string
	for _, c := range m.Spec.ReadinessChecks {
		if c.Type == identityv1alpha1.ReadinessFlagValue && c.Flag != "" {
			out = append(out, c.Flag)
		}
	}
	return out
}
