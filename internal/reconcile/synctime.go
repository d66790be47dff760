package reconcile

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SyncTime is the lastSyncTime to record after a pass at now that found the
// remote object in its declared state. A pass that changed something (or
// found no time recorded) records now. A pass that changed nothing keeps the
// recorded time until half the resync interval has passed since it: the
// regular resync still moves it forward, so it is never staler than half a
// resync, but the passes in between (a warm-up before a deadline, watch
// events, a burst at start-up) write no status for it. Status writes are the
// control plane's cost, and at a thousand tenants they are what it spends
// its CPU on.
func SyncTime(last *metav1.Time, now time.Time, changed bool, resync time.Duration) *metav1.Time {
	if changed || last == nil || now.Sub(last.Time) >= resync/2 {
		return &metav1.Time{Time: now}
	}
	return last
}
