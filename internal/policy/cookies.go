package policy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/telemetry"
)

func init() { RegisterConfig(CookiesType, NewCookies) }

// Cookie hardening names.
const (
	// CookiesType is the cookies policy's type name in configs.
	CookiesType = "cookies"
	// DefaultCookieMaxAge is CookiesConfig.MaxAge when zero.
	DefaultCookieMaxAge = 24 * time.Hour
	// EventSetCookieDropped records, once per response, that Set-Cookie
	// fields were dropped because they could not be parsed; fields
	// dropped (how many) and error (the first parse error, never the
	// cookie itself).
	EventSetCookieDropped = "set_cookie_dropped"
	// ReasonBadSetCookie is the reason code of EventSetCookieDropped.
	ReasonBadSetCookie = "bad_set_cookie"
	// MetricCookiesDropped counts dropped Set-Cookie fields by route.
	MetricCookiesDropped = "warden_cookies_dropped_total"
)

// CookiesConfig is the config block of the cookies policy, which hardens
// every Set-Cookie of the responses it wraps:
//
//	policies:
//	  - type: cookies              # first in the chain: it sees every Set-Cookie
//	    http_only: true            # default
//	    http_only_exempt: [csrf_token]
//	    same_site: lax             # lax (default), strict or none
//	    max_age: 24h               # default
//
// Every cookie gets Secure. Only the attributes net/http understands are
// kept (Path, Domain, Expires, Max-Age, HttpOnly, Secure, SameSite,
// Partitioned); others are dropped. A Set-Cookie that does not parse is
// dropped, not passed on.
type CookiesConfig struct {
	// HTTPOnly adds HttpOnly to every cookie except HTTPOnlyExempt (default
	// true). false leaves each cookie's HttpOnly as the upstream set it;
	// the policy never removes it.
	HTTPOnly *bool `yaml:"http_only"`
	// HTTPOnlyExempt names cookies that scripts must read (exact,
	// case-sensitive names). Cookies named __Http- or __Host-Http- always
	// get HttpOnly and cannot be exempted.
	HTTPOnlyExempt []string `yaml:"http_only_exempt"`
	// SameSite is lax (default), strict or none. It is a floor: a cookie
	// without SameSite, or with a weaker one, gets this value; a cookie
	// with a stricter one keeps it (strict > lax > none).
	SameSite string `yaml:"same_site"`
	// MaxAge caps a cookie's lifetime: a longer Max-Age is lowered to it,
	// an Expires later than now+MaxAge is moved to now+MaxAge. Session
	// cookies (neither attribute) and deletions are left alone. At least
	// one second; zero means DefaultCookieMaxAge.
	MaxAge time.Duration `yaml:"max_age"`
}

// Cookies is the cookies policy.
type Cookies struct {
	httpOnly   bool
	exempt     map[string]bool
	sameSite   http.SameSite
	maxAge     time.Duration
	maxAgeSecs int
	dropped    cookieMetric
}

var _ Policy = (*Cookies)(nil)

// NewCookies builds the cookies policy, reporting every invalid setting.
func NewCookies(c CookiesConfig) (*Cookies, error) {
	p := &Cookies{httpOnly: c.HTTPOnly == nil || *c.HTTPOnly, exempt: map[string]bool{}, maxAge: c.MaxAge}
	var errs []error
	switch c.SameSite {
	case "", "lax":
		p.sameSite = http.SameSiteLaxMode
	case "strict":
		p.sameSite = http.SameSiteStrictMode
	case "none":
		p.sameSite = http.SameSiteNoneMode
	default:
		errs = append(errs, fmt.Errorf("same_site: %q is not one of lax, strict, none", c.SameSite))
	}
	if p.maxAge == 0 {
		p.maxAge = DefaultCookieMaxAge
	}
	if p.maxAge < time.Second {
		errs = append(errs, fmt.Errorf("max_age: must be at least 1s, got %v", c.MaxAge))
	}
	p.maxAgeSecs = int(p.maxAge / time.Second)
	if len(c.HTTPOnlyExempt) > 0 && !p.httpOnly {
		errs = append(errs, errors.New("http_only_exempt: only meaningful with http_only: true"))
	}
	for i, name := range c.HTTPOnlyExempt {
		switch {
		case !httpguts.ValidHeaderFieldName(name): // a cookie name is an HTTP token
			errs = append(errs, fmt.Errorf("http_only_exempt[%d]: %q is not a valid cookie name", i, name))
		case hasPrefixFold(name, "__Http-") || hasPrefixFold(name, "__Host-Http-"):
			errs = append(errs, fmt.Errorf("http_only_exempt[%d]: %q: the __Http- prefix requires HttpOnly", i, name))
		default:
			p.exempt[name] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Wrap implements Policy.
func (p *Cookies) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&cookieWriter{ResponseWriter: w, p: p, r: r}, r)
	})
}

// String describes the policy for logs.
func (p *Cookies) String() string {
	return fmt.Sprintf("cookies(http_only %v, exempt %d, same_site %v, max_age %v)", p.httpOnly, len(p.exempt), p.sameSite, p.maxAge)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// sameSiteRank orders SameSite values by strictness; unset is weakest.
func sameSiteRank(s http.SameSite) int {
	switch s {
	case http.SameSiteNoneMode:
		return 1
	case http.SameSiteLaxMode:
		return 2
	case http.SameSiteStrictMode:
		return 3
	}
	return 0
}

// harden parses one Set-Cookie field value and returns it hardened, or
// an error if it cannot be parsed or re-serialised faithfully.
func (p *Cookies) harden(line string, now time.Time) (string, error) {
	c, err := http.ParseSetCookie(line)
	if err != nil {
		return "", err
	}
	c.Secure = true
	if p.httpOnly && !p.exempt[c.Name] || hasPrefixFold(c.Name, "__Http-") || hasPrefixFold(c.Name, "__Host-Http-") {
		c.HttpOnly = true
	}
	if sameSiteRank(c.SameSite) < sameSiteRank(p.sameSite) {
		c.SameSite = p.sameSite
	}
	if c.MaxAge > p.maxAgeSecs {
		c.MaxAge = p.maxAgeSecs
	}
	if limit := now.Add(p.maxAge); !c.Expires.IsZero() && c.Expires.After(limit) {
		c.Expires = limit.UTC()
	}
	if hasPrefixFold(c.Name, "__Host-") {
		c.Path, c.Domain = "/", ""
	}
	if err := c.Valid(); err != nil { // String would silently drop (and log) what Valid refuses
		return "", err
	}
	s := c.String()
	if s == "" {
		return "", errors.New("cookie does not serialise")
	}
	return s, nil
}

// cookieWriter hardens Set-Cookie fields just before each header is sent
// (informational ones too: hardening is idempotent).
type cookieWriter struct {
	http.ResponseWriter
	p       *Cookies
	r       *http.Request
	wrote   bool
	audited bool
}

// WriteHeader implements http.ResponseWriter.
func (cw *cookieWriter) WriteHeader(code int) {
	if !cw.wrote {
		cw.apply(code)
		cw.wrote = code >= 200
	}
	cw.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (cw *cookieWriter) Write(b []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriter.Write(b)
}

// Flush forwards streaming flushes.
func (cw *cookieWriter) Flush() {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if f, ok := cw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Flush, deadlines and Hijack.
func (cw *cookieWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

func (cw *cookieWriter) apply(code int) {
	h := cw.ResponseWriter.Header()
	for k, vs := range h { // a handler may have bypassed canonicalisation
		if k != "Set-Cookie" && strings.EqualFold(k, "Set-Cookie") {
			h["Set-Cookie"] = append(h["Set-Cookie"], vs...)
			delete(h, k)
		}
	}
	vs := h["Set-Cookie"]
	if len(vs) == 0 {
		return
	}
	x := ExchangeOf(cw.r)
	var now time.Time
	if x != nil {
		now = x.Env.Clock()
	} else {
		now = time.Now()
	}
	out := make([]string, 0, len(vs))
	dropped := 0
	var first error
	for _, v := range vs {
		s, err := cw.p.harden(v, now)
		if err != nil {
			dropped++
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = out
	}
	if dropped > 0 {
		cw.report(x, code, dropped, first)
	}
}

// report audits dropped fields, once per response, and counts them.
func (cw *cookieWriter) report(x *Exchange, code, dropped int, err error) {
	if x == nil || x.Env == nil {
		return
	}
	route := x.Route
	if route == "" {
		route = "-"
	}
	cw.p.dropped.add(x.Env.Metrics, route, dropped)
	if cw.audited {
		return
	}
	cw.audited = true
	x.Env.Audit.Emit(audit.Event{Type: EventSetCookieDropped, Severity: audit.Warning, RequestID: x.ID, Route: x.Route,
		Remote: x.Remote, Reason: ReasonBadSetCookie, Status: code, Detail: "unparseable Set-Cookie dropped from the response",
		Fields: map[string]any{"policy": CookiesType, "dropped": dropped, "error": err.Error()}})
}

// cookieMetric is MetricCookiesDropped, registered on the gateway's
// registry on first use; policies sharing a registry share it.
type cookieMetric struct {
	mu  sync.Mutex
	reg *telemetry.Metrics
	vec *prometheus.CounterVec
}

func (c *cookieMetric) add(m *telemetry.Metrics, route string, n int) {
	if m == nil || m.Registry == nil {
		return
	}
	c.mu.Lock()
	if c.reg != m {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricCookiesDropped,
			Help: "Set-Cookie fields dropped from responses because they could not be parsed, by route."}, []string{"route"})
		if err := m.Registry.Register(vec); err != nil {
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			existing, isVec := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok || !isVec {
				c.mu.Unlock()
				return
			}
			vec = existing
		}
		c.reg, c.vec = m, vec
	}
	vec := c.vec
	c.mu.Unlock()
	vec.WithLabelValues(route).Add(float64(n))
}
