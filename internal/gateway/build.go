package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/proxy"
	"github.com/wardengw/warden/internal/revocation"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/tlsserver"
)

// snapshot is everything built from one config: swapped whole on reload.
type snapshot struct {
	cfg        *config.Config
	router     *router
	upstreams  map[string]*proxy.Upstream
	hsts       string
	hstsHeader []string // the header value, allocated once per snapshot
	maxBody    int64
	certs      []telemetry.CertInfo
	files      []string                // files whose change triggers a reload
	noRoute    *telemetry.RouteMetrics // request metrics of requests no route matched

	identityNames  map[string]bool     // identity header names (identityKey form): stripped from every request
	issuers        []*x509.Certificate // client CAs, for the revocation checker's CRL files
	revocation     *revocation.Checker // checks client certificates; started when the snapshot goes live
	revocationCfg  revocation.Config
	adminCAs       *x509.CertPool // admin API clients' CAs; nil: the admin API is off
	policyWarnings []string       // risky settings built policies report (insecure_query_key, …)

	// tlsSettings are the TLS settings built (unstapled) and in force,
	// re-applied when a managed certificate renews; managed are the
	// tls.certificates entries whose certificate the gateway obtains and
	// renews itself. Both change only with reloadMu held.
	tlsSettings tlsserver.Settings
	managed     []managedUse
}

// build turns a validated config into TLS settings and a runtime. It loads
// files but listens on nothing, fetches nothing and changes no running
// state.
func (g *Gateway) build(c *config.Config) (tlsserver.Settings, *snapshot, error) {
	rt := &snapshot{cfg: c, upstreams: map[string]*proxy.Upstream{}, maxBody: int64(c.Server.HTTPS.MaxBodyBytes),
		identityNames: map[string]bool{identityKey(mtls.HeaderClientCert): true, identityKey(mtls.HeaderClientCertChain): true}}
	st, err := g.buildTLS(c, rt)
	if err != nil {
		return st, nil, err
	}
	rt.hsts = hstsValue(c.TLS.HSTS)
	rt.hstsHeader = []string{rt.hsts}[:1:1] // shared by every response: len == cap, so an Add copies
	if a := c.Server.Admin; a != nil && len(a.ClientCAFiles) > 0 {
		rt.adminCAs = x509.NewCertPool()
		for _, f := range a.ClientCAFiles {
			certs, err := config.LoadCerts(c.PathOf(f))
			if err != nil {
				return st, nil, err
			}
			rt.files = append(rt.files, c.PathOf(f))
			for _, ca := range certs {
				rt.adminCAs.AddCert(ca)
				rt.certs = append(rt.certs, telemetry.CertInfoOf("admin_client_ca", "", ca))
			}
		}
	}

	trusted := make([]netip.Prefix, 0, len(c.Server.TrustedProxies))
	for _, s := range c.Server.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return st, nil, err
		}
		trusted = append(trusted, p)
	}
	plaintextOK := map[string]bool{}
	for _, r := range c.Routes {
		if r.InsecurePlaintextUpstream {
			plaintextOK[r.Upstream] = true
		}
	}
	for _, u := range c.Upstreams {
		up, err := buildUpstream(c, u, trusted, plaintextOK[u.Name], g.reverseProxyOnly, g.log, rt)
		if err != nil {
			rt.close()
			return st, nil, fmt.Errorf("upstream %s: %w", u.Name, err)
		}
		rt.upstreams[u.Name] = up
	}

	routes := make([]*route, 0, len(c.Routes))
	for _, r := range c.Routes {
		ro := &route{name: r.Name, host: r.Host, prefix: r.PathPrefix, metrics: g.metrics.Route(r.Name), mtls: hasMTLSPolicy(r.Policies)}
		if len(r.Methods) > 0 {
			ro.methods = map[string]bool{}
			for _, m := range r.Methods {
				ro.methods[m] = true
			}
		}
		ps, err := buildPolicies(r.Policies)
		if err == nil {
			err = g.policyFacts(rt, ps)
		}
		if err != nil {
			rt.close()
			return st, nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
		ro.handler = g.guarded(rt.upstreams[r.Upstream], ps)
		if l := r.Legacy; l != nil {
			lps, err := buildPolicies(l.Policies)
			if err == nil {
				err = g.policyFacts(rt, lps)
			}
			if err != nil {
				rt.close()
				return st, nil, fmt.Errorf("route %s legacy: %w", r.Name, err)
			}
			limit, err := policy.NewRateLimit(policy.RateLimitConfig{RequestsPerSecond: l.RateLimit.RequestsPerSecond, Burst: l.RateLimit.Burst})
			if err != nil {
				rt.close()
				return st, nil, fmt.Errorf("route %s legacy rate_limit: %w", r.Name, err)
			}
			// The tighter limit comes first, so floods are cut before the
			// weaker credential is even checked.
			chain := g.guarded(rt.upstreams[r.Upstream], append([]policy.Policy{limit}, lps...))
			ro.legacy = newLegacyVariant(r.Name, l, chain)
		}
		routes = append(routes, ro)
	}
	rt.router = newRouter(routes)
	rt.noRoute = g.metrics.Route("-")
	if st.ClientAuth == tls.RequestClientCert {
		// Name every route's trust anchors in the handshake, so that clients
		// (Go's among them) pick the certificate a route will accept.
		for _, ca := range rt.issuers {
			st.ClientCAs.AddCert(ca)
		}
	}
	if err := g.buildRevocation(c, rt); err != nil {
		rt.close()
		return st, nil, err
	}
	rt.tlsSettings = st
	return st, rt, nil
}

// buildRevocation makes the snapshot's revocation checker. It loads CRL
// files (no network) and is started only when the snapshot goes live.
func (g *Gateway) buildRevocation(c *config.Config, rt *snapshot) error {
	rv := c.Revocation
	files := make([]string, len(rv.CRLFiles))
	for i, f := range rv.CRLFiles {
		files[i] = c.PathOf(f)
	}
	rt.files = append(rt.files, files...)
	rt.revocationCfg = revocation.Config{
		CRLFiles: files, CRLRefresh: rv.CRLRefresh, Timeout: rv.Timeout, MaxCRLBytes: int64(rv.MaxCRLBytes),
		StaleGrace: rv.StaleGrace, DisableDistributionPoints: !*rv.CRLDistributionPoints, DisableOCSP: !*rv.OCSP,
		Now: g.env.Now, Audit: g.audit, Registry: g.metrics.Registry, Log: g.log,
	}
	var err error
	if rt.revocation, err = revocation.New(rt.revocationCfg, rt.issuers); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	return nil
}

// policyFacts collects what the gateway must know of built policies:
// files to watch, identity headers to strip, CAs for CRL verification,
// and hands them the gateway's shared token deny-list.
func (g *Gateway) policyFacts(rt *snapshot, ps []policy.Policy) error {
	for _, p := range ps {
		if f, ok := p.(interface{ Files() []string }); ok {
			rt.files = append(rt.files, f.Files()...)
		}
		if m, ok := p.(*mtls.Policy); ok { // its files are trust bundles
			for _, name := range m.Files() {
				certs, err := config.LoadCerts(name)
				if err != nil {
					return err
				}
				rt.issuers = append(rt.issuers, certs...)
				for _, ca := range certs {
					rt.certs = append(rt.certs, telemetry.CertInfoOf("client_ca", "", ca))
				}
			}
		}
		if h, ok := p.(interface{ IdentityHeader() string }); ok && h.IdentityHeader() != "" {
			rt.identityNames[identityKey(h.IdentityHeader())] = true
		}
		if h, ok := p.(interface{ ClaimsHeader() string }); ok && h.ClaimsHeader() != "" {
			rt.identityNames[identityKey(h.ClaimsHeader())] = true
		}
		if w, ok := p.(interface{ Warnings() []string }); ok {
			rt.policyWarnings = append(rt.policyWarnings, w.Warnings()...)
		}
		if d, ok := p.(interface{ UseDenyList(*jwt.DenyList) }); ok {
			d.UseDenyList(g.denylist)
		}
	}
	return nil
}

// buildTLS builds the listener's TLS settings. Server certificates come
// from files, or from managed sources (kept from the running config when
// their entry is unchanged; a new one obtains its certificate now). The
// server certificates are the first entries of rt.certs, in config order.
func (g *Gateway) buildTLS(c *config.Config, rt *snapshot) (tlsserver.Settings, error) {
	t := c.TLS
	var st tlsserver.Settings
	var err error
	if st.Profile, err = tlsserver.ParseProfile(t.Profile); err != nil {
		return st, err
	}
	for _, n := range t.CipherSuites {
		id, err := tlsserver.CipherSuiteByName(n)
		if err != nil {
			return st, err
		}
		st.CipherSuites = append(st.CipherSuites, id)
	}
	for _, n := range t.Curves {
		id, err := tlsserver.CurveByName(n)
		if err != nil {
			return st, err
		}
		st.Curves = append(st.Curves, id)
	}
	st.Certificates = make([]tls.Certificate, 0, len(t.Certificates))
	for i, cc := range t.Certificates {
		if cc.ACME != nil {
			continue // obtained once the listeners are up: applyTLS adds them (acme.go)
		}
		idx := len(st.Certificates)
		if key, ok := managedKey(cc); ok {
			src, err := g.managedSource(c, rt, key, cc)
			if err != nil {
				return st, fmt.Errorf("tls.certificates[%d]: %w", i, err)
			}
			st.Certificates = append(st.Certificates, *src.Certificate())
			rt.managed = append(rt.managed, managedUse{index: idx, key: key, src: src})
		} else {
			src := tlsserver.CertSource{CertFile: c.PathOf(cc.CertFile), KeyFile: c.PathOf(cc.KeyFile)}
			certs, err := tlsserver.LoadCertificates([]tlsserver.CertSource{src})
			if err != nil {
				return st, err
			}
			st.Certificates = append(st.Certificates, certs[0])
			rt.files = append(rt.files, src.CertFile, src.KeyFile)
		}
		rt.certs = append(rt.certs, telemetry.CertInfoOf("server", "", st.Certificates[idx].Leaf))
	}
	switch t.ClientAuth.Mode {
	case "optional":
		// The handshake accepts any certificate; each route's mtls policy
		// verifies it against the route's bundle and refuses with a precise
		// reason. Until then it is not an identity.
		st.ClientAuth = tls.RequestClientCert
	case "require":
		st.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		st.ClientAuth = tls.NoClientCert
	}
	if len(t.ClientAuth.CAFiles) > 0 {
		st.ClientCAs = x509.NewCertPool()
		for _, f := range t.ClientAuth.CAFiles {
			certs, err := config.LoadCerts(c.PathOf(f))
			if err != nil {
				return st, err
			}
			rt.files = append(rt.files, c.PathOf(f))
			for _, ca := range certs {
				st.ClientCAs.AddCert(ca)
				rt.issuers = append(rt.issuers, ca)
				rt.certs = append(rt.certs, telemetry.CertInfoOf("client_ca", "", ca))
			}
		}
	}
	st.TicketRotation = t.SessionTicketRotation
	return st, nil
}

func buildUpstream(c *config.Config, u config.Upstream, trusted []netip.Prefix, plaintext, reverseProxyOnly bool, log *slog.Logger, rt *snapshot) (*proxy.Upstream, error) {
	target, err := config.UpstreamURL(u.URL)
	if err != nil {
		return nil, err
	}
	pins, err := pki.ParsePins(u.Pins)
	if err != nil {
		return nil, err
	}
	uc := proxy.UpstreamConfig{
		Name: u.Name, URL: target, ServerName: u.ServerName, Pins: pins, AllowPlaintext: plaintext,
		DialTimeout: u.DialTimeout, TLSHandshakeTimeout: u.TLSHandshakeTimeout,
		ResponseHeaderTimeout: u.ResponseHeaderTimeout, IdleConnTimeout: u.IdleConnTimeout,
		MaxIdleConnsPerHost: u.MaxIdleConns, MaxConnsPerHost: u.MaxConns, TrustedProxies: trusted, HTTP2: u.HTTP2,
		ReverseProxyOnly: reverseProxyOnly, Log: log,
	}
	if u.ForwardHeaders != nil {
		send, err := proxy.ParseForwardFields(u.ForwardHeaders)
		if err != nil {
			return nil, err
		}
		uc.OmitForward = proxy.ForwardAll &^ send
	}
	if u.CAFile != "" {
		certs, err := config.LoadCerts(c.PathOf(u.CAFile))
		if err != nil {
			return nil, err
		}
		uc.RootCAs = x509.NewCertPool()
		for _, ca := range certs {
			uc.RootCAs.AddCert(ca)
			rt.certs = append(rt.certs, telemetry.CertInfoOf("upstream_ca", u.Name, ca))
		}
		rt.files = append(rt.files, c.PathOf(u.CAFile))
	}
	if u.ClientCertFile != "" {
		certs, err := tlsserver.LoadCertificates([]tlsserver.CertSource{{CertFile: c.PathOf(u.ClientCertFile), KeyFile: c.PathOf(u.ClientKeyFile)}})
		if err != nil {
			return nil, err
		}
		cert := &certs[0]
		uc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		rt.certs = append(rt.certs, telemetry.CertInfoOf("upstream_client", u.Name, cert.Leaf))
		rt.files = append(rt.files, c.PathOf(u.ClientCertFile), c.PathOf(u.ClientKeyFile))
	}
	return proxy.New(uc)
}

// guarded chains the policies in front of the upstream inside the
// brute-force guard: before them it refuses locked-out client addresses
// (the credentials are not even looked at), after them locked-out
// consumers.
func (g *Gateway) guarded(upstream http.Handler, ps []policy.Policy) http.Handler {
	return g.guard.Wrap(policy.Chain(g.guard.Wrap(upstream), ps...))
}

func buildPolicies(specs []config.PolicySpec) ([]policy.Policy, error) {
	var ps []policy.Policy
	for _, spec := range specs {
		p, err := policy.Build(spec.Type, spec.Decode)
		if err != nil {
			return nil, fmt.Errorf("%s policy: %w", spec.Type, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// hstsValue renders the Strict-Transport-Security header.
func hstsValue(h config.HSTS) string {
	v := fmt.Sprintf("max-age=%d", int64(h.MaxAge/time.Second))
	if h.IncludeSubdomains != nil && *h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// close releases the runtime's idle upstream connections and stops its
// revocation checker.
func (rt *snapshot) close() {
	for _, u := range rt.upstreams {
		u.CloseIdleConnections()
	}
	if rt.revocation != nil {
		rt.revocation.Close()
	}
}

var _ http.Handler = (*proxy.Upstream)(nil)

func joinWarnings(ws []config.Warning) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, "; ")
}
