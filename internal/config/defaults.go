package config

import (
	"path/filepath"
	"time"

	"github.com/wardengw/warden/internal/pki/ca"
)

// Defaults. Every default is the safe choice; all of them live here.
const (
	DefaultHTTPSAddress      = "127.0.0.1:8443"
	DefaultAdminAddress      = "127.0.0.1:9443"
	DefaultMaxConnections    = 10000
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyBytes      = 10 << 20
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultGCHeapFloor       = 32 << 20
	MaxGCHeapFloor           = 16 << 30

	DefaultProfile               = "intermediate"
	DefaultSessionTicketRotation = 24 * time.Hour
	DefaultHSTSMaxAge            = 2 * 365 * 24 * time.Hour

	// An internal_ca certificate's key type and lifetime (the CA's server
	// default), and the lifetimes accepted.
	DefaultInternalCAKeyType  = KeyTypeECDSAP256
	DefaultInternalCALifetime = ca.DefaultServerLifetime
	MinInternalCALifetime     = time.Hour
	MaxInternalCALifetime     = 397 * 24 * time.Hour // the CA/Browser Forum's 398 days, less a day

	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConns          = 64

	// A legacy variant is limited per client to this, unless set lower or higher.
	DefaultLegacyRate  = 5.0
	DefaultLegacyBurst = 10

	DefaultCRLRefresh        = 5 * time.Minute
	DefaultRevocationTimeout = 3 * time.Second
	DefaultMaxCRLBytes       = 10 << 20

	DefaultCTPollInterval = 5 * time.Minute
	DefaultCTBatchSize    = 256
	DefaultCTStateFile    = "ct-state.json"

	DefaultClientAuthMode = "none"
	DefaultAuditFile      = "-"
	DefaultStorePath      = "warden.db"
	DefaultLogLevel       = "info"
	DefaultLogFormat      = "text"
)

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// applyDefaults fills every unset field with its default.
func (c *Config) applyDefaults() {
	h := &c.Server.HTTPS
	setDefault(&h.Address, DefaultHTTPSAddress)
	setDefault(&h.MaxConnections, DefaultMaxConnections)
	setDefault(&h.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&h.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&h.ReadTimeout, DefaultReadTimeout)
	setDefault(&h.WriteTimeout, DefaultWriteTimeout)
	setDefault(&h.IdleTimeout, DefaultIdleTimeout)
	setDefault(&h.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&h.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&c.Server.ShutdownTimeout, DefaultShutdownTimeout)
	// 0 is a setting (off): only a missing key takes the default.
	if _, set := c.pos["server.gc_heap_floor"]; !set {
		c.Server.GCHeapFloor = DefaultGCHeapFloor
	}
	if c.Server.Admin != nil {
		setDefault(&c.Server.Admin.Address, DefaultAdminAddress)
	}

	t := &c.TLS
	setDefault(&t.Profile, DefaultProfile)
	setDefault(&t.SessionTicketRotation, DefaultSessionTicketRotation)
	setDefault(&t.ClientAuth.Mode, DefaultClientAuthMode)
	setDefault(&t.HSTS.MaxAge, DefaultHSTSMaxAge)
	if t.HSTS.IncludeSubdomains == nil {
		yes := true
		t.HSTS.IncludeSubdomains = &yes
	}

	for i := range t.Certificates {
		if ic := t.Certificates[i].InternalCA; ic != nil {
			setDefault(&ic.KeyType, DefaultInternalCAKeyType)
			setDefault(&ic.Lifetime, DefaultInternalCALifetime)
		}
	}

	yes := true
	if t.OCSPStapling == nil {
		t.OCSPStapling = &yes
	}
	rv := &c.Revocation
	setDefault(&rv.CRLRefresh, DefaultCRLRefresh)
	setDefault(&rv.Timeout, DefaultRevocationTimeout)
	setDefault(&rv.MaxCRLBytes, DefaultMaxCRLBytes)
	if rv.CRLDistributionPoints == nil {
		rv.CRLDistributionPoints = &yes
	}
	if rv.OCSP == nil {
		rv.OCSP = &yes
	}

	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		setDefault(&u.DialTimeout, DefaultDialTimeout)
		setDefault(&u.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
		setDefault(&u.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
		setDefault(&u.IdleConnTimeout, DefaultIdleConnTimeout)
		setDefault(&u.MaxIdleConns, DefaultMaxIdleConns)
	}
	for i := range c.Routes {
		setDefault(&c.Routes[i].PathPrefix, "/")
		if l := c.Routes[i].Legacy; l != nil {
			setDefault(&l.RateLimit.RequestsPerSecond, DefaultLegacyRate)
			setDefault(&l.RateLimit.Burst, DefaultLegacyBurst)
		}
	}
	setDefault(&c.Audit.File, DefaultAuditFile)
	setDefault(&c.Store.Path, DefaultStorePath)
	setDefault(&c.Expiry.Interval, time.Hour)
	if len(c.Expiry.Thresholds) == 0 {
		c.Expiry.Thresholds = []time.Duration{30 * 24 * time.Hour, 14 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}
	}
	if a := c.ACME; a != nil {
		if len(a.Challenges) == 0 {
			a.Challenges = []string{"tls-alpn-01"}
			if c.Server.HTTP != nil {
				a.Challenges = []string{"http-01", "tls-alpn-01"}
			}
		}
		setDefault(&a.Storage, filepath.Join(filepath.Dir(c.Store.Path), "acme"))
	}
	if c.CT != nil {
		setDefault(&c.CT.PollInterval, DefaultCTPollInterval)
		setDefault(&c.CT.BatchSize, DefaultCTBatchSize)
		setDefault(&c.CT.StateFile, DefaultCTStateFile)
	}
	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)
}
