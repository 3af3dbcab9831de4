package jwt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/policy"
)

var knownReasons = map[string]bool{
	jwt.ReasonTokenMalformed: true, jwt.ReasonTokenTooLarge: true, jwt.ReasonAlgNotAllowed: true, jwt.ReasonUntrustedKeyHeader: true,
	jwt.ReasonUnknownKID: true, jwt.ReasonBadSignature: true, jwt.ReasonIssuerUnknown: true, jwt.ReasonAudienceMismatch: true,
	jwt.ReasonExpired: true, jwt.ReasonNotYetValid: true, jwt.ReasonExpMissing: true, jwt.ReasonClaimMissing: true,
	jwt.ReasonCritUnsupported: true, jwt.ReasonDuplicateMember: true,
}

// FuzzParseToken: the verifier never panics, refuses with a known reason,
// and accepts only tokens whose signature an independent go-jose check
// verifies with one of the issuer's keys, for the configured issuer and
// audience.
func FuzzParseToken(f *testing.F) {
	k := keys(f)
	p, err := jwt.New(jwt.Config{Issuers: []jwt.Issuer{{Issuer: testIssuer, Audiences: []string{testAudience},
		JWKSFile: policy.FilePath(writeFile(f, string(k.jwks(f))))}}})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	claims := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "alice", "exp": now.Unix() + 300, "iat": now.Unix()}
	for _, s := range []signer{k.rs256(), k.ps256(), k.es256(), k.eddsa()} {
		f.Add(mint(f, s, claims, nil))
	}
	f.Add(mint(f, k.attacker4(), claims, nil))
	f.Add(mint(f, k.es256(), claims, map[string]any{"crit": []string{"b64"}}))
	f.Add(mint(f, k.es256(), claims, map[string]any{"jku": "https://evil.example"}))
	f.Add(signRaw(f, "none", nil, []byte(`{"alg":"none"}`), []byte(`{"iss":"https://idp.example"}`)))
	f.Add(signRaw(f, "RS256", k.rsa, []byte(`{"alg":"RS256","kid":"rsa-1","kid":"x"}`), []byte(`{}`)))
	f.Add("a.b.c")
	f.Add("..")
	f.Add(strings.Repeat("A", 9000))
	pubs := []any{k.rsa.Public(), k.ec.Public(), k.ed.Public()}
	allAlgs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

	f.Fuzz(func(t *testing.T, token string) {
		tok, err := p.Verify(t.Context(), token, now)
		if err != nil {
			var e *jwt.Error
			if !errors.As(err, &e) || !knownReasons[e.Reason] {
				t.Fatalf("refusal %v is not a known *jwt.Error", err)
			}
			return
		}
		jws, err := jose.ParseSignedCompact(token, allAlgs)
		if err != nil {
			t.Fatalf("accepted a token go-jose cannot parse: %v", err)
		}
		verified := false
		for _, pub := range pubs {
			if _, err := jws.Verify(pub); err == nil {
				verified = true
			}
		}
		if !verified {
			t.Fatal("accepted a token whose signature does not verify")
		}
		if tok.Issuer != testIssuer || tok.Expiry.IsZero() || !now.Before(tok.Expiry.Add(jwt.DefaultLeeway)) {
			t.Fatalf("accepted token %+v", tok)
		}
	})
}
