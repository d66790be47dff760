package reconcile

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSyncTimeMovesOnlyWhenSomethingChangedOrHalfAResyncPassed(t *testing.T) {
	resync := 10 * time.Minute
	last := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	half := last.Add(resync / 2)
	for _, tc := range []struct {
		name    string
		last    *time.Time
		now     time.Time
		changed bool
		want    time.Time
	}{
		{"nothing recorded yet", nil, half.Add(-time.Minute), false, half.Add(-time.Minute)},
		{"a change is recorded at once", &last, last.Add(time.Second), true, last.Add(time.Second)},
		{"no change, 1ns before half a resync: kept", &last, half.Add(-time.Nanosecond), false, last},
		{"no change, exactly half a resync: moved", &last, half, false, half},
		{"no change, 1ns after half a resync: moved", &last, half.Add(time.Nanosecond), false, half.Add(time.Nanosecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var recorded *metav1.Time
			if tc.last != nil {
				recorded = &metav1.Time{Time: *tc.last}
			}
			got := SyncTime(recorded, tc.now, tc.changed, resync)
			if !got.Time.Equal(tc.want) {
				t.Fatalf("SyncTime = %s, want %s", got.Time, tc.want)
			}
		})
	}
}
