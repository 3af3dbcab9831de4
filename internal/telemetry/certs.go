package telemetry

import (
	"crypto/x509"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CertInfo names one certificate in use and when it expires.
type CertInfo struct {
	Use      string // server, client_ca, upstream_ca, upstream_client, …
	Name     string // subject common name or file
	Serial   string
	NotAfter time.Time
}

// CertInfoOf describes a certificate for the expiry metric.
func CertInfoOf(use, name string, c *x509.Certificate) CertInfo {
	if name == "" {
		name = c.Subject.CommonName
	}
	return CertInfo{Use: use, Name: name, Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter}
}

// CertCollector exports warden_certificate_expiry_seconds, computed at
// scrape time so the value is always current.
type CertCollector struct {
	desc  *prometheus.Desc
	certs atomic.Pointer[[]CertInfo]
	now   func() time.Time
}

// NewCertCollector returns an empty collector.
func NewCertCollector() *CertCollector {
	c := &CertCollector{
		desc: prometheus.NewDesc("warden_certificate_expiry_seconds",
			"Seconds until each certificate in use expires (negative once expired).",
			[]string{"use", "name", "serial"}, nil),
		now: time.Now,
	}
	c.certs.Store(&[]CertInfo{})
	return c
}

// Set replaces the certificates reported (at start and on every reload).
func (c *CertCollector) Set(certs []CertInfo) { c.certs.Store(&certs) }

// Describe implements prometheus.Collector.
func (c *CertCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *CertCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	seen := map[[3]string]bool{}
	for _, ci := range *c.certs.Load() {
		k := [3]string{ci.Use, ci.Name, ci.Serial}
		if seen[k] {
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, ci.NotAfter.Sub(now).Seconds(), ci.Use, ci.Name, ci.Serial)
	}
}
