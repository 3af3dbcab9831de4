package mtls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/textproto"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/ttlcache"
)

// Type is the policy type name used in configs.
const Type = "mtls"

// Revocation modes.
const (
	// RevocationHardFail refuses a certificate whose revocation status
	// cannot be established (401 revocation_unavailable).
	RevocationHardFail = "hard_fail"
	// RevocationSoftFail admits it, with a metric and a
	// revocation_soft_fail audit event.
	RevocationSoftFail = "soft_fail"
	// RevocationOff skips revocation checking.
	RevocationOff = "off"
)

func init() { policy.RegisterConfig(Type, New) }

// Config is the mtls policy's config block. Zero values mean the defaults
// of defaults.go.
type Config struct {
	// CAFiles are PEM files forming the route's trust bundle; required.
	// Every certificate in them is a trust anchor. A relative path is
	// resolved against the config file's folder.
	CAFiles []policy.FilePath `yaml:"ca_files"`
	// MaxChainDepth bounds the verified chain, leaf and trust anchor
	// included; 0 means DefaultMaxChainDepth.
	MaxChainDepth int `yaml:"max_chain_depth"`
	// MinRSABits is the smallest RSA key accepted in a chain, at least
	// (and by default) DefaultMinRSABits. Elliptic curves below P-256 are
	// always refused.
	MinRSABits int `yaml:"min_rsa_bits"`
	// Revocation is hard_fail (default), soft_fail or off.
	Revocation string `yaml:"revocation"`
	// MaxConnectionAge refuses requests on connections older than this,
	// closing them; 0 means no limit.
	MaxConnectionAge time.Duration `yaml:"max_connection_age"`
	// Consumers map a certificate to a consumer name: the first rule that
	// matches names it.
	Consumers []ConsumerRule `yaml:"consumers"`
	// Allow, when present, authorizes only certificates (or consumers)
	// matching one of its rules; others get 403 client_not_authorized.
	// Absent means any verified certificate is authorized; an empty list
	// is a config error.
	Allow []Match `yaml:"allow"`
	// Forward configures what the upstream learns about the client.
	Forward Forward `yaml:"forward"`
}

// ConsumerRule names the consumer of certificates matching Match.
type ConsumerRule struct {
	Name  string `yaml:"name"`
	Match Match  `yaml:"match"`
}

// Forward configures the identity headers sent upstream. Whatever the
// client sent under these names is always removed first.
type Forward struct {
	// ClientCertHeaders sends RFC 9440 Client-Cert (the leaf) and
	// Client-Cert-Chain (the intermediates); nil means true.
	ClientCertHeaders *bool `yaml:"client_cert_headers"`
	// IdentityHeader, if set, names a header carrying a compact JSON
	// object: consumer, spiffe_id, subject, serial (hex) and spki_sha256
	// (base64).
	IdentityHeader string `yaml:"identity_header"`
}

type consumerRule struct {
	name string
	m    matcher
}

// Policy is the mtls policy: it verifies the connection's client
// certificate against the route's trust bundle, checks its revocation,
// establishes the identity, authorizes it and forwards it upstream.
type Policy struct {
	files          []string
	roots          *x509.CertPool
	anchorSubjects map[string]bool // RawSubject of each trust anchor
	maxDepth       int
	minRSABits     int
	revocation     string
	maxAge         time.Duration
	consumers      []consumerRule
	allow          []matcher // nil: every verified certificate
	certHeaders    bool
	identityHeader string // canonical; "" for none

	cache     *ttlcache.Cache[cacheKey, *result]
	softFails softFailMetric
}

var _ policy.Policy = (*Policy)(nil)

// New validates cfg, reporting every problem at once, reads the trust
// bundle and compiles the matchers. It does no network I/O.
func New(cfg Config) (*Policy, error) {
	p := &Policy{
		files:       filePaths(cfg.CAFiles),
		maxDepth:    orDefault(cfg.MaxChainDepth, DefaultMaxChainDepth),
		minRSABits:  orDefault(cfg.MinRSABits, DefaultMinRSABits),
		revocation:  cfg.Revocation,
		maxAge:      cfg.MaxConnectionAge,
		certHeaders: cfg.Forward.ClientCertHeaders == nil || *cfg.Forward.ClientCertHeaders,
		cache:       ttlcache.New[cacheKey, *result](cacheSize),
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if p.revocation == "" {
		p.revocation = DefaultRevocation
	}
	switch p.revocation {
	case RevocationHardFail, RevocationSoftFail, RevocationOff:
	default:
		add(fmt.Errorf("revocation: %q is not one of hard_fail, soft_fail, off", cfg.Revocation))
	}
	if p.maxDepth < 1 || p.maxDepth > 16 {
		add(fmt.Errorf("max_chain_depth: %d is not between 1 and 16", cfg.MaxChainDepth))
	}
	if p.minRSABits < DefaultMinRSABits || p.minRSABits > 16384 {
		add(fmt.Errorf("min_rsa_bits: %d is not between %d and 16384", cfg.MinRSABits, DefaultMinRSABits))
	}
	if p.maxAge < 0 {
		add(fmt.Errorf("max_connection_age: %v is negative", p.maxAge))
	}
	for i, c := range cfg.Consumers {
		path := fmt.Sprintf("consumers[%d]", i)
		if !validName(c.Name) {
			add(fmt.Errorf("%s.name: %q: want 1-128 letters, digits and . _ - : @, starting with a letter or digit", path, c.Name))
		}
		m, err := compileMatch(c.Match, path+".match", false)
		add(err)
		p.consumers = append(p.consumers, consumerRule{name: c.Name, m: m})
	}
	if cfg.Allow != nil {
		if len(cfg.Allow) == 0 {
			add(errors.New("allow: an empty list would deny everything; remove allow to admit every verified certificate, or list who may pass"))
		}
		p.allow = []matcher{}
		for i, a := range cfg.Allow {
			m, err := compileMatch(a, fmt.Sprintf("allow[%d]", i), true)
			add(err)
			p.allow = append(p.allow, m)
		}
	}
	if h := cfg.Forward.IdentityHeader; h != "" {
		p.identityHeader = textproto.CanonicalMIMEHeaderKey(h)
		if !httpguts.ValidHeaderFieldName(h) || reservedHeaders[p.identityHeader] {
			add(fmt.Errorf("forward.identity_header: %q is not a header name the policy may own", h))
		}
	}
	if len(cfg.CAFiles) == 0 {
		add(errors.New("ca_files: required: the PEM files of the CAs this route trusts for client certificates"))
	}
	var err error
	p.roots, p.anchorSubjects, err = loadBundle(filePaths(cfg.CAFiles), p.minRSABits)
	add(err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// reservedHeaders may not be the identity header: stripping them from
// every request would break the gateway or other policies.
var reservedHeaders = map[string]bool{
	HeaderClientCert: true, HeaderClientCertChain: true, "Authorization": true, "Cookie": true,
	"Host": true, "Connection": true, "Content-Length": true, "Content-Type": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true,
	"X-Request-Id": true, "Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true,
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func validName(s string) bool {
	if s == "" || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	return allBytes(s, func(b byte) bool { return isAlnum(b) || b == '.' || b == '_' || b == '-' || b == ':' || b == '@' })
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// loadBundle reads the trust anchors, refusing weak keys among them.
func loadBundle(files []string, minRSABits int) (*x509.CertPool, map[string]bool, error) {
	pool, subjects := x509.NewCertPool(), map[string]bool{}
	var errs []error
	for i, name := range files {
		certs, err := pki.ReadCertificates(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca_files[%d]: %w", i, err))
			continue
		}
		for _, c := range certs {
			if err := checkKey(c.PublicKey, minRSABits); err != nil {
				errs = append(errs, fmt.Errorf("ca_files[%d]: %s: %q: %w", i, name, c.Subject, err))
				continue
			}
			pool.AddCert(c)
			subjects[string(c.RawSubject)] = true
		}
	}
	return pool, subjects, errors.Join(errs...)
}

// Files returns the trust bundle's files, for the gateway's reload watch.
func (p *Policy) Files() []string { return append([]string(nil), p.files...) }

// IdentityHeader returns the canonical name of the configured identity
// header, or "". The gateway strips it from requests on every route.
func (p *Policy) IdentityHeader() string { return p.identityHeader }

// String describes the policy for logs.
func (p *Policy) String() string {
	return fmt.Sprintf("mtls(ca_files %v; revocation %s; consumers %d; allow %s)", p.files, p.revocation, len(p.consumers),
		map[bool]string{true: "any verified", false: fmt.Sprint(len(p.allow), " rules")}[p.allow == nil])
}

func filePaths(fs []policy.FilePath) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}
