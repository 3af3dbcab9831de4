package revocation

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
)

// Audit event types.
const (
	// EventSourceUnavailable: a CRL or OCSP fetch failed or its answer was
	// refused (unreachable, stale, bad signature, unauthorised responder).
	// Rate-limited per source and reason.
	EventSourceUnavailable = "revocation_source_unavailable"
	// EventOwnCertificateRevoked (critical): an OCSP responder says one of
	// the gateway's own certificates is revoked.
	EventOwnCertificateRevoked = "own_certificate_revoked"
)

// Sources, as metric labels and in events.
const (
	sourceCRL     = "crl"
	sourceCRLFile = "crl_file"
	sourceOCSP    = "ocsp"
	sourceStaple  = "ocsp_staple"
)

// metrics are the package's collectors. Several Checkers (one per reload)
// and a Stapler may share a registry; they then share the collectors.
type metrics struct {
	checks      *prometheus.CounterVec // source, result: good|revoked|unavailable
	cache       *prometheus.CounterVec // source, result: hit|miss
	fetchErrors *prometheus.CounterVec // source, reason

	// Pre-resolved children for the request path.
	ocspHit, ocspMiss                   prometheus.Counter
	ocspGood, ocspRevoked, ocspUnavail  prometheus.Counter
	crlGood, crlRevoked, crlUnavailable prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_revocation_checks_total", Help: "Revocation checks of a certificate by source and result.",
		}, []string{"source", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_revocation_cache_lookups_total", Help: "Revocation cache lookups on the request path by source and result (hit, miss).",
		}, []string{"source", "result"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_revocation_fetch_errors_total", Help: "Failed or refused CRL and OCSP fetches by source and reason.",
		}, []string{"source", "reason"}),
	}
	if reg != nil {
		var err error
		if m.checks, err = register(reg, m.checks); err != nil {
			return nil, err
		}
		if m.cache, err = register(reg, m.cache); err != nil {
			return nil, err
		}
		if m.fetchErrors, err = register(reg, m.fetchErrors); err != nil {
			return nil, err
		}
	}
	m.ocspHit, m.ocspMiss = m.cache.WithLabelValues(sourceOCSP, "hit"), m.cache.WithLabelValues(sourceOCSP, "miss")
	m.ocspGood = m.checks.WithLabelValues(sourceOCSP, "good")
	m.ocspRevoked = m.checks.WithLabelValues(sourceOCSP, "revoked")
	m.ocspUnavail = m.checks.WithLabelValues(sourceOCSP, "unavailable")
	m.crlGood = m.checks.WithLabelValues(sourceCRL, "good")
	m.crlRevoked = m.checks.WithLabelValues(sourceCRL, "revoked")
	m.crlUnavailable = m.checks.WithLabelValues(sourceCRL, "unavailable")
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name.
func register(reg *prometheus.Registry, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("revocation: register metrics: %w", err)
}

func count(good, rev, unavail prometheus.Counter, err error) {
	switch {
	case err == nil:
		good.Inc()
	case isRevoked(err):
		rev.Inc()
	default:
		unavail.Inc()
	}
}

// env is what Checker and Stapler share: defaulted config, metrics and the
// rate-limited event log.
type env struct {
	cfg Config
	m   *metrics

	mu         sync.Mutex
	lastEvent  map[string]time.Time // by source|url|reason
	suppressed map[string]int
}

func newEnv(cfg Config) (*env, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	return &env{cfg: cfg, m: m, lastEvent: map[string]time.Time{}, suppressed: map[string]int{}}, nil
}

func (e *env) now() time.Time { return e.cfg.Now() }

// suspicious reasons suggest an attack (a forged or replayed answer) rather
// than an outage; their events are critical.
var suspicious = map[string]bool{
	ReasonCRLBadSignature: true, ReasonCRLRollback: true,
	ReasonOCSPBadSignature: true, ReasonOCSPUnauthorized: true, ReasonOCSPWrongCert: true,
}

// fetchFailed counts a failed or refused fetch and records it as an audit
// event and a log line, at most one per source, URL and reason per
// auditInterval (with the number suppressed since the last one), so that a
// dead responder cannot flood the audit log.
func (e *env) fetchFailed(source, url string, err error, fields map[string]any) {
	reason := Reason(err)
	e.m.fetchErrors.WithLabelValues(source, reason).Inc()

	key := source + "|" + url + "|" + reason
	now := e.now()
	e.mu.Lock()
	if last, ok := e.lastEvent[key]; ok && now.Sub(last) < auditInterval && !now.Before(last) {
		e.suppressed[key]++
		e.mu.Unlock()
		return
	}
	if len(e.lastEvent) >= maxDPEntries { // bound the limiter's memory
		clear(e.lastEvent)
		clear(e.suppressed)
	}
	e.lastEvent[key] = now
	n := e.suppressed[key]
	delete(e.suppressed, key)
	e.mu.Unlock()

	sev := audit.Warning
	if suspicious[reason] {
		sev = audit.Critical
	}
	e.cfg.Log.Warn("revocation: source unavailable", "source", source, "url", url, "reason", reason, "err", err, "suppressed", n)
	f := map[string]any{"source": source, "url": url, "suppressed": n}
	for k, v := range fields {
		f[k] = v
	}
	e.cfg.Audit.Emit(audit.Event{Type: EventSourceUnavailable, Severity: sev, Reason: reason, Detail: truncate(err.Error()), Fields: f})
}

// truncate bounds text copied into audit events, at a rune boundary.
func truncate(s string) string {
	const maxDetail = 512
	if len(s) <= maxDetail {
		return s
	}
	i := maxDetail
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
