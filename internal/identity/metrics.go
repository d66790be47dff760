package identity

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are the client's Prometheus metrics. Labels carry the operation, a status
// class and the tenant domain only: never a secret, a user or an object name.
type Metrics struct {
	// Requests counts HTTP requests by operation and status class (2xx, 4xx, 5xx, or
	// "error" when no response came).
	Requests *prometheus.CounterVec
	// RateLimited counts 429 answers by operation.
	RateLimited *prometheus.CounterVec
	// RateLimitRemaining is the last X-RateLimit-Remaining seen, by tenant domain.
	RateLimitRemaining *prometheus.GaugeVec
	// Duration observes the latency of each HTTP request by operation.
	Duration *prometheus.HistogramVec
	// BreakerOpen is 1 while a tenant is taken for down (its calls fail without a
	// request, but for one probe at a time) and 0 otherwise, by tenant domain.
	BreakerOpen *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered, for
// tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_client_requests_total",
			Help: "Requests sent to the identity API, by operation and status class.",
		}, []string{"operation", "code"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "identity_client_rate_limited_total",
			Help: "429 Too Many Requests answers from the identity API, by operation.",
		}, []string{"operation"}),
		RateLimitRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "identity_client_rate_limit_remaining",
			Help: "The last X-RateLimit-Remaining the identity API sent, by tenant domain.",
		}, []string{"tenant"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "identity_client_request_duration_seconds",
			Help:    "Latency of requests to the identity API, by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		BreakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "identity_tenant_breaker_open",
			Help: "1 while the tenant is taken for down after failed requests (its calls fail at once but for one probe at a time), 0 otherwise, by tenant domain.",
		}, []string{"domain"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.RateLimited, m.RateLimitRemaining, m.Duration, m.BreakerOpen)
	}
	return m
}

var (
	defaultMetricsOnce sync.Once
	defaultMetrics     *Metrics
)

// DefaultMetrics are the metrics registered once on controller-runtime's registry, which
// the manager serves on its metrics endpoint.
func DefaultMetrics() *Metrics {
	defaultMetricsOnce.Do(func() { defaultMetrics = NewMetrics(ctrlmetrics.Registry) })
	return defaultMetrics
}

// statusClass turns a status into a low-cardinality label.
func statusClass(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}
