package jwt_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/policy"
)

// BenchmarkVerify: verification of one token, cached (a hash and a map
// lookup) against uncached (signature and claims), per algorithm.
func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	p, err := jwt.New(jwt.Config{Issuers: []jwt.Issuer{{Issuer: testIssuer, Audiences: []string{testAudience},
		JWKSFile: policy.FilePath(writeFile(b, string(k.jwks(b))))}}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "alice", "exp": now.Unix() + 3600,
		"iat": now.Unix(), "jti": "bench", "scope": "orders:read orders:write"}
	for _, s := range []signer{k.es256(), k.rs256(), k.eddsa()} {
		tok := mint(b, s, claims, nil)
		for _, cached := range []bool{false, true} {
			name := s.alg + "/uncached"
			if cached {
				name = s.alg + "/cached"
			}
			b.Run(name, func(b *testing.B) {
				ctx := b.Context()
				b.ReportAllocs()
				for b.Loop() {
					if !cached {
						jwt.ResetCache(p)
					}
					if _, err := p.Verify(ctx, tok, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPolicy: the policy's whole per-request cost in process, cached
// token, in front of a handler that does nothing.
func BenchmarkPolicy(b *testing.B) {
	w := newWorld(b, func(c *jwt.Config) { c.Scopes = []string{"orders:read"} })
	tok := mint(b, w.keys.es256(), w.claims(), nil)
	h := w.policy.Wrap(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.WriteHeader(http.StatusNoContent) }))
	serve := func() {
		r := httptest.NewRequest(http.MethodGet, "https://gw.example/orders", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		x := &policy.Exchange{ID: "bench", Route: "bench", Env: w.env}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(policy.WithExchange(r.Context(), x)))
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	serve()
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
