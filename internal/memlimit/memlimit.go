// Package memlimit gives the Go runtime a soft memory limit below the
// container's, so that the collector works harder before the kernel's OOM
// killer does: at 1,000 tenants about half of the operator's heap in use is
// the collector's headroom (docs/benchmarks.md).
package memlimit

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// noLimit is what cgroup v1 reports for "unlimited" (close to MaxInt64, page aligned).
const noLimit = 1 << 62

// Set sets the runtime's soft limit to fraction of the container's memory
// limit, unless GOMEMLIMIT is set or no limit applies. It returns the limit
// it set, 0 when it set none.
func Set(fraction float64) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	for _, path := range cgroupFiles {
		limit, ok := read(path)
		if !ok {
			continue
		}
		soft := int64(float64(limit) * fraction)
		debug.SetMemoryLimit(soft)
		return soft
	}
	return 0
}

// read parses a cgroup limit file; "max" or an absurd value means none.
func read(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v >= noLimit {
		return 0, false
	}
	return v, true
}
