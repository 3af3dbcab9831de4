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

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/acme"
	"github.com/wardengw/warden/internal/tlsserver"
)

// acmeSource is the ACME source of server certificates
// (tls.certificates[].acme), for the gateway's managed-certificate seam.
// The order of use at start:
//
//  1. buildTLS leaves out entries with acme (acmeNames lists them); with
//     a source, the HTTPS tlsserver.Server may start without certificates
//     (Settings.ACMEChallenge set by apply).
//  2. Start binds the listeners, then newACMESource with their bound
//     addresses; the plain-HTTP handler is wrapped by plain (it must
//     answer http-01 before the first certificate exists).
//  3. start obtains what storage lacks; onChange (then and at every
//     renewal) re-applies the TLS settings, passing them through apply.
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
