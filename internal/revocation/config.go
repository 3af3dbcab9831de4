package revocation

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
)

// Defaults for the zero values of Config.
const (
	DefaultCRLRefresh  = 5 * time.Minute
	DefaultTimeout     = 3 * time.Second
	DefaultMaxCRLBytes = 10 << 20
)

// Fixed bounds. They are not configuration: changing them changes what the
// package guarantees.
const (
	// maxClockSkew is how far in the future a CRL's or OCSP response's
	// thisUpdate may be (the same tolerance as OpenSSL's default).
	maxClockSkew = 5 * time.Minute
	// failureTTL is how long a failed fetch is remembered before the
	// request path tries again, so that a dead responder costs one timeout
	// per certificate per failureTTL rather than one per request.
	failureTTL = 10 * time.Second
	// maxOCSPBytes bounds an OCSP response body.
	maxOCSPBytes = 64 << 10
	// maxOCSPEntries bounds the OCSP cache; maxDPEntries the CRL
	// distribution points followed.
	maxOCSPEntries = 1 << 16
	maxDPEntries   = 1024
	// maxRedirects bounds HTTP redirects when fetching.
	maxRedirects = 3
	// auditInterval is the least time between two source-unavailable
	// events for the same source and reason.
	auditInterval = time.Minute
)

// Config configures a Checker or a Stapler. The zero value of each field
// means its default; revocation checking is on by default through every
// source (CRL distribution points and OCSP).
type Config struct {
	// CRLFiles are PEM or DER CRL files, each signed by one of the issuers
	// given to New. They are re-read every CRLRefresh.
	CRLFiles []string
	// CRLRefresh is how often CRLs (files and distribution points) are
	// re-fetched, and how long an OCSP answer is cached at most: the bound
	// for a newly published revocation to take effect. Default 5m.
	CRLRefresh time.Duration
	// DisableDistributionPoints turns off fetching CRLs from the
	// certificates' CRL distribution points.
	DisableDistributionPoints bool
	// DisableOCSP turns off OCSP queries to the certificates' AIA
	// responders.
	DisableOCSP bool
	// Timeout bounds each fetch. Default 3s.
	Timeout time.Duration
	// MaxCRLBytes bounds a CRL, from a file or over HTTP. Default 10 MiB.
	MaxCRLBytes int64
	// StaleGrace is how long after its nextUpdate a CRL is still used.
	// Default 0: a CRL past nextUpdate decides nothing (crl_stale).
	StaleGrace time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// HTTPClient fetches CRLs and OCSP responses; nil means a client on
	// http.DefaultTransport following at most 3 redirects, to http(s) only.
	HTTPClient *http.Client
	// Audit receives source-unavailable and own-certificate-revoked
	// events; nil discards them.
	Audit *audit.Logger
	// Registry receives the metrics; nil means they are not exported.
	Registry *prometheus.Registry
	// Log receives operational messages; nil means slog.Default().
	Log *slog.Logger
}

// Validate reports every problem with c in one error, without filling
// defaults.
func (c Config) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"crl refresh": c.CRLRefresh, "timeout": c.Timeout, "stale grace": c.StaleGrace} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("revocation: %s %v: must not be negative", name, d))
		}
	}
	if c.MaxCRLBytes < 0 {
		errs = append(errs, fmt.Errorf("revocation: max CRL bytes %d: must not be negative", c.MaxCRLBytes))
	}
	for i, f := range c.CRLFiles {
		if f == "" {
			errs = append(errs, fmt.Errorf("revocation: CRL file %d: empty path", i))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.CRLRefresh == 0 {
		c.CRLRefresh = DefaultCRLRefresh
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxCRLBytes == 0 {
		c.MaxCRLBytes = DefaultMaxCRLBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{CheckRedirect: checkRedirect}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %s URL refused", req.URL.Scheme)
	}
	return nil
}
