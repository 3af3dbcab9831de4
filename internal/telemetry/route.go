package telemetry

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteMetrics is one route's children of warden_requests_total and
// warden_request_duration_seconds, resolved once: the per-request cost is
// an atomic load and the increment, not a label hash and a map lookup
// under a lock (CounterVec.WithLabelValues). Build one per route when the
// routes are built; it stays valid as long as its Metrics, which Warden
// never resets.
type RouteMetrics struct {
	requests *prometheus.CounterVec
	route    string
	latency  prometheus.Observer
	codes    [600]atomic.Pointer[prometheus.Counter] // by status code, filled on first use
}

// Route returns the cached metrics of route.
func (m *Metrics) Route(route string) *RouteMetrics {
	return &RouteMetrics{requests: m.Requests, route: route, latency: m.Latency.WithLabelValues(route)}
}

// Request counts one request answered with status and observes its
// duration in seconds.
func (r *RouteMetrics) Request(status int, seconds float64) {
	r.counter(status).Inc()
	r.latency.Observe(seconds)
}

func (r *RouteMetrics) counter(status int) prometheus.Counter {
	if status < 100 || status >= len(r.codes) {
		return r.requests.WithLabelValues(r.route, strconv.Itoa(status))
	}
	if c := r.codes[status].Load(); c != nil {
		return *c
	}
	c := r.requests.WithLabelValues(r.route, strconv.Itoa(status))
	r.codes[status].Store(&c) // a racing store holds the same child
	return c
}
