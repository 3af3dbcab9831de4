package lockout

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
)

// Metric names. The collectors are registered on the gateway's registry
// (policy.Env.Metrics) the first time a request shows it; Guards sharing
// a registry share them.
const (
	// MetricFailures counts failed authentications counted, by kind.
	MetricFailures = "warden_lockout_failures_total"
	// MetricEngaged counts lock-outs engaged, by kind.
	MetricEngaged = "warden_lockout_engaged_total"
	// MetricRefused counts requests refused 429 locked_out, by kind.
	MetricRefused = "warden_lockout_refused_total"
	// MetricReleased counts lock-outs lifted through Unlock, by kind.
	MetricReleased = "warden_lockout_released_total"
	// MetricDelays counts progressive delays, by result: completed, or
	// client_gone when the client left during the delay.
	MetricDelays = "warden_lockout_delays_total"
	// MetricEvictions counts keys dropped to bound memory, by kind and
	// class: stale (nothing lost) or active (counts or a lock-out lost: a
	// flood of distinct keys is under way).
	MetricEvictions = "warden_lockout_evictions_total"
)

// metricsHolder binds a Guard's collectors to the registry it last saw.
type metricsHolder struct {
	cur atomic.Pointer[metricSet]
	mu  sync.Mutex
}

type metricSet struct {
	m                                                    *telemetry.Metrics
	failures, engagedN, refused, releasedN, delays, evic *prometheus.CounterVec
}

// get returns the collectors on env's registry, registering them on
// first use; with no env (or no metrics), the last bound set, possibly
// nil. A nil *metricSet counts nothing.
func (h *metricsHolder) get(env *policy.Env) *metricSet {
	cur := h.cur.Load()
	if env == nil || env.Metrics == nil || env.Metrics.Registry == nil || cur != nil && cur.m == env.Metrics {
		return cur
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur = h.cur.Load(); cur != nil && cur.m == env.Metrics {
		return cur
	}
	reg := env.Metrics.Registry
	s := &metricSet{m: env.Metrics,
		failures:  counterVec(reg, MetricFailures, "Failed authentications counted by brute-force protection, by key kind (ip, consumer).", "kind"),
		engagedN:  counterVec(reg, MetricEngaged, "Lock-outs engaged by brute-force protection, by key kind.", "kind"),
		refused:   counterVec(reg, MetricRefused, "Requests refused because their client address or consumer is locked out, by key kind.", "kind"),
		releasedN: counterVec(reg, MetricReleased, "Lock-outs lifted through the admin API, by key kind.", "kind"),
		delays:    counterVec(reg, MetricDelays, "Requests delayed by brute-force protection, by result (completed, client_gone).", "result"),
		evic:      counterVec(reg, MetricEvictions, "Brute-force protection keys dropped to bound memory, by kind and class (stale, active).", "kind", "class"),
	}
	h.cur.Store(s)
	return s
}

// counterVec registers a counter vector, or returns the one already
// registered under that name; nil if the name is taken by another type.
func counterVec(reg *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	if err := reg.Register(v); err != nil {
		are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
		if !ok {
			return nil
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil
		}
		return existing
	}
	return v
}

func inc(v *prometheus.CounterVec, n int, labels ...string) {
	if v != nil && n > 0 {
		v.WithLabelValues(labels...).Add(float64(n))
	}
}

func (s *metricSet) failure(kind string) {
	if s != nil {
		inc(s.failures, 1, kind)
	}
}

func (s *metricSet) engaged(kind string) {
	if s != nil {
		inc(s.engagedN, 1, kind)
	}
}

func (s *metricSet) refusal(kind string) {
	if s != nil {
		inc(s.refused, 1, kind)
	}
}

func (s *metricSet) released(kind string) {
	if s != nil {
		inc(s.releasedN, 1, kind)
	}
}

func (s *metricSet) delay(result string) {
	if s != nil {
		inc(s.delays, 1, result)
	}
}

// evicted counts dropped keys on the last bound registry.
func (h *metricsHolder) evicted(kind string, stale, active int) {
	if s := h.cur.Load(); s != nil {
		inc(s.evic, stale, kind, "stale")
		inc(s.evic, active, kind, "active")
	}
}
