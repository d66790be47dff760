package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	. "github.com/onsi/gomega"
)

func TestSoftLimitFollowsTheContainerLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		files   []string
		env     string
		want    int64
		wantSet bool
	}{
		{"cgroup v2 limit", []string{write("v2", "268435456\n")}, "", 241591910, true},
		{"cgroup v2 without a limit", []string{write("v2max", "max\n")}, "", 0, false},
		{"cgroup v1 unlimited, then nothing", []string{write("v1", "9223372036854771712\n")}, "", 0, false},
		{"no cgroup files", []string{filepath.Join(dir, "missing")}, "", 0, false},
		{"GOMEMLIMIT set by the user wins", []string{write("v2b", "268435456\n")}, "100MiB", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			saved := cgroupFiles
			before := debug.SetMemoryLimit(-1)
			t.Cleanup(func() { cgroupFiles = saved; debug.SetMemoryLimit(before) })
			cgroupFiles = tt.files
			t.Setenv("GOMEMLIMIT", tt.env)
			got := Set(0.9)
			g.Expect(got).To(Equal(tt.want))
			if tt.wantSet {
				g.Expect(debug.SetMemoryLimit(-1)).To(Equal(tt.want))
			} else {
				g.Expect(debug.SetMemoryLimit(-1)).To(Equal(before))
			}
		})
	}
}

func TestGCPercentDefaultsUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	t.Setenv("GOGC", "200")
	if SetGCPercent() {
		t.Fatal("overrode GOGC from the environment")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent changed to %d with GOGC set", got)
	}

	t.Setenv("GOGC", "")
	if !SetGCPercent() {
		t.Fatal("did not set the default without GOGC")
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GC percent %d, want %d", got, DefaultGCPercent)
	}
}
