package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/acme"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/tlsserver"
)

// acmeSource is the ACME source of server certificates
// (tls.certificates[].acme). Unlike internal_ca entries (managed.go), they
// cannot be obtained before the listeners are up (the CA validates over
// them), so:
//
//  1. buildTLS leaves out entries with acme (acmeNames lists them);
//     applyTLS (withACME) sets the tls-alpn-01 hook whenever the config has
//     acme entries, so the HTTPS listener may start without certificates,
//     and adds the ACME certificates obtained so far.
//  2. Start binds the listeners, then startACME makes the source with
//     their bound addresses; the plain-HTTP handler answers http-01
//     through acmePlain.
//  3. runACME obtains what storage lacks, in the background, retrying with
//     back-off; onChange (then and at every renewal) re-applies the TLS
//     settings (acmeChanged).
//
// Every method is a no-op on a nil source (a config without acme).
type acmeSource struct {
	m *acme.Manager
}

// acmeNames returns the names of every tls.certificates[].acme entry, in
// config order.
func acmeNames(c *config.Config) []string {
	var names []string
	for _, cc := range c.TLS.Certificates {
		if cc.ACME != nil {
			names = append(names, cc.ACME.Names...)
		}
	}
	return names
}

// acmeConfig maps a validated config to the Manager's config. httpAddr is
// nil without a plain-HTTP listener.
func acmeConfig(c *config.Config, httpAddr, tlsAddr net.Addr, log *slog.Logger, aud *audit.Logger,
	onChange func()) (acme.Config, error) {
	a := c.ACME
	if a == nil {
		return acme.Config{}, errors.New("acme: tls.certificates has acme entries but there is no acme block")
	}
	ac := acme.Config{
		DirectoryURL: a.DirectoryURL,
		Email:        a.Email,
		AgreeTerms:   a.AgreeTerms,
		StorageDir:   c.PathOf(a.Storage),
		Names:        acmeNames(c),
		TLSAddress:   tlsAddr.String(),
		Log:          log,
		Audit:        aud,
	}
	for _, ch := range a.Challenges {
		ac.Challenges = append(ac.Challenges, acme.Challenge(ch))
	}
	if httpAddr != nil {
		ac.HTTPAddress = httpAddr.String()
	}
	if a.CAFile != "" {
		pemData, err := os.ReadFile(c.PathOf(a.CAFile))
		if err != nil {
			return acme.Config{}, fmt.Errorf("acme ca_file: %w", err)
		}
		ac.CARoots = pemData
	}
	if onChange != nil {
		ac.OnChange = func(string, *tls.Certificate) { onChange() }
	}
	return ac, nil
}

// newACMESource builds the source for c, or returns nil when c has no acme
// entries. It makes no network call.
func newACMESource(c *config.Config, httpAddr, tlsAddr net.Addr, log *slog.Logger, aud *audit.Logger,
	onChange func()) (*acmeSource, error) {
	if len(acmeNames(c)) == 0 {
		return nil, nil
	}
	ac, err := acmeConfig(c, httpAddr, tlsAddr, log, aud, onChange)
	if err != nil {
		return nil, err
	}
	m, err := acme.New(ac)
	if err != nil {
		return nil, err
	}
	return &acmeSource{m: m}, nil
}

// start obtains the certificates storage lacks, bounded by ctx.
func (s *acmeSource) start(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.m.Start(ctx)
}

// apply returns st with the ACME certificates added and the tls-alpn-01
// hook set.
func (s *acmeSource) apply(st tlsserver.Settings) tlsserver.Settings {
	if s == nil {
		return st
	}
	st.Certificates = append(slices.Clone(st.Certificates), s.m.Certificates()...)
	st.ACMEChallenge = s.m.TLSALPNChallenge
	return st
}

// plain wraps the plain-HTTP handler so that it answers pending http-01
// challenges (and 404 for any other /.well-known/acme-challenge/ path).
func (s *acmeSource) plain(next http.Handler) http.Handler {
	if s == nil {
		return next
	}
	return s.m.HTTPHandler(next)
}

// close stops renewals.
func (s *acmeSource) close() {
	if s != nil {
		_ = s.m.Close()
	}
}

// sameACME refuses a reload that changes the acme block or the names: the
// Manager is built at start.
func sameACME(a, b *config.Config) error {
	if fmt.Sprint(a.ACME) != fmt.Sprint(b.ACME) || !slices.Equal(acmeNames(a), acmeNames(b)) {
		return errors.New("acme changed: the ACME account and names take effect only at a restart")
	}
	return nil
}

// acmeRetry bounds the back-off between attempts to obtain the first ACME
// certificates.
const (
	acmeRetryMin = time.Minute
	acmeRetryMax = time.Hour
)

// withACME adds the ACME certificates obtained so far to st, and the
// tls-alpn-01 hook when c has acme entries.
func (g *Gateway) withACME(c *config.Config, st tlsserver.Settings) tlsserver.Settings {
	if len(acmeNames(c)) == 0 {
		return st
	}
	st.ACMEChallenge = g.acmeChallenge
	if src := g.acme.Load(); src != nil {
		st = src.apply(st)
	}
	return st
}

// acmeChallenge is the tls-alpn-01 hook: it answers only while the source
// exists and has a challenge pending for the name.
func (g *Gateway) acmeChallenge(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	src := g.acme.Load()
	if src == nil {
		return nil, errors.New("acme: no challenge pending")
	}
	return src.m.TLSALPNChallenge(hello)
}

// acmePlain answers http-01 challenges on the plain-HTTP listener once the
// source exists; everything else goes to next.
func (g *Gateway) acmePlain(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.acme.Load().plain(next).ServeHTTP(w, r)
	})
}

// startACME makes the ACME source for the bound listeners and obtains its
// certificates in the background. A config without acme entries: nothing.
func (g *Gateway) startACME() error {
	c := g.Config()
	var httpAddr net.Addr
	if g.lnHTTP != nil {
		httpAddr = g.lnHTTP.Addr()
	}
	src, err := newACMESource(c, httpAddr, g.lnHTTPS.Addr(), g.log, g.audit, g.acmeChanged)
	if err != nil || src == nil {
		return err
	}
	g.acme.Store(src)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer src.close()
		g.runACME(src)
	}()
	return nil
}

// runACME obtains the ACME certificates, retrying with back-off until it
// succeeds or the gateway stops; renewals then run inside the Manager
// until close.
func (g *Gateway) runACME(src *acmeSource) {
	wait := acmeRetryMin
	for {
		err := src.start(g.ctx)
		if err == nil {
			<-g.ctx.Done()
			return
		}
		if g.ctx.Err() != nil {
			return
		}
		g.log.Error("acme certificates not obtained; retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-g.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, acmeRetryMax)
	}
}

// acmeChanged serves the ACME certificates as they are now: it re-applies
// the TLS settings in force (serialised with Reload), as managedRenewed
// does for internal_ca entries.
func (g *Gateway) acmeChanged() {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.stopping {
		return
	}
	rt := g.rt.Load()
	if err := g.applyTLS(rt.cfg, rt.tlsSettings, rt); err != nil {
		g.log.Error("acme certificate not applied; the previous ones keep serving", "err", err)
		g.audit.Emit(audit.Event{Type: acme.EventFailed, Severity: audit.Critical, Reason: "not_applied", Detail: err.Error()})
		return
	}
	g.publishCerts(rt)
	serials := []string{}
	for _, c := range g.acme.Load().m.Certificates() {
		serials = append(serials, c.Leaf.SerialNumber.Text(16))
	}
	g.audit.Emit(audit.Event{Type: EventACMEApplied, Severity: audit.Info,
		Fields: map[string]any{"serials": serials}})
}

// EventACMEApplied is the audit event of the gateway starting to serve the
// ACME certificates it holds now (after each obtain or renewal).
const EventACMEApplied = "acme_certificates_applied"

// publishCerts hands the certificates in use (rt's, and the ACME ones) to
// the certificate-expiry metric and the expiry watch.
func (g *Gateway) publishCerts(rt *snapshot) {
	certs := rt.certs
	if src := g.acme.Load(); src != nil {
		certs = slices.Clone(certs)
		for _, c := range src.m.Certificates() {
			certs = append(certs, telemetry.CertInfoOf("server", "acme", c.Leaf))
		}
	}
	g.metrics.Certs.Set(certs)
	g.expiry.SetCertificates(certs)
}
