package jwt

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/ttlcache"
)

// TypeIntrospection is the policy type name of OAuth 2.0 token
// introspection (RFC 7662) in configs, for opaque access tokens.
const TypeIntrospection = "introspection"

// MethodIntrospection is what the introspection policy appends to
// Identity.Methods.
const MethodIntrospection = "introspection"

func init() { policy.RegisterConfig(TypeIntrospection, NewIntrospection) }

// IntrospectionConfig is the introspection policy's config block. Zero
// values mean the defaults of defaults.go.
type IntrospectionConfig struct {
	// Endpoint is the authorization server's https introspection URL;
	// required.
	Endpoint string `yaml:"endpoint"`
	// ClientID and ClientSecretFile authenticate the gateway to the
	// endpoint (HTTP Basic, RFC 6749 section 2.3.1); both required. The
	// file holds the secret alone; surrounding whitespace is ignored.
	ClientID         string          `yaml:"client_id"`
	ClientSecretFile policy.FilePath `yaml:"client_secret_file"`
	// CAFile, if set, holds the PEM roots that verify the endpoint instead
	// of the system roots.
	CAFile policy.FilePath `yaml:"ca_file"`
	// CacheMax bounds the cache of introspection results; 0 means
	// DefaultCacheEntries.
	CacheMax int `yaml:"cache_max"`
	// CacheTTL is the longest a result is reused (never past the token's
	// exp); 0 means DefaultIntrospectionTTL, at most MaxIntrospectionTTL.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// MaxTokenBytes bounds the bearer token; 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// Scopes, Claims, RequireCertificateBinding, ConsumerClaim and Forward
	// are as in Config, applied to the introspection response's members.
	Scopes                    []string            `yaml:"scopes"`
	Claims                    map[string][]string `yaml:"claims"`
	RequireCertificateBinding bool                `yaml:"require_certificate_binding"`
	ConsumerClaim             string              `yaml:"consumer_claim"`
	Forward                   Forward             `yaml:"forward"`
}

// Introspection is the introspection policy: it asks the authorization
// server whether the request's bearer token is active, caches the answer
// no longer than the token lives, and applies the same deny-list,
// certificate binding and authorization rules as the jwt policy. When the
// endpoint fails, the request is refused (503): it fails closed.
type Introspection struct {
	endpoint string
	clientID string
	secret   string
	client   *http.Client
	ttl      time.Duration
	maxBytes int
	rules    *rules
	cache    *ttlcache.Cache[cacheKey, *introspected]
	deny     atomic.Pointer[DenyList]

	// calls counts requests to the endpoint.
	calls atomic.Int64
}

// introspected is one endpoint answer.
type introspected struct {
	active bool
	claims map[string]any
	exp    time.Time // zero if none
	jti    string
	authz  *Error
	header string
}

var _ policy.Policy = (*Introspection)(nil)

// NewIntrospection validates cfg, reporting every problem at once, and
// reads the client secret and CA files. It does no network I/O.
func NewIntrospection(cfg IntrospectionConfig) (*Introspection, error) {
	p := &Introspection{endpoint: cfg.Endpoint, clientID: cfg.ClientID, ttl: cfg.CacheTTL, maxBytes: cfg.MaxTokenBytes}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	u, err := url.Parse(cfg.Endpoint)
	if cfg.Endpoint == "" {
		add(errors.New("endpoint: required: the authorization server's introspection URL"))
	} else if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		add(fmt.Errorf("endpoint: %q is not an https URL", cfg.Endpoint))
	}
	if cfg.ClientID == "" {
		add(errors.New("client_id: required"))
	}
	if cfg.ClientSecretFile == "" {
		add(errors.New("client_secret_file: required"))
	} else if b, err := readFile(string(cfg.ClientSecretFile), 4096); err != nil {
		add(fmt.Errorf("client_secret_file: %w", err))
	} else if p.secret = strings.TrimSpace(string(b)); p.secret == "" {
		add(fmt.Errorf("client_secret_file: %s is empty", cfg.ClientSecretFile))
	}
	if p.ttl == 0 {
		p.ttl = DefaultIntrospectionTTL
	}
	if p.ttl > MaxIntrospectionTTL {
		add(fmt.Errorf("cache_ttl: %v is more than %v", cfg.CacheTTL, MaxIntrospectionTTL))
	}
	if p.maxBytes == 0 {
		p.maxBytes = DefaultMaxTokenBytes
	}
	if p.maxBytes < 16 || p.maxBytes > MaxMaxTokenBytes {
		add(fmt.Errorf("max_token_bytes: %d is not between 16 and %d", cfg.MaxTokenBytes, MaxMaxTokenBytes))
	}
	n, err := cacheEntries("cache_max", cfg.CacheMax)
	add(err)
	p.cache = ttlcache.New[cacheKey, *introspected](n)
	var roots *x509.CertPool
	if cfg.CAFile != "" {
		if roots, err = readRoots(string(cfg.CAFile)); err != nil {
			add(fmt.Errorf("ca_file: %w", err))
		}
	}
	p.client = httpClient(roots)
	p.rules, err = compileRules(cfg.Scopes, cfg.Claims, cfg.RequireCertificateBinding, cfg.ConsumerClaim, cfg.Forward)
	add(err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.deny.Store(NewDenyList())
	return p, nil
}

// UseDenyList makes the policy consult d for revoked jti values; see
// Policy.UseDenyList.
func (p *Introspection) UseDenyList(d *DenyList) {
	if d != nil {
		p.deny.Store(d)
	}
}

// ClaimsHeader returns the canonical name of the configured claims header,
// or "". The gateway strips it from requests on every route.
func (p *Introspection) ClaimsHeader() string { return p.rules.claimsHeader }

// String describes the policy for logs; it never shows the secret.
func (p *Introspection) String() string {
	return fmt.Sprintf("introspection(endpoint %s; client_id %s; cache_ttl %v; scopes %v)", p.endpoint, p.clientID, p.ttl, p.rules.scopes)
}

// Wrap implements policy.Policy.
func (p *Introspection) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.rules.strip(r.Header)
		x := policy.ExchangeOf(r)
		if x == nil {
			x = &policy.Exchange{}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
		}
		res, e := p.authenticate(r, x)
		if e != nil {
			reject(w, r, TypeIntrospection, e, p.rules.scopeText)
			return
		}
		p.rules.apply(x, r, MethodIntrospection, res.claims)
		p.rules.forward(r.Header, res.header)
		next.ServeHTTP(w, r)
	})
}

func (p *Introspection) authenticate(r *http.Request, x *policy.Exchange) (*introspected, *Error) {
	raw, e := bearer(r, p.maxBytes)
	if e != nil {
		return nil, e
	}
	now := x.Env.Clock()
	k := cacheKey(sha256.Sum256([]byte(raw)))
	res, ok := p.cache.Get(k, now)
	if !ok {
		var err error
		if res, err = p.introspect(r.Context(), raw, now); err != nil {
			p.failed(x, err)
			return nil, &Error{Reason: ReasonIntrospectionFailed, Err: err}
		}
		until := now.Add(p.ttl)
		if !res.exp.IsZero() && res.exp.Before(until) {
			until = res.exp
		}
		p.cache.Put(k, res, until, now)
	}
	switch {
	case !res.active:
		return nil, fail(ReasonTokenInactive, "the authorization server says the token is not active")
	case !res.exp.IsZero() && !now.Before(res.exp):
		return nil, fail(ReasonExpired, "exp has passed")
	case res.jti != "" && p.deny.Load().Contains(res.jti):
		return nil, fail(ReasonJTIRevoked, "jti %q is on the deny-list", truncate(res.jti))
	}
	if e := p.rules.bind(res.claims, r, x); e != nil {
		return nil, e
	}
	if res.authz != nil {
		return nil, &Error{Reason: res.authz.Reason, Err: res.authz.Err}
	}
	return res, nil
}

// introspect asks the endpoint about token (RFC 7662 section 2).
func (p *Introspection) introspect(ctx context.Context, token string, now time.Time) (*introspected, error) {
	p.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.secret))
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: status %d", p.endpoint, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", p.endpoint, err)
	}
	if len(body) > maxIntrospectionBytes {
		return nil, fmt.Errorf("POST %s: response larger than %d bytes", p.endpoint, maxIntrospectionBytes)
	}
	claims, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: response: %w", p.endpoint, err)
	}
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, fmt.Errorf("POST %s: response: active is missing or not a boolean", p.endpoint)
	}
	res := &introspected{active: active}
	if !active {
		return res, nil
	}
	exp, hasExp, err := numericDate(claims, "exp")
	if err != nil {
		return nil, fmt.Errorf("POST %s: response: %w", p.endpoint, err)
	}
	if hasExp {
		res.exp = exp
	}
	delete(claims, "active")
	res.claims = claims
	res.jti, _ = claims["jti"].(string)
	res.authz = p.rules.authorize(claims)
	res.header = p.rules.claimsValue(claims)
	return res, nil
}

// failed records an endpoint failure: the deny that follows counts the
// metric; this event says what failed.
func (p *Introspection) failed(x *policy.Exchange, err error) {
	if x.Env == nil {
		return
	}
	x.Env.Audit.Emit(audit.Event{Type: EventIntrospectionFailed, Severity: audit.Warning, RequestID: x.ID, Route: x.Route,
		Remote: x.Remote, Reason: ReasonIntrospectionFailed, Detail: "the introspection endpoint failed; the request is refused",
		Fields: map[string]any{"endpoint": p.endpoint, "cause": truncate(err.Error())}})
}
