package mtls_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
)

// BenchmarkKeepAlive: one client on one kept-alive HTTPS connection, the
// bare upstream handler against the same behind the mtls policy with its
// verification cache warm, with revocation off and with a revocation
// checker that answers at once (standing for a warm revocation cache).
func BenchmarkKeepAlive(b *testing.B) {
	p := newPKI(b)
	leaf := p.client(b, pkitest.Options{URIs: []string{"spiffe://acme.example/billing/api"}})
	newPolicy := func(cfg mtls.Config) *mtls.Policy {
		cfg.CAFiles = []policy.FilePath{policy.FilePath(p.bundle)}
		pol, err := mtls.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return pol
	}
	allow := []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/*"}}
	for _, bc := range []struct {
		name string
		pol  *mtls.Policy
	}{
		{"bare", nil},
		{"mtls", newPolicy(mtls.Config{Revocation: mtls.RevocationOff})},
		{"mtls+revocation", newPolicy(mtls.Config{})},
		{"mtls+revocation+allow+identity", newPolicy(mtls.Config{Allow: allow, Forward: mtls.Forward{IdentityHeader: "X-Client-Identity"}})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := startWith(b, p, bc.pol, false)
			c := w.client(b, leaf)
			get := func() {
				resp, err := c.Get(w.url + "/x")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			get() // handshake and warm the cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				get()
			}
		})
	}
}

// BenchmarkPolicy: the policy's own per-request cost, in process, in front
// of a handler that does nothing.
func BenchmarkPolicy(b *testing.B) {
	p := newPKI(b)
	leaf := p.client(b, pkitest.Options{URIs: []string{"spiffe://acme.example/billing/api"}})
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	env := &policy.Env{Revocation: &fakeChecker{}, Now: time.Now}
	for _, bc := range []struct {
		name string
		cfg  *mtls.Config
	}{
		{"bare", nil},
		{"warm", &mtls.Config{Revocation: mtls.RevocationOff}},
		{"warm+revocation+allow+identity", &mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/*"}},
			Forward: mtls.Forward{IdentityHeader: "X-Client-Identity"}}},
		{"cold", &mtls.Config{Revocation: mtls.RevocationOff}}, // every request verifies (cache defeated)
	} {
		b.Run(bc.name, func(b *testing.B) {
			var h http.Handler = noop
			var pol *mtls.Policy
			if bc.cfg != nil {
				bc.cfg.CAFiles = []policy.FilePath{policy.FilePath(p.bundle)}
				var err error
				if pol, err = mtls.New(*bc.cfg); err != nil {
					b.Fatal(err)
				}
				h = pol.Wrap(noop)
			}
			state := &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, PeerCertificates: leaf.Chain}
			serve := func() {
				r := httptest.NewRequest(http.MethodGet, "https://gw.example/x", nil)
				r.TLS = state
				x := &policy.Exchange{ID: "bench", Route: "bench", Env: env, ConnStart: time.Now()}
				r = r.WithContext(policy.WithExchange(r.Context(), x))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusNoContent {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			serve()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if bc.name == "cold" {
					mtls.ResetCache(pol)
				}
				serve()
			}
		})
	}
}
