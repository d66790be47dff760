package migration

import (
	"sort"
)

// Override is a flag a Tenant declares with one value while an enabled
// migration needs the other.
type Override struct {
	// Flag is the platform flag's name.
	Flag string
	// Declared is the value the Tenant asks for.
	Declared bool
	// Migration is the migration whose value wins.
	Migration string
	// Value is the migration's value.
	Value bool
}

// Change is an enabled migration's flags.
type Change struct {
	// Migration is the PlatformMigration's name.
	Migration string
	// Flags are the values the migration sets.
	Flags map[string]bool
}

// MergeFlags merges the flags a Tenant declares with those of the migrations
// enabled for it, into the one set of flags the Tenant reconciler sends.
// An enabled migration wins over the Tenant's own value (the Tenant opted
// in, was enrolled, or the change is mandatory), and each such conflict is
// returned so the Tenant can be told. Two enabled migrations that disagree on
// a flag are resolved by name order, the last one winning, so the outcome
// does not depend on list order.
func MergeFlags(declared map[string]bool, changes []Change) (map[string]bool, []Override) {
	merged := make(map[string]bool, len(declared))
	for k, v := range declared {
		merged[k] = v
	}
	sorted := append([]Change(nil), changes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Migration < sorted[j].Migration })

	var overrides []Override
	for _, c := range sorted {
		flags := make([]string, 0, len(c.Flags))
		for f := range c.Flags {
			flags = append(flags, f)
		}
		sort.Strings(flags)
		for _, f := range flags {
			v := c.Flags[f]
			if own, ok := declared[f]; ok && own != v {
				overrides = append(overrides, Override{Flag: f, Declared: own, Migration: c.Migration, Value: v})
			}
			merged[f] = v
		}
	}
	return merged, overrides
}
