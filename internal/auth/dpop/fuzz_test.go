package dpop_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/auth/dpop"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/testkit"
)

// FuzzProof sends arbitrary DPoP header values to a policy whose token is
// bound to the test's P-256 key: it never panics, answers only 200 or
// 401, and accepts a proof only if its signature verifies, checked
// independently with crypto/ecdsa, under that key.
func FuzzProof(f *testing.F) {
	es := newClient(f, jose.ES256)
	ed := newClient(f, jose.EdDSA)
	valid := es.proof(f, claims(t0))
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid,
		ed.proof(f, claims(t0)),
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2] + ".",
		rawProof(`{"typ":"dpop+jwt","alg":"none"}`, `{}`, nil),
		rawProof(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"","y":""}}`, `{}`, nil),
		rawProof(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"oct","k":"AA"}}`, `{"jti":"a","htm":"GET","htu":"https://gw.example/api/items","iat":1}`, nil),
		rawProof(`{"typ":"dpop+jwt","typ":"dpop+jwt"}`, `[]`, nil),
		rawProof(`{"typ":"dpop+jwt","alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`, `{"iat":1e400}`, nil),
		"", ".", "..", "a.b.c", "eyJ9.eyJ9.eyJ9",
	} {
		f.Add(s)
	}
	pub := &ecKey.PublicKey
	clock := testkit.NewClock(t0)
	f.Fuzz(func(t *testing.T, proof string) {
		pol, err := dpop.New(dpop.Config{}) // a fresh replay cache: each input stands alone
		if err != nil {
			t.Fatal(err)
		}
		_, _ = dpop.ParseProof(pol, proof) // the parser alone
		e := &env{pol: pol, clock: clock, env: &policy.Env{Now: clock.Now}}
		r := request()
		r.Header["Dpop"] = []string{proof}
		o := e.serve(t, r, bound(es))
		switch o.status {
		case http.StatusUnauthorized:
			return
		case http.StatusOK:
		default:
			t.Fatalf("status %d", o.status)
		}
		p := strings.Split(proof, ".")
		sig, err := base64.RawURLEncoding.DecodeString(p[len(p)-1])
		if len(p) != 3 || err != nil || len(sig) != 64 {
			t.Fatalf("accepted a proof that is not a compact ES256 JWS: %q", proof)
		}
		sum := sha256.Sum256([]byte(p[0] + "." + p[1]))
		if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("accepted a proof not signed by the bound key: %q", proof)
		}
	})
}
