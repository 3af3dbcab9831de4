package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/wardengw/warden/internal/audit"
)

// Challenge is an ACME challenge type the Manager can answer.
type Challenge string

// The challenge types. dns-01 is not supported (and so neither are
// wildcard names).
const (
	HTTP01    Challenge = "http-01"
	TLSALPN01 Challenge = "tls-alpn-01"
)

// ACMETLS1 is the ALPN protocol of tls-alpn-01 validation (RFC 8737).
const ACMETLS1 = "acme-tls/1"

// challengePath is where http-01 challenges are fetched (RFC 8555 §8.3).
const challengePath = "/.well-known/acme-challenge/"

// KeyType is the type of the certificate keys.
type KeyType string

// The key types; ECDSAP256 is the default.
const (
	ECDSAP256 KeyType = "p256"
	ECDSAP384 KeyType = "p384"
	RSA2048   KeyType = "rsa2048"
	RSA4096   KeyType = "rsa4096"
)

// Audit event types.
const (
	EventObtained = "acme_certificate_obtained"
	EventFailed   = "acme_certificate_failed"
)

// DefaultChallenges are used when Config.Challenges is empty.
func DefaultChallenges() []Challenge { return []Challenge{HTTP01, TLSALPN01} }

// Config configures a Manager. Zero values mean the defaults stated.
type Config struct {
	// DirectoryURL is the https URL of the CA's ACME directory. Required.
	DirectoryURL string
	// Email is the ACME account's contact. Required.
	Email string
	// AgreeTerms must be true: it says the operator agrees to the CA's
	// terms of service.
	AgreeTerms bool
	// CARoots (PEM) verify the directory's TLS certificate; empty means
	// the system roots.
	CARoots []byte
	// StorageDir holds the account, the keys and the certificates. Required.
	StorageDir string
	// Names are the DNS names to get certificates for, one certificate
	// each. Required; no wildcards, no IP addresses.
	Names []string
	// Challenges to answer; empty means DefaultChallenges.
	Challenges []Challenge
	// HTTPAddress is the bound address (host:port) of the plain-HTTP
	// listener that serves HTTPHandler; required with http-01. certmagic
	// starts its own challenge server when nothing listens there, so the
	// listener must be up before Start.
	HTTPAddress string
	// TLSAddress is the bound address of the TLS listener that consults
	// TLSALPNChallenge; required with tls-alpn-01 (same caveat).
	TLSAddress string
	// KeyType of the certificate keys; empty means ECDSAP256.
	KeyType KeyType
	// RenewalRatio is the fraction of a certificate's lifetime left when
	// it is renewed, in (0, 1); 0 means certmagic's default (1/3).
	RenewalRatio float64
	// OnChange, if set, is called after each certificate obtained or
	// renewed (Start included), once the certificate is current.
	OnChange func(name string, cert *tls.Certificate)
	// Log receives operational messages; nil means slog.Default().
	Log *slog.Logger
	// Audit receives obtain and failure events; nil discards them.
	Audit *audit.Logger

	// renewCheckInterval is how often maintenance looks for certificates
	// to renew; 0 means certmagic's default (10m). Tests shorten it.
	renewCheckInterval time.Duration
}

func (c Config) challenges() []Challenge {
	if len(c.Challenges) == 0 {
		return DefaultChallenges()
	}
	return c.Challenges
}

// Validate reports every problem with c in one error, without touching
// anything.
func (c Config) Validate() error {
	var errs []error
	if err := ValidDirectoryURL(c.DirectoryURL); err != nil {
		errs = append(errs, err)
	}
	if c.Email == "" {
		errs = append(errs, errors.New("email: required (the CA's contact for the account)"))
	} else if err := ValidEmail(c.Email); err != nil {
		errs = append(errs, err)
	}
	if !c.AgreeTerms {
		errs = append(errs, errors.New("agree_terms: must be true: using an ACME CA means agreeing to its terms of service"))
	}
	if len(c.CARoots) > 0 {
		if _, err := rootPool(c.CARoots); err != nil {
			errs = append(errs, err)
		}
	}
	if c.StorageDir == "" {
		errs = append(errs, errors.New("storage: a directory is required"))
	}
	if len(c.Names) == 0 {
		errs = append(errs, errors.New("names: at least one name is required"))
	}
	for _, n := range c.Names {
		if err := ValidName(n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ch := range c.challenges() {
		switch ch {
		case HTTP01:
			if _, _, err := splitAddress(c.HTTPAddress); err != nil {
				errs = append(errs, fmt.Errorf("http-01 needs the plain-HTTP listener's address: %w", err))
			}
		case TLSALPN01:
			if _, _, err := splitAddress(c.TLSAddress); err != nil {
				errs = append(errs, fmt.Errorf("tls-alpn-01 needs the TLS listener's address: %w", err))
			}
		default:
			errs = append(errs, fmt.Errorf("challenge %q: not one of %s, %s", ch, HTTP01, TLSALPN01))
		}
	}
	switch c.KeyType {
	case "", ECDSAP256, ECDSAP384, RSA2048, RSA4096:
	default:
		errs = append(errs, fmt.Errorf("key type %q: not one of p256, p384, rsa2048, rsa4096", c.KeyType))
	}
	if c.RenewalRatio < 0 || c.RenewalRatio >= 1 {
		errs = append(errs, fmt.Errorf("renewal ratio %v: must be in (0, 1)", c.RenewalRatio))
	}
	if c.renewCheckInterval < 0 {
		errs = append(errs, errors.New("renew check interval: must not be negative"))
	}
	return errors.Join(errs...)
}

// ValidDirectoryURL checks that u is an absolute https URL.
func ValidDirectoryURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil {
		return fmt.Errorf("directory URL %q: must be an https:// URL (the CA is reached over verified TLS only)", u)
	}
	return nil
}

// ValidEmail checks that email is a plain address (no display name).
func ValidEmail(email string) error {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return fmt.Errorf("email %q: not a plain e-mail address", email)
	}
	return nil
}

// ValidName checks that name is a lowercase DNS name that http-01 and
// tls-alpn-01 can validate: no wildcard (it needs dns-01), no IP address.
func ValidName(name string) error {
	if strings.Contains(name, "*") {
		return fmt.Errorf("name %q: wildcard names can only be validated with dns-01, which is not supported", name)
	}
	if net.ParseIP(name) != nil {
		return fmt.Errorf("name %q: IP addresses are not supported; use a DNS name", name)
	}
	if name == "" || len(name) > 253 || strings.HasSuffix(name, ".") {
		return fmt.Errorf("name %q: not a DNS name (1 to 253 characters, no trailing dot)", name)
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return fmt.Errorf("name %q: label %q is not a lowercase DNS label (a-z, 0-9, '-', 1 to 63 characters, no '-' at either end)", name, label)
		}
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ListenHost is the one host certmagic's solvers are given when both
// challenges are answered, on the plain-HTTP listener at httpAddr and the
// TLS one at tlsAddr: their common host, or "" (every interface) when
// both listen on every interface however spelled ("", 0.0.0.0, ::). Any
// other pair is an error: certmagic takes a single host.
func ListenHost(httpAddr, tlsAddr string) (string, error) {
	h1, _, err1 := net.SplitHostPort(httpAddr)
	h2, _, err2 := net.SplitHostPort(tlsAddr)
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("acme: %w", err)
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	switch {
	case h1 == h2:
		return h1, nil
	case wildcard(h1) && wildcard(h2):
		return "", nil
	}
	return "", fmt.Errorf("acme: the plain-HTTP (%s) and TLS (%s) listeners must share a host to answer both challenges", httpAddr, tlsAddr)
}

func splitAddress(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("address %q: port must be 1 to 65535", addr)
	}
	return h, n, nil
}

func rootPool(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("CA roots: no PEM certificate found")
	}
	return pool, nil
}

// Manager obtains and renews the certificates of Config.Names. It is safe
// for concurrent use.
type Manager struct {
	cfg     Config
	names   map[string]bool
	http01  bool
	tlsALPN bool
	log     *slog.Logger

	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	storage *certmagic.FileStorage

	mu    sync.RWMutex
	certs map[string]*tls.Certificate

	closeOnce sync.Once
	closed    atomic.Bool // after Close, renewals still in flight change nothing
}

// New validates cfg and returns a Manager whose certificate maintenance
// runs until Close. It makes no network call: Start does.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	var pool *x509.CertPool
	if len(cfg.CARoots) > 0 {
		pool, _ = rootPool(cfg.CARoots) // checked by Validate
	}
	if err := os.MkdirAll(cfg.StorageDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: storage: %w", err)
	}
	m := &Manager{
		cfg:     cfg,
		names:   map[string]bool{},
		log:     cfg.Log,
		storage: &certmagic.FileStorage{Path: cfg.StorageDir},
		certs:   map[string]*tls.Certificate{},
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "acme", "directory", cfg.DirectoryURL)
	for _, n := range cfg.Names {
		m.names[n] = true
	}
	m.http01 = slices.Contains(cfg.challenges(), HTTP01)
	m.tlsALPN = slices.Contains(cfg.challenges(), TLSALPN01)
	zl := newZapLogger(m.log)

	keyType := certmagic.KeyType(cfg.KeyType)
	if keyType == "" {
		keyType = certmagic.P256
	}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: cfg.renewCheckInterval,
		Logger:             zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: cfg.RenewalRatio,
		OnEvent:            m.onEvent,
		ShouldEmitFunc:     func(e string) bool { return e == "cert_obtained" || e == "cert_failed" },
		KeySource:          certmagic.StandardKeyGenerator{KeyType: keyType},
		Storage:            m.storage,
		Logger:             zl,
		OCSP:               certmagic.OCSPConfig{DisableStapling: true}, // the gateway staples itself
	})
	tmpl := certmagic.ACMEIssuer{
		CA:                      cfg.DirectoryURL,
		Email:                   cfg.Email,
		Agreed:                  true,
		TrustedRoots:            pool,
		DisableHTTPChallenge:    !m.http01,
		DisableTLSALPNChallenge: !m.tlsALPN,
		Logger:                  zl,
	}
	// certmagic's solvers listen on these addresses unless something
	// already does: point them at the gateway's own listeners.
	if m.http01 {
		tmpl.ListenHost, tmpl.AltHTTPPort, _ = splitAddress(cfg.HTTPAddress)
	}
	if m.tlsALPN {
		tmpl.ListenHost, tmpl.AltTLSALPNPort, _ = splitAddress(cfg.TLSAddress)
	}
	if m.http01 && m.tlsALPN {
		host, err := ListenHost(cfg.HTTPAddress, cfg.TLSAddress)
		if err != nil {
			m.cache.Stop()
			return nil, err
		}
		tmpl.ListenHost = host
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, tmpl)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// Start obtains a certificate for every configured name that has none in
// storage (and renews stored ones that are due), bounded by ctx. Every
// name is tried, whatever happened to the ones before it: the error joins
// one error per failed name, each naming the CA and the cause. A name
// already served (obtained by an earlier call) is skipped, so that a
// retry after a failure handles only what failed. The listeners named by
// HTTPAddress and TLSAddress must already serve HTTPHandler and
// TLSALPNChallenge.
func (m *Manager) Start(ctx context.Context) error {
	var errs []error
	for _, name := range m.cfg.Names {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("acme: certificate for %s from %s: %w", name, m.cfg.DirectoryURL, ctx.Err()))
			continue
		}
		if _, ok := m.Certificate(name); ok { // obtained by an earlier call; certmagic maintains it
			continue
		}
		if err := m.startOne(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startOne obtains (or loads from storage) the certificate for name.
func (m *Manager) startOne(ctx context.Context, name string) error {
	t0 := time.Now()
	if err := m.magic.ManageSync(ctx, []string{name}); err != nil {
		return fmt.Errorf("acme: certificate for %s from %s: %w", name, m.cfg.DirectoryURL, err)
	}
	if _, ok := m.Certificate(name); !ok { // already in storage: no obtain event
		certKey, keyKey := siteKeys(m.cfg.DirectoryURL, name)
		if err := m.load(ctx, name, certKey, keyKey); err != nil {
			return fmt.Errorf("acme: certificate for %s: %w", name, err)
		}
	}
	m.log.Debug("acme certificate ready", "name", name, "took", time.Since(t0))
	return nil
}

// siteKeys returns the storage keys under which certmagic keeps the
// certificate chain and the key of name obtained from the ACME CA at
// directoryURL (certmagic.StorageKeys, with the issuer's key).
func siteKeys(directoryURL, name string) (cert, key string) {
	issuer := (&certmagic.ACMEIssuer{CA: directoryURL}).IssuerKey()
	return certmagic.StorageKeys.SiteCert(issuer, name), certmagic.StorageKeys.SitePrivateKey(issuer, name)
}

// CertificateFile returns the file in storageDir where a Manager keeps the
// certificate chain (PEM) it obtained for name from the ACME CA at
// directoryURL. It only names the file: the file exists once the
// certificate has been obtained. `warden certs` reads it.
func CertificateFile(storageDir, directoryURL, name string) string {
	cert, _ := siteKeys(directoryURL, name)
	return (&certmagic.FileStorage{Path: storageDir}).Filename(cert)
}

// RenewNow renews every certificate at once, whatever its remaining
// lifetime (for tests and operators). A failure keeps the current
// certificate.
func (m *Manager) RenewNow(ctx context.Context) error {
	var errs []error
	for _, name := range m.cfg.Names {
		if err := m.magic.RenewCertSync(ctx, name, true); err != nil {
			errs = append(errs, fmt.Errorf("acme: renewing %s from %s: %w", name, m.cfg.DirectoryURL, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops certificate maintenance; a renewal still in flight is then
// discarded (OnChange is not called). Certificates already returned stay
// usable.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		m.cache.Stop()
	})
	return nil
}

// Certificate returns the current certificate for a configured name.
func (m *Manager) Certificate(name string) (*tls.Certificate, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, ok := m.certs[name]
	return c, ok
}

// Certificates returns the current certificates, in the order of
// Config.Names, for tlsserver.Settings.Certificates.
func (m *Manager) Certificates() []tls.Certificate {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]tls.Certificate, 0, len(m.certs))
	for _, n := range m.cfg.Names {
		if c, ok := m.certs[n]; ok {
			out = append(out, *c)
		}
	}
	return out
}

// HTTPHandler answers http-01 challenges pending for configured names and
// passes every request outside /.well-known/acme-challenge/ to next. Any
// other challenge request gets 404.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, challengePath) {
			next.ServeHTTP(w, r)
			return
		}
		if m.http01 && m.pending(hostOnly(r.Host), HTTP01) && m.issuer.HandleHTTPChallenge(w, r) {
			return
		}
		http.NotFound(w, r)
	})
}

// TLSALPNChallenge returns the tls-alpn-01 certificate for a ClientHello
// that offers exactly acme-tls/1 and names a configured name with a
// pending challenge; otherwise an error, which fails the handshake.
func (m *Manager) TLSALPNChallenge(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !m.tlsALPN || !slices.Equal(hello.SupportedProtos, []string{ACMETLS1}) {
		return nil, errors.New("acme: not a tls-alpn-01 challenge")
	}
	if !m.pending(strings.ToLower(hello.ServerName), TLSALPN01) {
		return nil, errors.New("acme: no tls-alpn-01 challenge pending for this name")
	}
	return m.magic.GetCertificate(hello)
}

// pending reports whether a challenge of type typ is pending for name.
func (m *Manager) pending(name string, typ Challenge) bool {
	if !m.names[name] {
		return false
	}
	chal, ok := certmagic.GetACMEChallenge(name)
	return ok && chal.Type == string(typ)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
	}
	return strings.ToLower(hostport)
}

// onEvent is certmagic's event hook. Its errors would abort certmagic's
// operation, so it always returns nil.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	if m.closed.Load() {
		return nil
	}
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		certPath, _ := data["certificate_path"].(string)
		keyPath, _ := data["private_key_path"].(string)
		if err := m.load(ctx, name, certPath, keyPath); err != nil {
			m.failed(name, renewal, err)
		}
	case "cert_failed":
		err, _ := data["error"].(error)
		m.failed(name, renewal, err)
	}
	return nil
}

func (m *Manager) failed(name string, renewal bool, err error) {
	detail := fmt.Sprint(err)
	m.log.Warn("acme certificate not obtained; the current one (if any) stays in use", "name", name, "renewal", renewal, "err", detail)
	m.cfg.Audit.Emit(audit.Event{
		Type:     EventFailed,
		Severity: audit.Warning,
		Reason:   "acme_failed",
		Detail:   detail,
		Fields:   map[string]any{"name": name, "renewal": renewal, "directory": m.cfg.DirectoryURL},
	})
}

// load reads a certificate and key from storage, checks that it is for
// name, and makes it current.
func (m *Manager) load(ctx context.Context, name, certPath, keyPath string) error {
	if !m.names[name] {
		return fmt.Errorf("certificate for %q, which is not configured", name)
	}
	certPEM, err := m.storage.Load(ctx, certPath)
	if err != nil {
		return fmt.Errorf("loading certificate: %w", err)
	}
	keyPEM, err := m.storage.Load(ctx, keyPath)
	if err != nil {
		return fmt.Errorf("loading key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("parsing certificate: %w", err)
	}
	if err := cert.Leaf.VerifyHostname(name); err != nil {
		return fmt.Errorf("stored certificate: %w", err)
	}
	m.mu.Lock()
	m.certs[name] = &cert
	m.mu.Unlock()
	m.log.Info("acme certificate in use", "name", name, "serial", cert.Leaf.SerialNumber.Text(16),
		"not_after", cert.Leaf.NotAfter)
	m.cfg.Audit.Emit(audit.Event{
		Type: EventObtained,
		Fields: map[string]any{"name": name, "serial": cert.Leaf.SerialNumber.Text(16),
			"not_after": cert.Leaf.NotAfter, "directory": m.cfg.DirectoryURL},
	})
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(name, &cert)
	}
	return nil
}
