package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/auth/lockout"
	"github.com/wardengw/warden/internal/detect/ct"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/proxy"
	"github.com/wardengw/warden/internal/tlsserver"
)

// Warning is a legal but risky setting, reported at every start and reload.
type Warning struct {
	File string
	Pos  Pos
	Path string
	Msg  string
}

func (w Warning) String() string {
	return (&Error{File: w.File, Pos: w.Pos, Path: w.Path, Msg: w.Msg}).Error()
}

type validator struct {
	c     *Config
	errs  []error
	warns []Warning
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.c.File, Pos: v.c.pos[path], Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(path, format string, args ...any) {
	v.warns = append(v.warns, Warning{File: v.c.File, Pos: v.c.pos[path], Path: path, Msg: fmt.Sprintf(format, args...)})
}

// PathOf resolves a file name from the config against the config's folder.
func (c *Config) PathOf(name string) string {
	if name == "" || filepath.IsAbs(name) || c.File == "" {
		return name
	}
	return filepath.Join(filepath.Dir(c.File), name)
}

// Pos returns the position of a key path (e.g. "routes[0].upstream").
func (c *Config) Pos(path string) Pos { return c.pos[path] }

func (c *Config) validate() ([]Warning, error) {
	v := &validator{c: c}
	v.server()
	v.tls()
	upstreams := v.upstreams()
	v.routes(upstreams)
	v.misc()
	return v.warns, errors.Join(v.errs...)
}

func (v *validator) address(path, addr string) (host string, port int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "address %q must be host:port (%v)", addr, err)
		return "", 0
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		v.errorf(path, "address %q: port %q is not a number from 0 to 65535", addr, p)
		return h, 0
	}
	return h, n
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (v *validator) server() {
	s := &v.c.Server
	v.address("server.https.address", s.HTTPS.Address)
	if s.HTTPS.MaxHeaderBytes < 4<<10 {
		v.errorf("server.https.max_header_bytes", "must be at least 4KiB")
	}
	if s.GCHeapFloor < 0 || s.GCHeapFloor > MaxGCHeapFloor {
		v.errorf("server.gc_heap_floor", "must be from 0 (off) to 16GiB: a larger floor lets the heap grow that far before the collector runs")
	}
	if s.HTTP != nil {
		if s.HTTP.Address == "" {
			v.errorf("server.http", "address is required (remove the block to have no plain-HTTP listener)")
		} else {
			v.address("server.http.address", s.HTTP.Address)
		}
		if s.HTTP.RedirectPort < 0 || s.HTTP.RedirectPort > 65535 {
			v.errorf("server.http.redirect_port", "must be a port from 1 to 65535")
		}
	}
	if s.Admin != nil {
		host, _ := v.address("server.admin.address", s.Admin.Address)
		if !isLoopback(host) {
			if !s.Admin.InsecureNonLoopback {
				v.errorf("server.admin.address", "admin address %q is not loopback; set insecure_non_loopback: true to expose it", s.Admin.Address)
			} else {
				v.warnf("server.admin.insecure_non_loopback", "the admin listener %s is reachable from other hosts", s.Admin.Address)
			}
		}
	}
	if s.Admin != nil {
		// The internal CA certifies whoever holds an enrollment token: if
		// it were an admin CA, every enrolled client would administer the
		// gateway (and could have it issue a server certificate for its
		// own names).
		var internal []*x509.Certificate
		if v.c.CA != nil && v.c.CA.Dir != "" {
			if root, inter, err := ca.LoadCertificates(v.c.PathOf(v.c.CA.Dir)); err == nil {
				internal = []*x509.Certificate{root, inter}
			}
		}
		for i, f := range s.Admin.ClientCAFiles {
			p := fmt.Sprintf("server.admin.client_ca_files[%d]", i)
			certs, err := LoadCerts(v.c.PathOf(f))
			if err != nil {
				v.errorf(p, "%v", err)
				continue
			}
			for _, c := range certs {
				for _, ic := range internal {
					if bytes.Equal(c.RawSubjectPublicKeyInfo, ic.RawSubjectPublicKeyInfo) {
						v.errorf(p, "%s holds the internal CA's certificate %q: every client it enrolls would be an administrator; sign operator certificates with a separate CA", f, ic.Subject)
					}
				}
			}
		}
	}
	for i, p := range s.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.errorf(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
}

// ParsePrefix parses a CIDR or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (v *validator) tls() {
	t := &v.c.TLS
	prof, err := tlsserver.ParseProfile(t.Profile)
	if err != nil {
		v.errorf("tls.profile", "%v", err)
	}
	if prof == tlsserver.Modern && len(t.CipherSuites) > 0 {
		v.errorf("tls.cipher_suites", "the modern profile is TLS 1.3 only, whose cipher suites are fixed; remove cipher_suites")
	}
	for i, name := range t.CipherSuites {
		if _, err := tlsserver.CipherSuiteByName(name); err != nil {
			v.errorf(fmt.Sprintf("tls.cipher_suites[%d]", i), "%v", err)
		}
	}
	for i, name := range t.Curves {
		if _, err := tlsserver.CurveByName(name); err != nil {
			v.errorf(fmt.Sprintf("tls.curves[%d]", i), "%v", err)
		}
	}
	if len(t.Certificates) == 0 {
		v.errorf("tls", "at least one certificate is required under tls.certificates")
	}
	for i, c := range t.Certificates {
		p := fmt.Sprintf("tls.certificates[%d]", i)
		switch src := c.Sources(); {
		case len(src) == 0:
			v.errorf(p, "no certificate source: set cert_file and key_file, internal_ca or acme")
			continue
		case len(src) > 1:
			v.errorf(p, "%s are exclusive: set exactly one certificate source", strings.Join(src, " and "))
			continue
		case c.InternalCA != nil:
			v.internalCACert(p+".internal_ca", c.InternalCA)
			continue
		case c.ACME != nil:
			v.acmeCertificate(i, c)
			continue
		}
		if c.CertFile == "" || c.KeyFile == "" {
			v.errorf(p, "cert_file and key_file are both required")
			continue
		}
		src := tlsserver.CertSource{CertFile: v.c.PathOf(c.CertFile), KeyFile: v.c.PathOf(c.KeyFile)}
		if _, err := tlsserver.LoadCertificates([]tlsserver.CertSource{src}); err != nil {
			v.errorf(p+".cert_file", "%v", err)
		}
	}
	switch t.ClientAuth.Mode {
	case "none":
		if len(t.ClientAuth.CAFiles) > 0 {
			v.errorf("tls.client_auth.ca_files", "ca_files has no effect with mode none; set mode to optional or require")
		}
	case "optional", "require":
		if len(t.ClientAuth.CAFiles) == 0 {
			v.errorf("tls.client_auth.ca_files", "mode %s needs at least one CA file to verify client certificates", t.ClientAuth.Mode)
		}
	default:
		v.errorf("tls.client_auth.mode", "mode %q is not one of none, optional, require", t.ClientAuth.Mode)
	}
	for i, f := range t.ClientAuth.CAFiles {
		if _, err := LoadCertPool(v.c.PathOf(f)); err != nil {
			v.errorf(fmt.Sprintf("tls.client_auth.ca_files[%d]", i), "%v", err)
		}
	}
	if t.SessionTicketRotation < time.Minute {
		v.errorf("tls.session_ticket_rotation", "must be at least 1m")
	}
	if t.HSTS.MaxAge < 0 {
		v.errorf("tls.hsts.max_age", "must not be negative")
	}
	if t.HSTS.Preload && (t.HSTS.MaxAge < 365*24*time.Hour || !*t.HSTS.IncludeSubdomains) {
		v.errorf("tls.hsts.preload", "preload needs max_age of at least 8760h (one year) and include_subdomains: true")
	}
}

// internalCACert checks a tls.certificates[] entry the internal CA issues:
// the ca block is there, the names are ones the CA would certify (syntax,
// and its name constraints when its certificates can be read), the key
// type and lifetime are ones it issues.
func (v *validator) internalCACert(p string, ic *InternalCACertificate) {
	var inter *x509.Certificate
	if v.c.CA == nil {
		v.errorf(p, "internal_ca needs the ca block: the internal CA to issue from")
	} else if v.c.CA.Dir != "" {
		if _, in, err := ca.LoadCertificates(v.c.PathOf(v.c.CA.Dir)); err == nil {
			inter = in
		} else if _, statErr := os.Stat(v.c.PathOf(v.c.CA.Dir)); statErr == nil {
			v.errorf(p, "cannot read the internal CA to check the names: %v", err)
		}
	}
	switch {
	case len(ic.Names) == 0:
		v.errorf(p+".names", "at least one DNS name or IP address is required")
	case len(ic.Names) > ca.MaxSANs:
		v.errorf(p+".names", "%d names, at most %d", len(ic.Names), ca.MaxSANs)
	}
	seen := map[string]bool{}
	for j, n := range ic.Names {
		np := fmt.Sprintf("%s.names[%d]", p, j)
		if seen[strings.ToLower(n)] {
			v.errorf(np, "%q is listed twice", n)
			continue
		}
		seen[strings.ToLower(n)] = true
		if err := ca.CheckServerNames([]string{n}, inter); err != nil {
			v.errorf(np, "%v", err)
		}
	}
	switch ic.KeyType {
	case KeyTypeECDSAP256, KeyTypeEd25519, KeyTypeRSA3072:
	default:
		v.errorf(p+".key_type", "key type %q is not one of %s, %s, %s", ic.KeyType, KeyTypeECDSAP256, KeyTypeEd25519, KeyTypeRSA3072)
	}
	if ic.Lifetime < MinInternalCALifetime || ic.Lifetime > MaxInternalCALifetime {
		v.errorf(p+".lifetime", "must be from %v to %v (397 days)", MinInternalCALifetime, MaxInternalCALifetime)
	}
}

// LoadCertPool reads a PEM bundle of CA certificates.
func LoadCertPool(path string) (*x509.CertPool, error) {
	certs, err := LoadCerts(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p, nil
}

// LoadCerts reads every certificate of a PEM file (see
// pki.ReadCertificates).
func LoadCerts(path string) ([]*x509.Certificate, error) { return pki.ReadCertificates(path) }

// UpstreamURL parses and checks an upstream URL.
func UpstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("url %q: %v", s, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("url %q: scheme must be https (or http with insecure_plaintext_upstream)", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("url %q has no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("url %q: credentials, query and fragment are not allowed", s)
	}
	return u, nil
}

func (v *validator) upstreams() map[string]*url.URL {
	out := map[string]*url.URL{}
	for i, u := range v.c.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		if u.Name == "" {
			v.errorf(p, "name is required")
		} else if _, dup := out[u.Name]; dup {
			v.errorf(p+".name", "upstream %q is defined twice", u.Name)
		}
		parsed, err := UpstreamURL(u.URL)
		if err != nil {
			v.errorf(p+".url", "%v", err)
		}
		out[u.Name] = parsed
		if u.CAFile != "" {
			if _, err := LoadCertPool(v.c.PathOf(u.CAFile)); err != nil {
				v.errorf(p+".ca_file", "%v", err)
			}
		}
		if (u.ClientCertFile == "") != (u.ClientKeyFile == "") {
			v.errorf(p, "client_cert_file and client_key_file go together")
		} else if u.ClientCertFile != "" {
			src := tlsserver.CertSource{CertFile: v.c.PathOf(u.ClientCertFile), KeyFile: v.c.PathOf(u.ClientKeyFile)}
			if _, err := tlsserver.LoadCertificates([]tlsserver.CertSource{src}); err != nil {
				v.errorf(p+".client_cert_file", "%v", err)
			}
		}
		for j, pin := range u.Pins {
			if _, err := pki.ParsePin(pin); err != nil {
				v.errorf(fmt.Sprintf("%s.pins[%d]", p, j), "%v", err)
			}
		}
		if u.ForwardHeaders != nil {
			// The first entry that makes the list invalid, by position.
			names := u.ForwardHeaders
			for j := range names {
				if _, err := proxy.ParseForwardFields(names[:j+1]); err != nil {
					v.errorf(fmt.Sprintf("%s.forward_headers[%d]", p, j), "%v", err)
					break
				}
			}
		}
		if len(u.Pins) == 1 {
			v.warnf(p+".pins", "upstream %q has a single pin and no backup pin: a key rotation will cut it off", u.Name)
		}
		if parsed != nil && parsed.Scheme == "http" && (len(u.Pins) > 0 || u.CAFile != "" || u.ClientCertFile != "" || u.ServerName != "") {
			v.errorf(p+".url", "TLS settings (pins, ca_file, client_cert_file, server_name) need an https upstream")
		}
	}
	return out
}

var validMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "CONNECT": false, "TRACE": false}

// ValidHost reports whether h is a hostname or a "*." wildcard of one.
func ValidHost(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 || h != strings.ToLower(h) {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func (v *validator) routes(upstreams map[string]*url.URL) {
	if len(v.c.Routes) == 0 {
		v.errorf("routes", "at least one route is required")
	}
	names := map[string]bool{}
	type key struct{ host, prefix, method string }
	seen := map[key]string{}
	byPrefix := map[key]struct {
		name string
		any  bool
	}{}
	for i, r := range v.c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			v.errorf(p, "name is required")
		} else if names[r.Name] {
			v.errorf(p+".name", "route %q is defined twice", r.Name)
		}
		names[r.Name] = true
		if r.Host != "" && !ValidHost(r.Host) {
			v.errorf(p+".host", "host %q must be a lower-case hostname or *.domain, without port", r.Host)
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			v.errorf(p+".path_prefix", "path_prefix %q must start with /", r.PathPrefix)
		}
		if r.PathPrefix == PKIPath || strings.HasPrefix(r.PathPrefix, PKIPath+"/") {
			v.errorf(p+".path_prefix", "path_prefix %q is under %s, which the gateway serves itself (internal CA: CRL, OCSP, enrollment): the route would never be reached", r.PathPrefix, PKIPath)
		}
		methods := r.Methods
		if len(methods) == 0 {
			methods = []string{"*"}
		}
		for j, m := range r.Methods {
			if ok, known := validMethods[m]; !ok {
				if known {
					v.errorf(fmt.Sprintf("%s.methods[%d]", p, j), "method %s is not proxied", m)
				} else {
					v.errorf(fmt.Sprintf("%s.methods[%d]", p, j), "method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", m)
				}
			}
		}
		for _, m := range methods {
			k := key{r.Host, r.PathPrefix, m}
			if other, dup := seen[k]; dup {
				v.errorf(p+".path_prefix", "route %q matches the same host, path prefix and method as route %q", r.Name, other)
				break
			}
			seen[k] = r.Name
		}
		// A route for every method next to one for some methods, on the
		// same host and prefix: which one a GET reaches would depend on
		// their order in the file.
		hp := key{host: r.Host, prefix: r.PathPrefix}
		if other, ok := byPrefix[hp]; ok && (len(r.Methods) == 0) != other.any {
			v.errorf(p+".methods", "route %q and route %q share host and path prefix, and only one of them lists methods: list the methods of both", r.Name, other.name)
		} else if !ok {
			byPrefix[hp] = struct {
				name string
				any  bool
			}{r.Name, len(r.Methods) == 0}
		}
		u, ok := upstreams[r.Upstream]
		switch {
		case r.Upstream == "":
			v.errorf(p, "upstream is required")
		case !ok:
			v.errorf(p+".upstream", "no upstream named %q", r.Upstream)
		case u == nil:
			// the upstream's own error was reported
		case u.Scheme == "http" && !r.InsecurePlaintextUpstream:
			v.errorf(p+".upstream", "upstream %q is plain HTTP: traffic to it can be read and changed on the wire; use https, or set insecure_plaintext_upstream: true on this route", r.Upstream)
		case u.Scheme == "http":
			v.warnf(p+".insecure_plaintext_upstream", "route %q forwards to plain-HTTP upstream %q: anyone on that network can read and change its traffic", r.Name, r.Upstream)
		case r.InsecurePlaintextUpstream:
			v.errorf(p+".insecure_plaintext_upstream", "upstream %q is https; remove insecure_plaintext_upstream", r.Upstream)
		}
		if usesMTLS(r.Policies) && v.c.TLS.ClientAuth.Mode == "none" {
			v.errorf(p+".policies", "an mtls policy needs tls.client_auth.mode optional or require, so that clients are asked for a certificate")
		}
		if r.Legacy != nil {
			v.legacy(p+".legacy", r)
		}
		v.policies(p, r.Policies)
	}
}

func (v *validator) legacy(p string, r Route) {
	l := r.Legacy
	if v.c.TLS.ClientAuth.Mode != "optional" {
		v.errorf(p, "a legacy variant serves clients without a certificate: it needs tls.client_auth.mode optional")
	}
	if len(l.Policies) == 0 {
		v.errorf(p+".policies", "a legacy variant needs at least one policy (its weaker requirement, e.g. an API key)")
	} else if !hasAuthPolicy(l.Policies) {
		v.warnf(p+".policies", "route %q's legacy variant has no authentication policy (api_key, jwt, introspection, mtls): anyone without a certificate gets through", r.Name)
	}
	if l.Sunset.IsZero() {
		v.errorf(p, "sunset is required: a legacy variant must have an end date")
	}
	if l.Deprecation.IsZero() {
		v.errorf(p, "deprecation is required: the date the legacy variant was (or will be) deprecated")
	} else if !l.Sunset.IsZero() && !l.Deprecation.Before(l.Sunset) {
		v.errorf(p+".deprecation", "deprecation must come before sunset")
	}
	if u, err := url.Parse(l.Link); l.Link == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		v.errorf(p+".link", "link must be the https URL of the migration page")
	}
	if l.RateLimit.RequestsPerSecond <= 0 || l.RateLimit.Burst < 1 {
		v.errorf(p+".rate_limit", "requests_per_second must be positive and burst at least 1")
	}
	v.policies(p, l.Policies)
}

func (v *validator) policies(p string, specs []PolicySpec) {
	for j := range specs {
		spec := &specs[j]
		if spec.Type == "" {
			continue // reported while decoding
		}
		if _, err := policy.Build(spec.Type, spec.Decode); err != nil {
			var cerr *Error
			if errors.As(err, &cerr) || isJoinedConfigErrors(err) {
				v.errs = append(v.errs, err)
			} else {
				v.errorf(fmt.Sprintf("%s.policies[%d]", p, j), "%s policy: %v", spec.Type, err)
			}
		}
	}
}

func isJoinedConfigErrors(err error) bool {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return false
	}
	for _, e := range j.Unwrap() {
		var cerr *Error
		if !errors.As(e, &cerr) {
			return false
		}
	}
	return true
}

// authPolicies are the policy types that authenticate a request.
var authPolicies = map[string]bool{"api_key": true, "jwt": true, "introspection": true, "mtls": true}

func hasAuthPolicy(ps []PolicySpec) bool {
	for _, p := range ps {
		if authPolicies[p.Type] {
			return true
		}
	}
	return false
}

func usesMTLS(ps []PolicySpec) bool {
	for _, p := range ps {
		if p.Type == "mtls" {
			return true
		}
	}
	return false
}

func (v *validator) expiry() {
	e := v.c.Expiry
	for i, d := range e.Thresholds {
		if d <= 0 {
			v.errorf(fmt.Sprintf("expiry.thresholds[%d]", i), "must be positive")
		}
	}
	if e.Interval < time.Minute {
		v.errorf("expiry.interval", "must be at least 1m")
	}
	if w := e.Webhook; w != nil {
		u, err := url.Parse(w.URL)
		host := ""
		if err == nil {
			host = u.Hostname()
		}
		if err != nil || u.User != nil || !(u.Scheme == "https" && host != "" || u.Scheme == "http" && isLoopback(host)) {
			v.errorf("expiry.webhook.url", "must be an https URL (http only to a loopback address), without credentials")
		}
		if w.SecretFile != "" {
			if _, err := os.Stat(v.c.PathOf(w.SecretFile)); err != nil {
				v.errorf("expiry.webhook.secret_file", "%v", err)
			}
		}
	}
}

func (v *validator) internalCA() {
	c := v.c.CA
	if c == nil {
		return
	}
	if c.Dir == "" {
		v.errorf("ca.dir", "dir is required")
	} else if _, err := os.Stat(v.c.PathOf(c.Dir)); err != nil {
		v.errorf("ca.dir", "%v (create it with warden ca init)", err)
	}
	if c.PassphraseEnv != "" && c.PassphraseFile != "" {
		v.errorf("ca", "passphrase_env and passphrase_file are exclusive")
	}
	u, err := url.Parse(c.PublishURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), PKIPath) {
		v.errorf("ca.publish_url", "must be the gateway's URL ending in %s (http is usual for CRLs and OCSP: what is served is signed)", PKIPath)
	}
}

// ct checks the ct block with the monitor's own rules (internal/detect/ct),
// each error at its key.
func (v *validator) ct() {
	c := v.c.CT
	if c == nil {
		return
	}
	if len(c.Logs) == 0 {
		v.errorf("ct.logs", "at least one log is required (remove the ct block to turn monitoring off)")
	}
	urls := map[string]bool{}
	for i, l := range c.Logs {
		p := fmt.Sprintf("ct.logs[%d]", i)
		if urls[strings.TrimSuffix(l.URL, "/")] {
			v.errorf(p+".url", "log %q is listed twice", l.URL)
		}
		urls[strings.TrimSuffix(l.URL, "/")] = true
		if err := ct.CheckLogURL(l.URL); err != nil {
			v.errorf(p+".url", "%v", err)
		}
		if l.KeyFile == "" {
			v.errorf(p, "key_file is required: tree heads are verified with the log's key")
			continue
		}
		key, err := os.ReadFile(v.c.PathOf(l.KeyFile))
		if err == nil {
			err = ct.CheckLogKey(key)
		}
		if err != nil {
			v.errorf(p+".key_file", "%v", err)
		}
	}
	if c.CAFile != "" {
		if _, err := LoadCertPool(v.c.PathOf(c.CAFile)); err != nil {
			v.errorf("ct.ca_file", "%v", err)
		}
	}
	if len(c.Domains) == 0 {
		v.errorf("ct.domains", "at least one domain to watch is required")
	}
	for i, d := range c.Domains {
		if _, err := ct.NormalizeDomain(d); err != nil {
			v.errorf(fmt.Sprintf("ct.domains[%d]", i), "%v", err)
		}
	}
	for i, pin := range c.KnownPins {
		if _, err := pki.ParsePin(pin); err != nil {
			v.errorf(fmt.Sprintf("ct.known_pins[%d]", i), "%v", err)
		}
	}
	for i, f := range c.KnownCertFiles {
		if _, err := pki.ReadChain(v.c.PathOf(f)); err != nil {
			v.errorf(fmt.Sprintf("ct.known_cert_files[%d]", i), "%v", err)
		}
	}
	if c.PollInterval < time.Minute {
		v.errorf("ct.poll_interval", "must be at least 1m (logs rate-limit their clients)")
	}
	if c.BatchSize < 1 || c.BatchSize > ct.MaxBatchSize {
		v.errorf("ct.batch_size", "must be from 1 to %d", ct.MaxBatchSize)
	}
	if c.StateFile != "" { // defaulted; the folder must exist, the file need not
		dir := filepath.Dir(v.c.PathOf(c.StateFile))
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			v.errorf("ct.state_file", "the folder %s does not exist", dir)
		}
	}
	if c.Backfill {
		v.warnf("ct.backfill", "every log seen for the first time is scanned from entry 0: only for small logs")
	}
}

func (v *validator) misc() {
	v.expiry()
	v.ct()
	v.internalCA()
	v.acme()
	if err := v.c.BruteForce.Validate(); err != nil {
		var joined interface{ Unwrap() []error }
		errs := []error{err}
		if errors.As(err, &joined) {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			var fe *lockout.FieldError
			if errors.As(e, &fe) {
				v.errorf("brute_force."+fe.Field, "%s", fe.Msg)
			} else {
				v.errorf("brute_force", "%v", e)
			}
		}
	}
	rv := v.c.Revocation
	for i, f := range rv.CRLFiles {
		if _, err := os.Stat(v.c.PathOf(f)); err != nil {
			v.errorf(fmt.Sprintf("revocation.crl_files[%d]", i), "%v", err)
		}
	}
	if rv.CRLRefresh < 10*time.Second {
		v.errorf("revocation.crl_refresh", "must be at least 10s")
	}
	if rv.Timeout > rv.CRLRefresh {
		v.errorf("revocation.timeout", "must not exceed crl_refresh")
	}
	switch v.c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errorf("log.level", "level %q is not one of debug, info, warn, error", v.c.Log.Level)
	}
	switch v.c.Log.Format {
	case "text", "json":
	default:
		v.errorf("log.format", "format %q is not text or json", v.c.Log.Format)
	}
}
