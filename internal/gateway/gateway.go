// Package gateway assembles Warden from a config: the HTTPS listener with
// its TLS server, the plain-HTTP redirect listener, the admin listener, the
// router and each route's policy chain and upstream. It starts them,
// reloads them without dropping connections, and stops them gracefully.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/admin"
	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/auth/lockout"
	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/h1server"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/caadmin"
	"github.com/wardengw/warden/internal/pki/enroll"
	"github.com/wardengw/warden/internal/pki/expiry"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/revocation"
	"github.com/wardengw/warden/internal/store"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/tlsserver"
)

// Options are the gateway's dependencies.
type Options struct {
	Audit   *audit.Logger
	Metrics *telemetry.Metrics // a fresh set if nil
	Log     *slog.Logger       // slog.Default() if nil
	Now     func() time.Time   // the clock; time.Now if nil (tests inject one)
	// CTTicks, if set, drives the certificate-transparency monitor's polls
	// instead of a ticker at ct.poll_interval (tests).
	CTTicks <-chan time.Time
	// OnReload, if set, is called with the new config after each
	// successful reload (SIGHUP or file change), before Reload returns.
	OnReload func(*config.Config)

	// NetHTTPServer serves HTTP/1.x clients with net/http's server, as
	// before the lean server (internal/h1server) took them over; and
	// ReverseProxyOnly sends every request through httputil.ReverseProxy
	// instead of the lean forward path. Not config settings: for
	// benchmarks and tests that compare the paths in one run (with
	// NetHTTPServer, the requests the HTTP server refuses itself get
	// net/http's plain-text answers, not the deny path).
	NetHTTPServer, ReverseProxyOnly bool
}

// Gateway is a running (or ready to run) Warden instance.
type Gateway struct {
	env     *policy.Env
	metrics *telemetry.Metrics
	log     *slog.Logger
	audit   *audit.Logger

	tls *tlsserver.Server
	rt  atomic.Pointer[snapshot]

	ctx        context.Context // ends at Shutdown: background work stops
	cancel     context.CancelFunc
	revocation revocationRef
	stapling   *tlsserver.Stapling
	adminTLS   *tlsserver.Server // the admin listener's TLS: asks for admin client certificates
	adminAPI   *admin.Server
	denylist   *jwt.DenyList  // revoked token IDs, shared by every token policy, fed by the admin API
	records    *store.Store   // the record store, opened at start (its path changes only at a restart)
	guard      *lockout.Guard // brute-force protection on every route; its state survives reloads
	env0Now    func() time.Time

	consumers     sync.Map                   // consumer label values seen (see consumerLabel)
	consumerCount atomic.Int64               // how many
	expiry        *expiry.Watcher            // certificate expiry events and webhook
	pki           http.Handler               // the internal CA's CRL and OCSP, under config.PKIPath; nil without a CA
	acme          atomic.Pointer[acmeSource] // the ACME certificates, once Start has bound the listeners; nil without acme entries
	publisher     *ca.Publisher
	authority     *ca.CA                 // the internal CA; nil without the ca block
	managed       map[string]*managedRun // running managed certificate sources by managedKey; with reloadMu
	ct            *ctWatch               // certificate-transparency monitoring (ct.go)

	reloadMu sync.Mutex    // serialises reloads
	stopping bool          // Shutdown has begun: no reload or renewal may start work (with reloadMu)
	reloaded chan struct{} // signals the file watcher to re-read the file list
	onReload func(*config.Config)

	https, redirect, admin *http.Server
	h1                     *h1server.Server // HTTP/1.x on the HTTPS listener; nil with Options.NetHTTPServer
	netHTTPServer          bool
	reverseProxyOnly       bool
	lnHTTPS, lnHTTP, lnAdm net.Listener
	wg                     sync.WaitGroup
}

// New builds a gateway from a validated config. It listens on nothing
// until Start.
func New(c *config.Config, warns []config.Warning, o Options) (_ *Gateway, err error) {
	if o.Metrics == nil {
		o.Metrics = telemetry.New()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	g := &Gateway{metrics: o.Metrics, log: o.Log, audit: o.Audit, reloaded: make(chan struct{}, 1), env0Now: o.Now,
		managed: map[string]*managedRun{}, netHTTPServer: o.NetHTTPServer, reverseProxyOnly: o.ReverseProxyOnly, onReload: o.OnReload}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	var rt *snapshot
	defer func() { // on failure, release whatever was built
		if err == nil {
			return
		}
		if rt != nil {
			rt.close()
		}
		for _, srv := range []*tlsserver.Server{g.tls, g.adminTLS} {
			if srv != nil {
				srv.Close()
			}
		}
		if g.records != nil {
			g.records.Close()
		}
		g.cancel()
	}()
	g.denylist = jwt.NewDenyList()
	if o.Now != nil {
		g.denylist.Now = o.Now
	}
	if g.records, err = store.Open(c.PathOf(c.Store.Path)); err != nil {
		return nil, err
	}
	if g.guard, err = lockout.New(g.bruteForceConfig(c)); err != nil {
		return nil, err
	}
	g.env = &policy.Env{Audit: o.Audit, Metrics: o.Metrics, Log: o.Log, Now: o.Now, Revocation: &g.revocation, Records: g.records,
		AuthFailures: g.guard}
	if c.CA != nil { // before build: internal_ca certificates are issued by it
		if err = g.loadCA(c); err != nil {
			return nil, err
		}
	}
	var st tlsserver.Settings
	if st, rt, err = g.build(c); err != nil {
		return nil, err
	}
	if g.tls, err = tlsserver.NewServer(g.withACME(c, st)); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	stapler, err := revocation.NewStapler(revocation.Config{Timeout: c.Revocation.Timeout, CRLRefresh: c.Revocation.CRLRefresh,
		Now: o.Now, Audit: o.Audit, Registry: o.Metrics.Registry, Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("ocsp stapling: %w", err)
	}
	g.stapling = tlsserver.NewStapling(g.tls, stapler, o.Log)
	if g.expiry, err = g.newExpiryWatcher(c); err != nil {
		return nil, err
	}
	if g.ct, err = g.newCTWatch(c, o.CTTicks); err != nil {
		return nil, err
	}
	if c.Server.Admin != nil {
		if g.adminTLS, err = tlsserver.NewServer(adminSettings(g.withACME(c, st), rt.adminCAs)); err != nil {
			return nil, fmt.Errorf("admin tls: %w", err)
		}
		g.adminAPI = admin.New(g.metrics.Handler(), func() string { return g.rt.Load().hsts }, o.Audit, o.Now)
		g.adminAPI.SetRevocation(&g.revocation)
		g.adminAPI.Handle("GET /api/jwt/deny", g.denylist)
		g.adminAPI.Handle("POST /api/jwt/deny", g.denylist)
		g.guard.Mount(g.adminAPI)
		stepup.NewAdmin(g.records, o.Audit, o.Now).Mount(g.adminAPI)
		if g.authority != nil {
			caadmin.New(g.authority, g.records, o.Audit, o.Log, o.Now).Mount(g.adminAPI)
		}
	}
	if err = g.applyTLS(c, st, rt); err != nil {
		return nil, err
	}
	g.goLive(rt)
	g.warn(warns)
	g.warnPolicies(rt)
	return g, nil
}

// warnPolicies logs what built policies say is unsafe, at every start and
// reload.
func (g *Gateway) warnPolicies(rt *snapshot) {
	for _, w := range rt.policyWarnings {
		g.log.Warn("insecure or risky setting", "warning", w)
		g.audit.Emit(audit.Event{Type: "config_warning", Severity: audit.Warning, Detail: w})
	}
}

// adminSettings derives the admin listener's TLS settings: the gateway's
// certificates, and admin client certificates asked for when the admin API
// is on (verified per request by the admin server).
func adminSettings(st tlsserver.Settings, adminCAs *x509.CertPool) tlsserver.Settings {
	st.ClientAuth, st.ClientCAs = tls.NoClientCert, nil
	if adminCAs != nil {
		st.ClientAuth, st.ClientCAs = tls.RequestClientCert, adminCAs
	}
	return st
}

// Admin returns the admin server, for registering admin API handlers; nil
// when no admin listener is configured.
func (g *Gateway) Admin() *admin.Server { return g.adminAPI }

// bruteForceConfig is the config's brute_force block with the gateway's
// clock and audit log.
func (g *Gateway) bruteForceConfig(c *config.Config) lockout.Config {
	bf := c.BruteForce
	bf.Now, bf.Audit = g.env0Now, g.audit
	return bf
}

// applyTLS installs TLS settings, with OCSP staples when enabled, and the
// ACME certificates obtained so far.
func (g *Gateway) applyTLS(c *config.Config, st tlsserver.Settings, rt *snapshot) error {
	st = g.withACME(c, st)
	if g.adminTLS != nil {
		if err := g.adminTLS.Update(adminSettings(st, rt.adminCAs)); err != nil {
			return fmt.Errorf("admin tls: %w", err)
		}
		g.adminAPI.SetClientCAs(rt.adminCAs)
	}
	if *c.TLS.OCSPStapling {
		ctx, cancel := context.WithTimeout(g.ctx, 2*c.Revocation.Timeout)
		defer cancel()
		return g.stapling.Update(ctx, st)
	}
	g.stapling.Forget()
	return g.tls.Update(st)
}

// loadCA loads the internal CA and its publisher (CRL and OCSP).
func (g *Gateway) loadCA(c *config.Config) error {
	var pass []byte
	switch {
	case c.CA.PassphraseEnv != "":
		pass = []byte(os.Getenv(c.CA.PassphraseEnv))
	case c.CA.PassphraseFile != "":
		b, err := os.ReadFile(c.PathOf(c.CA.PassphraseFile))
		if err != nil {
			return fmt.Errorf("ca passphrase: %w", err)
		}
		pass = []byte(strings.TrimSpace(string(b)))
	}
	authority, err := ca.Load(c.PathOf(c.CA.Dir), pass, ca.Config{Records: g.records,
		PublishURL: strings.TrimSuffix(c.CA.PublishURL, "/"), Now: g.env0Now})
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	g.authority = authority
	g.publisher = ca.NewPublisher(authority, g.log)
	// The gateway's own mTLS checks (routes, the admin API, renewal) ask
	// the CA itself about its certificates: a revocation, in this process
	// or by `warden ca revoke`, refuses the very next request.
	if g.revocation.local, err = revocation.NewLocal(revocation.CheckFunc(g.revocation.remote), authority); err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	enr, err := enroll.New(enroll.Config{CA: authority, Store: g.records, Now: g.env0Now, Log: g.log})
	if err != nil {
		return fmt.Errorf("enrollment: %w", err)
	}
	// Enrollment is a credential exchange: rate-limited per client.
	limit, err := policy.NewRateLimit(policy.RateLimitConfig{RequestsPerSecond: 1, Burst: 5})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /enroll", limit.Wrap(enr.Enroll()))
	mux.Handle("POST /renew", limit.Wrap(enr.Renew()))
	mux.Handle("/", g.publisher.Handler())
	g.pki = http.StripPrefix(config.PKIPath, mux)
	return nil
}

// plainHandler serves the internal CA's CRL and OCSP on the plain-HTTP
// listener too (a revocation checker of the gateway's own certificate must
// not depend on it), and redirects everything else.
func (g *Gateway) plainHandler(redirect http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the signed, public CRL and OCSP answers; enrollment carries
		// credentials and stays HTTPS-only.
		p := r.URL.Path
		public := strings.HasPrefix(p, config.PKIPath+"/crl") || strings.HasPrefix(p, config.PKIPath+"/ocsp")
		if !public || !g.servePKI(w, r) {
			redirect.ServeHTTP(w, r)
		}
	})
}

// servePKI answers requests for the internal CA's CRL and OCSP, which
// anyone may fetch (everything served is signed); false if r is not one.
func (g *Gateway) servePKI(w http.ResponseWriter, r *http.Request) bool {
	if g.pki == nil || !strings.HasPrefix(r.URL.Path, config.PKIPath+"/") {
		return false
	}
	// Only canonical paths: a mux would otherwise redirect /pki//enroll
	// (a 307, which resends the token) to a path outside this prefix. OCSP
	// GET requests carry base64 (slashes included) in their path.
	if !strings.HasPrefix(r.URL.Path, config.PKIPath+"/ocsp/") && !cleanPath(r.URL.Path) {
		policy.Deny(w, r, policy.Problem{Status: http.StatusBadRequest, Reason: "path_not_normalized",
			Detail: "the request path has dot segments, empty segments or backslashes"})
		return true
	}
	g.pki.ServeHTTP(w, r)
	return true
}

// newExpiryWatcher builds the certificate expiry watch from the config.
func (g *Gateway) newExpiryWatcher(c *config.Config) (*expiry.Watcher, error) {
	ec := expiry.Config{Thresholds: c.Expiry.Thresholds, Audit: g.audit, Log: g.log, Now: g.env0Now}
	if w := c.Expiry.Webhook; w != nil {
		ec.Webhook = &expiry.WebhookConfig{URL: w.URL, Timeout: w.Timeout, Retries: w.Retries}
		if w.SecretFile != "" {
			secret, err := os.ReadFile(c.PathOf(w.SecretFile))
			if err != nil {
				return nil, fmt.Errorf("expiry webhook secret: %w", err)
			}
			ec.Webhook.Secret = strings.TrimSpace(string(secret))
		}
	}
	return expiry.New(ec)
}

// goLive makes rt the snapshot in force and starts its background work.
func (g *Gateway) goLive(rt *snapshot) {
	rt.revocation.Start(g.ctx)
	g.revocation.set(rt.revocation)
	g.rt.Store(rt)
	g.publishCerts(rt)
	g.syncManaged(rt)
}

// revocationRef is the Env's revocation checker: a stable value whose
// checker is swapped on reload, behind the internal CA's own answers for
// its certificates when the gateway runs one.
type revocationRef struct {
	p     atomic.Pointer[revocation.Checker]
	local *revocation.Local // set by loadCA, before anything is served; nil without a CA
}

func (r *revocationRef) set(c *revocation.Checker) { r.p.Store(c) }

// CheckChain implements policy.RevocationChecker.
func (r *revocationRef) CheckChain(ctx context.Context, chain []*x509.Certificate) error {
	if r.local != nil {
		return r.local.CheckChain(ctx, chain)
	}
	return r.remote(ctx, chain)
}

// remote asks the snapshot's checker (CRLs and OCSP).
func (r *revocationRef) remote(ctx context.Context, chain []*x509.Certificate) error {
	return r.p.Load().CheckChain(ctx, chain)
}

func (g *Gateway) warn(warns []config.Warning) {
	for _, w := range warns {
		g.log.Warn("insecure or risky setting", "warning", w.String())
		g.audit.Emit(audit.Event{Type: "config_warning", Severity: audit.Warning, Detail: w.String()})
	}
}

// Config returns the config in force.
func (g *Gateway) Config() *config.Config { return g.rt.Load().cfg }

// Start binds the listeners and serves in the background.
func (g *Gateway) Start() error {
	c := g.Config()
	s := c.Server
	var err error
	rawHTTPS, err := net.Listen("tcp", s.HTTPS.Address)
	if err != nil {
		return fmt.Errorf("listen https %s: %w", s.HTTPS.Address, err)
	}
	g.lnHTTPS = g.wrapListener(rawHTTPS, s.HTTPS)
	g.https = g.newHTTPSServer(s.HTTPS)
	if g.netHTTPServer {
		g.serve(g.https, g.lnHTTPS, "https")
	} else {
		g.h1 = g.newH1Server(s.HTTPS)
		h2 := newConnQueue(g.lnHTTPS)
		g.serve(g.https, h2, "https")
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.acceptHTTPS(h2)
		}()
	}
	if g.publisher != nil {
		g.wg.Add(1)
		go func() { // notices revocations made by the CLI or another node
			defer g.wg.Done()
			g.publisher.Run(g.ctx, 5*time.Second)
		}()
	}
	g.wg.Add(1)
	go func() { // expiry events at each threshold, checked now and every interval
		defer g.wg.Done()
		g.expiry.Run(g.ctx, g.Config().Expiry.Interval)
	}()
	g.ct.start() // polls CT logs on its own goroutine, if configured
	g.wg.Add(1)
	go func() { // keeps staples fresh; a no-op for certificates without an OCSP URL
		defer g.wg.Done()
		g.stapling.Run(g.ctx, tlsserver.DefaultStapleCheck)
	}()

	if s.HTTP != nil {
		if g.lnHTTP, err = net.Listen("tcp", s.HTTP.Address); err != nil {
			g.closeAll()
			return fmt.Errorf("listen http %s: %w", s.HTTP.Address, err)
		}
		port := s.HTTP.RedirectPort
		if port == 0 {
			port = g.lnHTTPS.Addr().(*net.TCPAddr).Port
		}
		g.redirect = &http.Server{
			Handler:           g.acmePlain(g.plainHandler(redirectHandler(port, g.tls.Serves))),
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
			IdleTimeout: 30 * time.Second, MaxHeaderBytes: int(s.HTTPS.MaxHeaderBytes),
			ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		}
		g.serve(g.redirect, g.lnHTTP, "http")
	}
	if s.Admin != nil {
		raw, err := net.Listen("tcp", s.Admin.Address)
		if err != nil {
			g.closeAll()
			return fmt.Errorf("listen admin %s: %w", s.Admin.Address, err)
		}
		g.lnAdm = tlsserver.NewListener(raw, g.adminTLS, tlsserver.ListenerOptions{Name: "admin", MaxConns: 64,
			HandshakeTimeout: 5 * time.Second, Audit: g.audit, Metrics: g.metrics, Log: g.log})
		g.admin = &http.Server{
			Handler:           g.adminAPI,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 60 * time.Second, ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		}
		g.serve(g.admin, g.lnAdm, "admin")
	}
	if err := g.startACME(); err != nil {
		g.closeAll()
		return err
	}
	return nil
}

func (g *Gateway) serve(srv *http.Server, ln net.Listener, name string) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
}

// Addrs returns the bound addresses (nil for a listener not configured).
func (g *Gateway) Addrs() (https, http, admin net.Addr) {
	if g.lnHTTPS != nil {
		https = g.lnHTTPS.Addr()
	}
	if g.lnHTTP != nil {
		http = g.lnHTTP.Addr()
	}
	if g.lnAdm != nil {
		admin = g.lnAdm.Addr()
	}
	return
}

func (g *Gateway) closeAll() {
	for _, ln := range []net.Listener{g.lnHTTPS, g.lnHTTP, g.lnAdm} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes what remains.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.reloadMu.Lock() // a reload or renewal in progress finishes first; none starts after
	g.stopping = true
	g.reloadMu.Unlock()
	var errs []error
	h1done := make(chan error, 1)
	go func() { // HTTP/1.x conns drain while net/http's do
		if g.h1 == nil {
			h1done <- nil
			return
		}
		err := g.h1.Shutdown(ctx)
		if err != nil {
			g.h1.Close()
		}
		h1done <- err
	}()
	for _, srv := range []*http.Server{g.https, g.redirect, g.admin} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	if err := <-h1done; err != nil {
		errs = append(errs, err)
	}
	g.cancel()
	g.wg.Wait()
	g.tls.Close()
	if g.adminTLS != nil {
		g.adminTLS.Close()
	}
	g.rt.Load().close()
	if err := g.records.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Reload reads the config file again and, if it is valid and builds, swaps
// it in: new connections and requests use it, open ones are not dropped.
// An invalid replacement is refused with an audit event and the old config
// keeps serving.
func (g *Gateway) Reload(trigger string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.stopping {
		return errors.New("reload refused: the gateway is shutting down")
	}
	old := g.rt.Load()
	fail := func(err error) error {
		g.metrics.Reloads.WithLabelValues("failed").Inc()
		g.audit.Emit(audit.Event{Type: "config_reload_failed", Severity: audit.Critical, Reason: "invalid_config",
			Detail: err.Error(), Fields: map[string]any{"trigger": trigger, "file": old.cfg.File}})
		g.log.Error("reload refused; the previous configuration keeps serving", "trigger", trigger, "err", err)
		return err
	}
	c, warns, err := config.Load(old.cfg.File)
	if err != nil {
		return fail(err)
	}
	if err := sameListeners(old.cfg, c); err != nil {
		return fail(err)
	}
	if err := sameACME(old.cfg, c); err != nil {
		return fail(err)
	}
	st, rt, err := g.build(c)
	if err != nil {
		return fail(err)
	}
	ctPlan, err := g.ct.prepare(c)
	if err != nil {
		rt.close()
		return fail(err)
	}
	if err := g.guard.Update(g.bruteForceConfig(c)); err != nil {
		rt.close()
		return fail(err)
	}
	if err := g.applyTLS(c, st, rt); err != nil {
		rt.close()
		return fail(err)
	}
	g.goLive(rt)
	g.ct.apply(ctPlan)
	// Requests in flight on the old runtime finish on their pooled
	// connections; only idle ones are closed now.
	old.close()
	g.metrics.Reloads.WithLabelValues("ok").Inc()
	select {
	case g.reloaded <- struct{}{}:
	default:
	}
	g.audit.Emit(audit.Event{Type: "config_reloaded", Severity: audit.Info, Fields: map[string]any{"trigger": trigger, "file": c.File}})
	g.log.Info("configuration reloaded", "trigger", trigger)
	g.warn(warns)
	g.warnPolicies(rt)
	if g.onReload != nil {
		g.onReload(c)
	}
	return nil
}

// sameListeners refuses a reload that changes what can only change at a
// restart: listener addresses and connection-level server settings.
func sameListeners(a, b *config.Config) error {
	if fmt.Sprint(a.CA) != fmt.Sprint(b.CA) {
		return errors.New("ca changed: the internal CA is loaded only at a restart")
	}
	if a.PathOf(a.Store.Path) != b.PathOf(b.Store.Path) {
		return errors.New("store.path changed: the store is opened only at a restart")
	}
	ha, hb := a.Server.HTTPS, b.Server.HTTPS
	ha.MaxBodyBytes, hb.MaxBodyBytes = 0, 0 // applied per request: reloadable
	if ha != hb {
		return errors.New("server.https changed: listener settings take effect only at a restart")
	}
	addr := func(l *config.RedirectListener) string {
		if l == nil {
			return ""
		}
		return fmt.Sprint(*l)
	}
	if addr(a.Server.HTTP) != addr(b.Server.HTTP) {
		return errors.New("server.http changed: listener settings take effect only at a restart")
	}
	adm := func(l *config.AdminListener) string {
		if l == nil {
			return ""
		}
		c := *l
		c.ClientCAFiles = nil // reloaded with the snapshot
		return fmt.Sprint(c)
	}
	if adm(a.Server.Admin) != adm(b.Server.Admin) {
		return errors.New("server.admin changed: listener settings take effect only at a restart")
	}
	return nil
}
