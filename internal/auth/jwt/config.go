package jwt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/ttlcache"
)

// Type is the policy type name of JWT access tokens in configs.
const Type = "jwt"

// Method is what the jwt policy appends to Identity.Methods.
const Method = "jwt"

func init() { policy.RegisterConfig(Type, New) }

// Config is the jwt policy's config block. Zero values mean the defaults
// of defaults.go.
type Config struct {
	// Issuers are the token issuers this route trusts; at least one.
	Issuers []Issuer `yaml:"issuers"`
	// RequireExp refuses tokens without exp; nil means true.
	RequireExp *bool `yaml:"require_exp"`
	// MaxTokenBytes bounds the bearer token; 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// Cache bounds the cache of verified tokens.
	Cache Cache `yaml:"cache"`
	// Scopes are all required: each must be in the token's "scope"
	// (space-separated) or "scp" (array) claim; else 403.
	Scopes []string `yaml:"scopes"`
	// Claims are rules: the named top-level claim must equal one of the
	// values (or, if an array, contain one); else 403. Numbers and
	// booleans compare by their JSON text ("42", "true").
	Claims map[string][]string `yaml:"claims"`
	// RequireCertificateBinding refuses tokens without cnf.x5t#S256 (RFC
	// 8705). A token that has one is always checked against the
	// connection's verified client certificate.
	RequireCertificateBinding bool `yaml:"require_certificate_binding"`
	// ConsumerClaim names the string claim that becomes
	// Identity.Consumer when no earlier policy named one; "" means
	// DefaultConsumerClaim.
	ConsumerClaim string `yaml:"consumer_claim"`
	// Forward configures what the upstream learns about the token.
	Forward Forward `yaml:"forward"`
}

// Issuer is one trusted token issuer.
type Issuer struct {
	// Issuer is the exact iss value; required.
	Issuer string `yaml:"issuer"`
	// JWKSURL is an https URL of the issuer's JWK set, fetched lazily on
	// first use, refreshed every JWKSRefresh and on an unknown kid (at most
	// once per UnknownKIDInterval). Exactly one of JWKSURL and JWKSFile.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSFile is a local JWK set, read when the policy is built.
	JWKSFile policy.FilePath `yaml:"jwks_file"`
	// CAFile, if set, holds the PEM roots that verify jwks_url's server
	// instead of the system roots.
	CAFile policy.FilePath `yaml:"ca_file"`
	// JWKSRefresh is how often jwks_url is re-fetched; 0 means
	// DefaultJWKSRefresh.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// Audiences: a token's aud must name at least one; required.
	Audiences []string `yaml:"audiences"`
	// Algorithms is the allow-list of signature algorithms; empty means
	// DefaultAlgorithms. "none" and HS* cannot be configured.
	Algorithms []string `yaml:"algorithms"`
	// RequiredClaims must be present in every token of this issuer.
	RequiredClaims []string `yaml:"required_claims"`
	// Leeway is the clock skew allowed on exp, nbf and iat; 0 means
	// DefaultLeeway, at most MaxLeeway.
	Leeway time.Duration `yaml:"leeway"`
}

// Cache configures a cache of verified tokens or introspection results.
type Cache struct {
	// MaxEntries bounds the cache; 0 means DefaultCacheEntries.
	MaxEntries int `yaml:"max_entries"`
}

// Forward configures what the upstream learns about the token.
type Forward struct {
	// ClaimsHeader, if set, names a header carrying a compact ASCII JSON
	// object of the Claims below. Whatever the client sent under this name
	// is always removed.
	ClaimsHeader string `yaml:"claims_header"`
	// Claims are the claims copied into ClaimsHeader; empty means
	// DefaultForwardClaims.
	Claims []string `yaml:"claims"`
	// StripAuthorization removes the Authorization header before the
	// request goes upstream.
	StripAuthorization bool `yaml:"strip_authorization"`
}

// Policy is the jwt policy: it verifies the request's bearer JWT against
// the route's issuers, checks revocation and certificate binding,
// authorizes scopes and claims, and records the identity.
type Policy struct {
	issuers    map[string]*issuer
	anyAlg     map[string]bool // union of the issuers' allow-lists
	requireExp bool
	maxBytes   int
	rules      *rules
	cache      *ttlcache.Cache[cacheKey, *Token]
	deny       atomic.Pointer[DenyList]
	files      []string

	// verifications counts full (uncached) signature verifications.
	verifications atomic.Int64
}

// issuer is one compiled Issuer.
type issuer struct {
	name      string
	keys      keySource
	audiences []string
	algs      []jose.SignatureAlgorithm
	algSet    map[string]bool
	required  []string
	leeway    time.Duration
}

var _ policy.Policy = (*Policy)(nil)

// New validates cfg, reporting every problem at once, and reads any
// jwks_file and ca_file. It does no network I/O: key sets from URLs are
// fetched on first use.
func New(cfg Config) (*Policy, error) {
	p := &Policy{
		issuers:    map[string]*issuer{},
		anyAlg:     map[string]bool{},
		requireExp: cfg.RequireExp == nil || *cfg.RequireExp,
		maxBytes:   cfg.MaxTokenBytes,
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if p.maxBytes == 0 {
		p.maxBytes = DefaultMaxTokenBytes
	}
	if p.maxBytes < 256 || p.maxBytes > MaxMaxTokenBytes {
		add(fmt.Errorf("max_token_bytes: %d is not between 256 and %d", cfg.MaxTokenBytes, MaxMaxTokenBytes))
	}
	entries, err := cacheEntries("cache.max_entries", cfg.Cache.MaxEntries)
	add(err)
	p.cache = ttlcache.New[cacheKey, *Token](entries)
	if len(cfg.Issuers) == 0 {
		add(errors.New("issuers: required: at least one trusted issuer"))
	}
	for i, ic := range cfg.Issuers {
		path := fmt.Sprintf("issuers[%d]", i)
		is, err := compileIssuer(ic, path)
		add(err)
		if is == nil {
			continue
		}
		if _, dup := p.issuers[is.name]; dup {
			add(fmt.Errorf("%s.issuer: %q is configured twice", path, is.name))
		}
		p.issuers[is.name] = is
		for a := range is.algSet {
			p.anyAlg[a] = true
		}
		if ic.JWKSFile != "" {
			p.files = append(p.files, string(ic.JWKSFile))
		}
	}
	p.rules, err = compileRules(cfg.Scopes, cfg.Claims, cfg.RequireCertificateBinding, cfg.ConsumerClaim, cfg.Forward)
	add(err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.deny.Store(NewDenyList())
	return p, nil
}

func compileIssuer(ic Issuer, path string) (*issuer, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(path+"."+format, args...)) }
	is := &issuer{name: ic.Issuer, audiences: ic.Audiences, required: ic.RequiredClaims, leeway: ic.Leeway, algSet: map[string]bool{}}
	if ic.Issuer == "" {
		add("issuer: required: the exact iss value of this issuer's tokens")
	}
	if len(ic.Audiences) == 0 {
		add("audiences: required: the aud values that name this route (a token for another service must not be accepted here)")
	}
	for j, a := range ic.Audiences {
		if a == "" {
			add("audiences[%d]: empty", j)
		}
	}
	if is.leeway == 0 {
		is.leeway = DefaultLeeway
	}
	if is.leeway > MaxLeeway {
		add("leeway: %v is more than %v", ic.Leeway, MaxLeeway)
	}
	algs := ic.Algorithms
	if algs == nil {
		algs = DefaultAlgorithms
	}
	if len(algs) == 0 {
		add("algorithms: an empty list would refuse every token; remove it for the default %v", DefaultAlgorithms)
	}
	for j, a := range algs {
		ja, ok := supportedAlgs[a]
		switch {
		case ok:
			if !is.algSet[a] {
				is.algs = append(is.algs, ja)
			}
			is.algSet[a] = true
		case strings.EqualFold(a, "none"):
			add("algorithms[%d]: %q: unsigned tokens can never be allowed", j, a)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			add("algorithms[%d]: %q: HMAC cannot be used with an issuer's public key set", j, a)
		default:
			add("algorithms[%d]: %q is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", j, a)
		}
	}
	for j, c := range ic.RequiredClaims {
		if c == "" {
			add("required_claims[%d]: empty", j)
		}
	}
	var roots *x509.CertPool
	if ic.CAFile != "" {
		var err error
		if roots, err = readRoots(string(ic.CAFile)); err != nil {
			add("ca_file: %v", err)
		}
	}
	refresh := ic.JWKSRefresh
	if refresh == 0 {
		refresh = DefaultJWKSRefresh
	}
	switch {
	case ic.JWKSURL != "" && ic.JWKSFile != "":
		add("jwks_url, jwks_file: give one, not both")
	case ic.JWKSURL != "":
		u, err := url.Parse(ic.JWKSURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
			add("jwks_url: %q is not an https URL", ic.JWKSURL)
		}
		if refresh < 30*time.Second || refresh > 24*time.Hour {
			add("jwks_refresh: %v is not between 30s and 24h", ic.JWKSRefresh)
		}
		is.keys = newRemoteKeys(ic.JWKSURL, httpClient(roots), refresh)
	case ic.JWKSFile != "":
		if ic.CAFile != "" {
			add("ca_file: only used with jwks_url")
		}
		data, err := readFile(string(ic.JWKSFile), maxJWKSBytes)
		if err != nil {
			add("jwks_file: %v", err)
			break
		}
		set, err := parseKeySet(data)
		if err != nil {
			add("jwks_file: %s: %v", ic.JWKSFile, err)
			break
		}
		is.keys = staticKeys{set}
	default:
		add("jwks_url or jwks_file: required: where this issuer's public keys are")
	}
	if len(errs) > 0 {
		return is, errors.Join(errs...)
	}
	return is, nil
}

// httpClient is the client of key set and introspection fetches: TLS 1.2
// or later, verified against roots (the system's when nil), no proxy from
// the environment, no redirects (a redirect could lead a fetch anywhere).
func httpClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: fetchTimeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
			TLSHandshakeTimeout: fetchTimeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     time.Minute,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func readFile(name string, limit int) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}

func readRoots(name string) (*x509.CertPool, error) {
	data, err := readFile(name, 4<<20)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", name)
	}
	return pool, nil
}

func cacheEntries(key string, n int) (int, error) {
	if n == 0 {
		return DefaultCacheEntries, nil
	}
	if n < 1 || n > 1_000_000 {
		return DefaultCacheEntries, fmt.Errorf("%s: %d is not between 1 and 1000000", key, n)
	}
	return n, nil
}

// reservedHeaders may not be the claims header: stripping them from every
// request would break the gateway or other policies.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Cookie": true, "Host": true, "Connection": true, "Content-Length": true,
	"Content-Type": true, "Transfer-Encoding": true, "Te": true, "Trailer": true, "Upgrade": true,
	"Keep-Alive": true, "Proxy-Connection": true, "X-Request-Id": true, "Forwarded": true,
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "Client-Cert": true,
	"Client-Cert-Chain": true, "Dpop": true,
}

func canonicalHeader(h string) (string, error) {
	c := textproto.CanonicalMIMEHeaderKey(h)
	if !httpguts.ValidHeaderFieldName(h) || reservedHeaders[c] {
		return "", fmt.Errorf("forward.claims_header: %q is not a header name the policy may own", h)
	}
	return c, nil
}

// Files returns the jwks_file names, for the gateway's reload watch.
func (p *Policy) Files() []string { return slices.Clone(p.files) }

// ClaimsHeader returns the canonical name of the configured claims header,
// or "". The gateway strips it from requests on every route.
func (p *Policy) ClaimsHeader() string { return p.rules.claimsHeader }

// UseDenyList makes the policy consult d for revoked jti values. The
// gateway calls it on every jwt and introspection policy it builds, with
// the one DenyList its admin API feeds; until then a policy has its own,
// empty list.
func (p *Policy) UseDenyList(d *DenyList) {
	if d != nil {
		p.deny.Store(d)
	}
}

// String describes the policy for logs.
func (p *Policy) String() string {
	names := make([]string, 0, len(p.issuers))
	for n := range p.issuers {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("jwt(issuers %v; scopes %v; require_exp %v; certificate binding required %v)",
		names, p.rules.scopes, p.requireExp, p.rules.requireBinding)
}
