package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
	"github.com/wardengw/warden/internal/testkit"
)

// fixture is a root and an intermediate CA, an OCSP responder and a CRL
// distribution point for the intermediate, an injected clock, an audit
// sink and a metrics registry.
type fixture struct {
	t     testing.TB
	root  *pkitest.CA
	inter *pkitest.CA
	ocsp  *revocationtest.Responder
	dp    *revocationtest.CRLServer
	clock *testkit.Clock
	sink  *audit.MemorySink
	reg   *prometheus.Registry
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: testkit.NewClock(time.Now()), sink: audit.NewMemorySink(), reg: prometheus.NewRegistry()}
	f.root = pkitest.NewRootCA(t, "Revocation Test Root", pkitest.Options{})
	f.inter = f.root.NewIntermediate(t, "Revocation Test Intermediate", pkitest.Options{})
	f.ocsp = revocationtest.NewResponder(t, f.inter)
	f.ocsp.SetClock(f.clock.Now)
	f.dp = revocationtest.NewCRLServer(t, f.crl(nil))
	return f
}

// crl returns a CRL of the intermediate, current at the fixture's clock,
// revoking revoked.
func (f *fixture) crl(revoked map[*big.Int]revocationtest.Revocation) []byte {
	return revocationtest.NewCRL(f.t, f.inter.Cert, f.inter.Key, revocationtest.CRLOptions{
		ThisUpdate: f.clock.Now().Add(-time.Minute), NextUpdate: f.clock.Now().Add(time.Hour), Revoked: revoked,
	})
}

// leafOCSP, leafDP and leafBoth issue leaves naming the fixture's responder,
// distribution point, or both; leafNone names neither.
func (f *fixture) leafOCSP() *pkitest.Leaf {
	return f.inter.Issue(f.t, pkitest.Options{CommonName: "ocsp-client", OCSPServer: []string{f.ocsp.URL}})
}

func (f *fixture) leafDP() *pkitest.Leaf {
	return f.inter.Issue(f.t, pkitest.Options{CommonName: "crl-client", CRLDistributionPoints: []string{f.dp.URL}})
}

func (f *fixture) leafBoth() *pkitest.Leaf {
	return f.inter.Issue(f.t, pkitest.Options{CommonName: "both-client", OCSPServer: []string{f.ocsp.URL}, CRLDistributionPoints: []string{f.dp.URL}})
}

func (f *fixture) leafNone() *pkitest.Leaf {
	return f.inter.Issue(f.t, pkitest.Options{CommonName: "plain-client"})
}

// checker returns a Checker on the fixture's clock, audit and registry.
func (f *fixture) checker(cfg Config) *Checker {
	f.t.Helper()
	c, err := f.newChecker(cfg)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	return c
}

func (f *fixture) newChecker(cfg Config) (*Checker, error) {
	cfg.Now = f.clock.Now
	cfg.Audit = audit.New(f.sink)
	cfg.Registry = f.reg
	c, err := New(cfg, []*x509.Certificate{f.root.Cert, f.inter.Cert})
	if c != nil {
		f.t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// writeFile writes data to a fresh file of the test and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func check(c *Checker, l *pkitest.Leaf) error {
	return c.CheckChain(context.Background(), l.Chain)
}

func wantUnavailable(t testing.TB, err error, reason string) *UnavailableError {
	t.Helper()
	var u *UnavailableError
	if !errors.As(err, &u) {
		t.Fatalf("got %v (%T), want UnavailableError %q", err, err, reason)
	}
	if u.Reason != reason {
		t.Fatalf("reason %q (%v), want %q", u.Reason, err, reason)
	}
	if Reason(err) != reason {
		t.Fatalf("Reason(err) = %q, want %q", Reason(err), reason)
	}
	return u
}

func wantRevoked(t testing.TB, err error, serial *big.Int, code int, source string) *RevokedError {
	t.Helper()
	var r *RevokedError
	if !errors.As(err, &r) {
		t.Fatalf("got %v (%T), want RevokedError", err, err)
	}
	if r.Serial.Cmp(serial) != 0 || r.ReasonCode != code || r.Source != source || r.ReasonText != ReasonText(code) {
		t.Fatalf("got %+v, want serial %s, reason %d, source %s", r, serial.Text(16), code, source)
	}
	if Reason(err) != ReasonRevoked {
		t.Fatalf("Reason(err) = %q", Reason(err))
	}
	return r
}

// counter sums the values of the metric name matching labels.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// waitEvent waits for an audit event matching match.
func (f *fixture) waitEvent(match func(audit.Event) bool) audit.Event {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := f.sink.Wait(ctx, match)
	if err != nil {
		f.t.Fatalf("no matching audit event: %v; events: %+v", err, f.sink.Events())
	}
	return e
}
