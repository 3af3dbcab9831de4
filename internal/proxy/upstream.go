package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/tlsserver"
)

// Defaults applied by New to zero-valued UpstreamConfig fields.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 64
)

// UpstreamConfig describes one upstream service. Zero durations and limits
// take the Default* values; MaxConnsPerHost 0 means unlimited.
type UpstreamConfig struct {
	// Name identifies the upstream in audit events and metrics. Required.
	Name string
	// URL is https://host[:port][/basepath]; http:// only with
	// AllowPlaintext. The base path is joined with the request path.
	URL *url.URL
	// ServerName, if set, is sent as SNI and verified against the
	// certificate instead of URL's host.
	ServerName string
	// RootCAs verifies the upstream's chain; nil means the system roots.
	RootCAs *x509.CertPool
	// GetClientCertificate, if set, supplies the client certificate for
	// upstream mTLS. It is a func so that certificates can hot-reload.
	GetClientCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// Pins, if not empty, require a certificate of the verified chain (leaf,
	// intermediate or root) to carry one of these SPKI pins. List a backup
	// pin so a key rotation does not take the upstream down.
	Pins pki.PinSet
	// AllowPlaintext permits an http:// URL: the config's
	// insecure_plaintext_upstream. The hop is then neither encrypted nor
	// authenticated, so TLS settings are refused alongside it.
	AllowPlaintext bool
	// HTTP2 lets the hop speak HTTP/2 when the upstream offers it (ALPN),
	// multiplexing requests over few connections. Off, the default, the hop
	// is HTTP/1.1 over a keep-alive pool, as nginx's, which on the gateway's
	// hot path costs fewer goroutine hand-offs and writes per request.
	HTTP2 bool
	// ReverseProxyOnly turns the lean forward path off: every request goes
	// through httputil.ReverseProxy. Not a config setting: for benchmarks
	// and tests that compare the two paths.
	ReverseProxyOnly bool
	// Log receives what httputil.ReverseProxy logs (a response body that
	// failed while being copied to the client: the audit event has the
	// upstream's side of it), at debug level; nil means slog.Default().
	Log *slog.Logger

	DialTimeout           time.Duration // TCP connect; default 5s
	TLSHandshakeTimeout   time.Duration // default 5s
	ResponseHeaderTimeout time.Duration // request written to response headers (the lean transport: from the start of the write, within 1/16 more); default 30s
	IdleConnTimeout       time.Duration // idle keep-alive connections are closed after; default 90s
	MaxIdleConnsPerHost   int           // default 64
	MaxConnsPerHost       int           // default 0, unlimited

	// TrustedProxies are the immediate peers whose X-Forwarded-* and
	// Forwarded headers are kept and appended to. From anyone else they are
	// dropped and replaced.
	TrustedProxies []netip.Prefix
	// OmitForward are the forwarding fields not sent to this upstream
	// (the config's forward_headers leaves them out); zero sends them all.
	// The client's own fields of those names are still dropped unless it
	// is a trusted proxy: an omitted field is never the client's.
	OmitForward ForwardFields
}

// validate reports every problem of c in one error, without side effects.
func (c *UpstreamConfig) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if c.URL == nil {
		errs = append(errs, errors.New("url is required"))
	} else {
		switch c.URL.Scheme {
		case "https":
		case "http":
			if !c.AllowPlaintext {
				errs = append(errs, fmt.Errorf("url %q is plain HTTP: set insecure_plaintext_upstream to allow an unencrypted, unauthenticated upstream", c.URL.Redacted()))
			} else if c.tlsSettingsSet() {
				errs = append(errs, errors.New("server_name, root CAs, client certificate and pins need an https:// url"))
			}
		default:
			errs = append(errs, fmt.Errorf("url %q: scheme must be https", c.URL.Redacted()))
		}
		if c.URL.Hostname() == "" {
			errs = append(errs, fmt.Errorf("url %q: host is required", c.URL.Redacted()))
		}
		if c.URL.User != nil {
			errs = append(errs, fmt.Errorf("url %q: credentials in the url are not supported", c.URL.Redacted()))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial timeout", c.DialTimeout}, {"TLS handshake timeout", c.TLSHandshakeTimeout},
		{"response header timeout", c.ResponseHeaderTimeout}, {"idle connection timeout", c.IdleConnTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("trusted proxy #%d is not a valid prefix", i+1))
		}
	}
	if c.MaxIdleConnsPerHost < 0 || c.MaxConnsPerHost < 0 {
		errs = append(errs, errors.New("connection limits must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *UpstreamConfig) tlsSettingsSet() bool {
	return c.ServerName != "" || c.RootCAs != nil || c.GetClientCertificate != nil || len(c.Pins) > 0
}

// withDefaults returns c with zero values replaced by the defaults.
func (c UpstreamConfig) withDefaults() UpstreamConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	def(&c.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	def(&c.IdleConnTimeout, DefaultIdleConnTimeout)
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	return c
}

// Upstream is the reverse proxy to one upstream service. It is safe for
// concurrent use.
type Upstream struct {
	name      string
	target    *url.URL
	trusted   []netip.Prefix
	omit      ForwardFields   // forwarding fields not sent
	transport *http.Transport // the standard transport: HTTP/2, streaming bodies, upgrades
	h1        *h1Transport    // the lean HTTP/1.1 path in front of transport; nil if not used
	// rebased: the target has a base path, so the outbound request's path
	// is not the client's and the error handler needs the inbound request.
	rebased bool
	// lean: requests leanEligible accepts bypass ReverseProxy (lean.go).
	lean  bool
	proxy *httputil.ReverseProxy
	now   func() time.Time // the verification clock; tests may pin it
}

// New validates cfg and returns the upstream's reverse proxy with its own
// pooled transport.
func New(cfg UpstreamConfig) (*Upstream, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
	}
	cfg = cfg.withDefaults()
	target := *cfg.URL
	if target.Path != "" && !strings.HasPrefix(target.Path, "/") {
		// url.JoinPath("base") on an empty path gives "base"; joined
		// with the request path that would be an invalid request target.
		target.Path, target.RawPath = "/"+target.Path, ""
	}
	u := &Upstream{
		name:    cfg.Name,
		target:  &target,
		trusted: append([]netip.Prefix(nil), cfg.TrustedProxies...),
		omit:    cfg.OmitForward & ForwardAll,
		now:     time.Now,
		rebased: target.Path != "" && target.Path != "/",
	}
	u.transport = &http.Transport{
		Proxy: nil, // never HTTPS_PROXY from the environment: no unplanned hop
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		ExpectContinueTimeout: time.Second,
		// Content codings pass through as the client and upstream agree,
		// as with nginx; the lean path does the same.
		DisableCompression: true,
	}
	if target.Scheme == "https" {
		u.transport.TLSClientConfig = u.tlsConfig(&cfg)
		u.transport.ForceAttemptHTTP2 = cfg.HTTP2
	}
	var rt http.RoundTripper = stdTransport{u.transport}
	if !cfg.HTTP2 && cfg.MaxConnsPerHost == 0 && isASCII(target.Hostname()) {
		// With MaxConnsPerHost the standard transport keeps the limit
		// exact across all requests, waiting for a free connection; it
		// also maps an internationalised host name to its A-label.
		u.h1 = newH1Transport(&cfg, &target, u.transport)
		rt = u.h1
		h := target.Host
		u.lean = !cfg.ReverseProxyOnly && !u.rebased && target.RawQuery == "" && !target.ForceQuery &&
			strings.IndexByte(h, '%') < 0 && httpguts.ValidHostHeader(h)
	}
	u.proxy = &httputil.ReverseProxy{
		Rewrite:        u.rewrite,
		Transport:      rt,
		ModifyResponse: u.modifyResponse,
		ErrorHandler:   u.handleError,
		BufferPool:     bufferPool{},
	}
	logger := cfg.Log
	if logger == nil {
		logger = slog.Default()
	}
	// Through slog, not the log package's unstructured stderr lines.
	u.proxy.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelDebug)
	return u, nil
}

// tlsConfig is the client TLS configuration of the hop: standard
// verification by crypto/tls, plus pinning when pins are set.
func (u *Upstream) tlsConfig(cfg *UpstreamConfig) *tls.Config {
	serverName := cfg.ServerName
	if serverName == "" {
		serverName = cfg.URL.Hostname()
	}
	c := &tls.Config{
		ServerName:           serverName,
		RootCAs:              cfg.RootCAs,
		GetClientCertificate: cfg.GetClientCertificate,
		MinVersion:           tls.VersionTLS12,
		CipherSuites:         tlsserver.DefaultCipherSuites(), // the same ECDHE-AEAD policy as the inbound side

		Time: func() time.Time { return u.now() },
	}
	if len(cfg.Pins) > 0 {
		c.VerifyConnection = verifyPins(cfg.Name, append(pki.PinSet(nil), cfg.Pins...))
	}
	return c
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.name }

var _ http.Handler = (*Upstream)(nil)

type inboundKey struct{}

// ServeHTTP proxies r to the upstream. Failures are answered through
// policy.Deny; a request the client abandoned is not answered.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The error handler sees the outbound request; keep the inbound one so
	// the audit event records the path the client asked for. Without a
	// base path the two paths are the same (ProxyRequest.SetURL), and the
	// request copy is saved.
	if u.lean {
		var lr leanRequest
		if u.leanEligible(r, &lr) {
			u.serveLean(w, r, &lr)
			return
		}
	}
	if !u.rebased {
		u.proxy.ServeHTTP(w, r)
		return
	}
	u.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), inboundKey{}, r)))
}

// CloseIdleConnections closes the upstream's idle keep-alive connections,
// for example after its pins or roots changed on reload.
// Connections in use when it is called are closed, not pooled, when their
// exchange ends.
func (u *Upstream) CloseIdleConnections() {
	if u.h1 != nil {
		u.h1.closeIdle()
	}
	u.transport.CloseIdleConnections()
}

// modifyResponse is the ReverseProxy.ModifyResponse hook. It refuses, as
// a *ProtocolError, what net/http's transport passes on but no client may
// be given (the lean transport refuses both itself): a status code outside
// 100-599, and a protocol switch the request did not ask for, refused
// here with ReverseProxy's own checks (handleUpgradeResponse), which
// would report it with a plain error. It removes the headers the gateway
// owns: it sets its own Strict-Transport-Security, and the upstream's
// Alt-Svc advertises the upstream's protocols and endpoints, not the
// gateway's. And it watches the body: a failure once the status line has
// gone out is recorded (bodyFailed).
func (u *Upstream) modifyResponse(res *http.Response) error {
	if res.StatusCode < 100 || res.StatusCode > 599 {
		return &ProtocolError{Err: errBadStatus}
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		if err := checkSwitch(res); err != nil {
			return err
		}
	}
	res.Header.Del("Strict-Transport-Security")
	res.Header.Del("Alt-Svc")
	if res.Request != nil && res.Body != nil && res.Body != http.NoBody && res.StatusCode != http.StatusSwitchingProtocols {
		// (A switched protocol's body is the connection, which
		// ReverseProxy needs as an io.ReadWriteCloser.)
		res.Body = &watchedBody{ReadCloser: res.Body, u: u, req: res.Request, status: res.StatusCode}
	}
	return nil
}

// checkSwitch refuses a 101 answer that does not switch to the protocol
// the request asked for, as ReverseProxy's handleUpgradeResponse would.
func checkSwitch(res *http.Response) error {
	want, got := "", upgradeType(res.Header)
	if res.Request != nil {
		want = upgradeType(res.Request.Header)
	}
	for i := 0; i < len(got); i++ {
		if c := got[i]; c < ' ' || c > '~' {
			return &ProtocolError{Err: fmt.Errorf("upstream switched to an invalid protocol %q", got)}
		}
	}
	if want == "" || !isASCII(want) || !strings.EqualFold(want, got) { // both ASCII: an ASCII case fold
		return &ProtocolError{Err: fmt.Errorf("upstream switched to protocol %q when %q was requested", got, want)}
	}
	return nil
}

// upgradeType is the protocol an Upgrade field names when Connection
// lists it, as ReverseProxy reads it.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// watchedBody is a response body on the ReverseProxy path that records
// its first failure (bodyFailed): ReverseProxy then aborts the response
// and only logs the error.
type watchedBody struct {
	io.ReadCloser
	u        *Upstream
	req      *http.Request // the outbound request
	status   int
	reported bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !b.reported {
		b.reported = true
		typed := err
		if !upstreamFailure(err) {
			// net/http's transport (the lean one types its own).
			typed = stdBodyFailure(err)
		}
		b.u.bodyFailed(b.req, b.status, typed)
	}
	return n, err // as read: ReverseProxy tells a client's cancellation by it
}

// bufferPool recycles ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
