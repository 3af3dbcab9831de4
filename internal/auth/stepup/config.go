package stepup

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/policy"
)

// Type is the policy type name used in configs.
const Type = "stepup"

func init() { policy.RegisterConfig(Type, New) }

// Config is the stepup policy's config block. Zero values mean the
// defaults of defaults.go.
type Config struct {
	// Methods lists the critical methods of the route (matched without
	// regard to case; HEAD is critical when GET is). Absent: every method
	// is critical. An empty list is a config error.
	Methods []string `yaml:"methods"`
	// TOTP accepts a TOTP code in HeaderOTP; absent means true.
	TOTP *bool `yaml:"totp"`
	// Approval, if present, turns a critical request without a code into
	// an out-of-band approval request.
	Approval *ApprovalConfig `yaml:"approval"`
	// HeaderOTP and HeaderApproval name the request headers; empty means
	// DefaultHeaderOTP and DefaultHeaderApproval.
	HeaderOTP      string `yaml:"header_otp"`
	HeaderApproval string `yaml:"header_approval"`
}

// ApprovalConfig is the stepup policy's approval block.
type ApprovalConfig struct {
	// Webhook is the URL notified of every approval request (a JSON
	// POST). It must be https, or http to a loopback IP address.
	Webhook string `yaml:"webhook"`
	// Timeout is how long an approval may be decided and used; zero means
	// DefaultApprovalTimeout, at most MaxApprovalTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodyBytes is the largest body a request may have to be approved
	// (larger: 413); zero means DefaultMaxBodyBytes.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxPending bounds the pending approvals of one consumer (more: 429);
	// zero means DefaultMaxPending.
	MaxPending int `yaml:"max_pending"`
	// RetryAfter is the Retry-After of a 202; zero means DefaultRetryAfter.
	RetryAfter time.Duration `yaml:"retry_after"`
}

// ByteSize is a size in bytes: 1048576, 64KiB, 1MiB or 1GiB.
type ByteSize int64

// UnmarshalText parses a size with an optional KiB, MiB or GiB suffix.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s, mult := strings.TrimSpace(string(text)), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return fmt.Errorf("expected a size such as 65536, 64KiB or 1MiB, found %q", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// Policy is the stepup policy: critical requests need, on top of the
// consumer an earlier policy authenticated, a fresh TOTP code or an
// operator's out-of-band approval.
type Policy struct {
	methods        map[string]bool // upper case; nil: all
	totp           bool
	headerOTP      string // canonical
	headerApproval string // canonical
	approval       *approvalSettings
	wwwAuth        string
	notifier       *notifier // nil without approval
}

type approvalSettings struct {
	webhook    *url.URL
	timeout    time.Duration
	maxBody    int64
	maxPending int
	retryAfter time.Duration
}

var _ policy.Policy = (*Policy)(nil)

// reservedHeaders may not carry codes or approval ids: the policy removes
// its headers from every request.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Host": true, "Connection": true,
	"Content-Length": true, "Content-Type": true, "Transfer-Encoding": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true, "X-Request-Id": true, "Forwarded": true,
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "X-Api-Key": true,
	"Client-Cert": true, "Client-Cert-Chain": true, "Dpop": true, "Signature": true, "Signature-Input": true,
}

// New validates cfg, reporting every problem at once. It touches no file,
// network or store.
func New(cfg Config) (*Policy, error) {
	var errs []error
	p := &Policy{totp: cfg.TOTP == nil || *cfg.TOTP}
	if cfg.Methods != nil {
		if len(cfg.Methods) == 0 {
			errs = append(errs, errors.New("methods: an empty list makes nothing critical; remove methods to make every method critical"))
		}
		p.methods = map[string]bool{}
		for i, m := range cfg.Methods {
			if m == "" || !validToken(m) {
				errs = append(errs, fmt.Errorf("methods[%d]: %q is not an HTTP method", i, m))
				continue
			}
			p.methods[strings.ToUpper(m)] = true
		}
		if p.methods[http.MethodGet] {
			p.methods[http.MethodHead] = true // servers answer HEAD with their GET handler
		}
	}
	var err error
	if p.headerOTP, err = headerName("header_otp", cfg.HeaderOTP, DefaultHeaderOTP); err != nil {
		errs = append(errs, err)
	}
	if p.headerApproval, err = headerName("header_approval", cfg.HeaderApproval, DefaultHeaderApproval); err != nil {
		errs = append(errs, err)
	}
	if p.headerOTP == p.headerApproval {
		errs = append(errs, fmt.Errorf("header_otp and header_approval: both are %s", p.headerOTP))
	}
	if a := cfg.Approval; a != nil {
		s, aerrs := approvalOf(*a)
		errs = append(errs, aerrs...)
		p.approval = s
	}
	if !p.totp && p.approval == nil {
		errs = append(errs, errors.New("totp is false and there is no approval block: no request could ever pass"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var ms []string
	if p.totp {
		ms = append(ms, MethodTOTP)
	}
	if p.approval != nil {
		ms = append(ms, MethodApproval)
		p.notifier = newNotifier(p.approval.webhook)
	}
	p.wwwAuth = `Warden-StepUp methods="` + strings.Join(ms, " ") + `"`
	return p, nil
}

func approvalOf(a ApprovalConfig) (*approvalSettings, []error) {
	var errs []error
	s := &approvalSettings{
		timeout:    orDefault(a.Timeout, DefaultApprovalTimeout),
		maxBody:    int64(orDefault(a.MaxBodyBytes, DefaultMaxBodyBytes)),
		maxPending: orDefault(a.MaxPending, DefaultMaxPending),
		retryAfter: orDefault(a.RetryAfter, DefaultRetryAfter),
	}
	u, err := webhookURL(a.Webhook)
	if err != nil {
		errs = append(errs, fmt.Errorf("approval.webhook: %w", err))
	}
	s.webhook = u
	if s.timeout < time.Second || s.timeout > MaxApprovalTimeout {
		errs = append(errs, fmt.Errorf("approval.timeout: %s: want 1s to %s", s.timeout, MaxApprovalTimeout))
	}
	if s.maxBody > MaxMaxBodyBytes {
		errs = append(errs, fmt.Errorf("approval.max_body_bytes: %d: at most %d (it is buffered in memory)", s.maxBody, MaxMaxBodyBytes))
	}
	if s.maxPending < 0 {
		errs = append(errs, fmt.Errorf("approval.max_pending: %d is negative", s.maxPending))
	}
	if s.retryAfter < time.Second || s.retryAfter > s.timeout {
		errs = append(errs, fmt.Errorf("approval.retry_after: %s: want 1s to the timeout", s.retryAfter))
	}
	return s, errs
}

// webhookURL parses a webhook URL: https, or http to a loopback IP
// literal (a local relay; nothing on the wire to intercept).
func webhookURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("required: the URL notified of approval requests")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want an absolute https URL without credentials or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%q: plain http is only allowed to a loopback address; use https", raw)
		}
	default:
		return nil, fmt.Errorf("%q: want an https URL", raw)
	}
	return u, nil
}

func headerName(key, v, def string) (string, error) {
	if v == "" {
		return textproto.CanonicalMIMEHeaderKey(def), nil
	}
	h := textproto.CanonicalMIMEHeaderKey(v)
	if !httpguts.ValidHeaderFieldName(v) {
		return h, fmt.Errorf("%s: %q is not a valid header name", key, v)
	}
	if reservedHeaders[h] {
		return h, fmt.Errorf("%s: %s belongs to HTTP, the gateway or another policy", key, h)
	}
	return h, nil
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

func orDefault[T int | int64 | ByteSize | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Headers returns the canonical names of the OTP and approval headers.
// The policy removes both from every request before the upstream sees it.
func (p *Policy) Headers() (otp, approval string) { return p.headerOTP, p.headerApproval }

// String describes the policy for logs.
func (p *Policy) String() string {
	crit := "all methods"
	if p.methods != nil {
		crit = fmt.Sprint(len(p.methods), " methods")
	}
	s := fmt.Sprintf("stepup(%s; totp %t", crit, p.totp)
	if p.approval != nil {
		s += fmt.Sprintf("; approval via %s, %s", p.approval.webhook.Scheme+"://"+p.approval.webhook.Host, p.approval.timeout) // the path may hold a token
	}
	return s + ")"
}
