package workload

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RequestLog is the emulator's logger (server.Config.Logger, through
// slog.New): it receives one record per tenant
// request (tenant, route, status) and keeps what the benchmarks report:
// statuses, injected faults, requests per second, and when each tenant's
// settings were last patched.
type RequestLog struct {
	mu          sync.Mutex
	statuses    map[int]int
	perSecond   map[int64]int
	lastPatch   map[string]time.Time // tenant -> last PATCH /api/v2/tenants/settings
	patchStatus map[int]int
	panics      int
	faults      int
	// tenantFaults counts injected faults per tenant.
	tenantFaults map[string]int
}

func NewRequestLog() *RequestLog {
	return &RequestLog{statuses: map[int]int{}, perSecond: map[int64]int{}, lastPatch: map[string]time.Time{}, patchStatus: map[int]int{},
		tenantFaults: map[string]int{}}
}

// Enabled, WithAttrs, WithGroup and Handle make it a slog.Handler.
func (l *RequestLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *RequestLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *RequestLog) WithGroup(string) slog.Handler            { return l }

func (l *RequestLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "handler panic" {
		l.mu.Lock()
		l.panics++
		l.mu.Unlock()
		return nil
	}
	if r.Message != "request" {
		return nil
	}
	var tenant, route string
	status, fault := 0, false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "tenant":
			tenant = a.Value.String()
		case "route":
			route = a.Value.String()
		case "status":
			status = int(a.Value.Int64())
		case "fault":
			if a.Value.Kind() == slog.KindBool && a.Value.Bool() {
				fault = true
			}
		}
		return true
	})
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[status]++
	if fault {
		l.faults++
		l.tenantFaults[tenant]++
	}
	l.perSecond[now.Unix()]++
	if strings.HasPrefix(route, "PATCH /api/v2/tenants/settings") {
		l.patchStatus[status]++
		if status == 200 {
			l.lastPatch[tenant] = now
		}
	}
	return nil
}

// Status returns how many requests were answered with code.
func (l *RequestLog) Status(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[code]
}

// StatusAtLeast counts answers with a status of at least code.
func (l *RequestLog) StatusAtLeast(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for c, v := range l.statuses {
		if c >= code {
			n += v
		}
	}
	return n
}

// PeakPerSecond is the most requests served in one wall-clock second.
func (l *RequestLog) PeakPerSecond() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := 0
	for _, v := range l.perSecond {
		p = max(p, v)
	}
	return p
}

// PatchesSince returns each tenant's last successful settings PATCH at or
// after t.
func (l *RequestLog) PatchesSince(t time.Time) map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]time.Time{}
	for d, at := range l.lastPatch {
		if !at.Before(t) {
			out[d] = at
		}
	}
	return out
}

// Faults counts the requests answered with an injected fault.
func (l *RequestLog) Faults() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.faults
}

// TenantFaults counts the requests to one tenant answered with an injected
// fault (an outage of that tenant included).
func (l *RequestLog) TenantFaults(domain string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tenantFaults[domain]
}

// Panics counts emulator handler panics (a bug in the emulator).
func (l *RequestLog) Panics() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.panics
}
