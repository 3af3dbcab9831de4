// Package telemetry owns Warden's Prometheus metrics. Each gateway has its
// own registry, so tests and reloads never collide on global state.
package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors the gateway updates.
type Metrics struct {
	Registry *prometheus.Registry

	Requests       *prometheus.CounterVec   // route, code
	Latency        *prometheus.HistogramVec // route
	Denies         *prometheus.CounterVec   // route, reason
	Handshakes     *prometheus.CounterVec   // version, cipher, result
	UpstreamErrors *prometheus.CounterVec   // upstream, reason
	Reloads        *prometheus.CounterVec   // result
	Certs          *CertCollector           // seconds to expiry of certificates in use
	OpenConns      *prometheus.GaugeVec     // listener
	Variants       *prometheus.CounterVec   // route, variant (modern|legacy), consumer
}

// New returns metrics registered on a fresh registry, with Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_requests_total", Help: "HTTPS requests by route and response status.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_request_duration_seconds",
			Help:    "Time from request headers read to response complete, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		Denies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_denies_total", Help: "Requests refused by the gateway, by route and reason code.",
		}, []string{"route", "reason"}),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_tls_handshakes_total", Help: "Inbound TLS handshakes by version, cipher suite and result.",
		}, []string{"version", "cipher", "result"}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_upstream_errors_total", Help: "Failed upstream exchanges by upstream and reason code.",
		}, []string{"upstream", "reason"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_config_reloads_total", Help: "Configuration reload attempts by result.",
		}, []string{"result"}),
		Certs: NewCertCollector(),
		Variants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_route_variant_requests_total",
			Help: "Requests to routes with a legacy variant, by variant (modern or legacy) and consumer: the migration's progress.",
		}, []string{"route", "variant", "consumer"}),
		OpenConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_open_connections", Help: "Open client connections by listener.",
		}, []string{"listener"}),
	}
	m.Registry.MustRegister(m.Requests, m.Latency, m.Denies, m.Handshakes, m.UpstreamErrors,
		m.Reloads, m.Certs, m.OpenConns, m.Variants,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
