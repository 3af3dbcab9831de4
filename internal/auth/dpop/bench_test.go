package dpop_test

import (
	"net/http"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/auth/dpop"
	"github.com/wardengw/warden/internal/policy"
)

type discard struct{ h http.Header }

func (d *discard) Header() http.Header { return d.h }
func (d *discard) Write(b []byte) (int, error) {
	return len(b), nil
}
func (d *discard) WriteHeader(int) {}

// BenchmarkVerify is one request through the policy with a valid proof,
// per algorithm: parse, key, signature, claims, htu, replay cache.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256} {
		b.Run(string(alg), func(b *testing.B) {
			const pool = 512
			c := newClient(b, alg)
			proofs := make([]string, pool)
			for i := range proofs {
				proofs[i] = c.proof(b, claims(t0))
			}
			e := newEnv(b, dpop.Config{})
			x := &policy.Exchange{ID: "bench", Env: e.env}
			r := request()
			r = r.WithContext(policy.WithExchange(r.Context(), x))
			ok := 0
			h := e.pol.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok++ }))
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i%pool == 0 && i > 0 {
					b.StopTimer()
					e = newEnv(b, dpop.Config{}) // a fresh replay cache for the reused proofs
					x.Env = e.env
					h = e.pol.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok++ }))
					b.StartTimer()
				}
				x.Identity = policy.Identity{Claims: bound(c)}
				r.Header["Dpop"] = []string{proofs[i%pool]}
				h.ServeHTTP(w, r)
			}
			b.StopTimer()
			if ok != b.N {
				b.Fatalf("%d of %d accepted", ok, b.N)
			}
		})
	}
}

// BenchmarkParseProof is the pure proof check alone (ES256), without the
// request-bound checks and the replay cache.
func BenchmarkParseProof(b *testing.B) {
	c := newClient(b, jose.ES256)
	p := c.proof(b, claims(t0))
	e := newEnv(b, dpop.Config{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dpop.ParseProof(e.pol, p); err != nil {
			b.Fatal(err)
		}
	}
}
