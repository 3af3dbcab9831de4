package jwt_test

import (
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/policy"
)

// Test vectors from RFC 7520, "Examples of Protecting Content Using JSON
// Object Signing and Encryption (JOSE)", section 3 (keys: Figure 1, the
// P-521 public key; Figure 3, the RSA public key; Figure 5, the HMAC key)
// and section 4 (signatures: 4.1 RSA v1.5, 4.2 RSA-PSS, 4.3 ECDSA, 4.4
// HMAC-SHA2), https://www.rfc-editor.org/rfc/rfc7520. The payload of
// section 4 is a quotation, not a JWT claims set, so 4.1 to 4.3 are checked
// at the policy's key set and signature layer; 4.4 is driven through the
// whole policy, which must refuse it.
const (
	rfc7520KeySet = `{"keys":[
{"kty":"RSA","kid":"bilbo.baggins@hobbiton.example","use":"sig",
 "n":"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw",
 "e":"AQAB"},
{"kty":"EC","kid":"bilbo.baggins@hobbiton.example","use":"sig","crv":"P-521",
 "x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
 "y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"},
{"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037","use":"sig","alg":"HS256",
 "k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"}]}`

	rfc7520Payload = "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"

	// Section 4.1.3, Figure 13.
	rfc7520_4_1 = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." + rfc7520Payload + "." +
		"MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg"
	// Section 4.2.3, Figure 20.
	rfc7520_4_2 = "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." + rfc7520Payload + "." +
		"cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw"
	// Section 4.3.3, Figure 27.
	rfc7520_4_3 = "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." + rfc7520Payload + "." +
		"AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2"
	// Section 4.4.3, Figure 34.
	rfc7520_4_4 = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9." + rfc7520Payload + "." +
		"s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0"
)

func TestRFC7520(t *testing.T) {
	const kid = "bilbo.baggins@hobbiton.example"
	quote := "It\u2019s a dangerous business, Frodo, going out your door."
	for _, tt := range []struct {
		section, token, alg string
	}{
		{"4.1 RSA v1.5", rfc7520_4_1, "RS256"},
		{"4.2 RSA-PSS", rfc7520_4_2, "PS384"},
		{"4.3 ECDSA P-521", rfc7520_4_3, "ES512"},
	} {
		t.Run(tt.section, func(t *testing.T) {
			payload, reason := jwt.VerifyWithKeySet(tt.token, []byte(rfc7520KeySet), kid, tt.alg, tt.alg)
			if reason != "" {
				t.Fatalf("refused: %s", reason)
			}
			if !strings.HasPrefix(string(payload), quote) {
				t.Errorf("payload %q", payload)
			}
			// Outside the allow-list, the same vector is refused.
			if _, reason := jwt.VerifyWithKeySet(tt.token, []byte(rfc7520KeySet), kid, tt.alg, "EdDSA"); reason != jwt.ReasonAlgNotAllowed {
				t.Errorf("with EdDSA only: reason %q, want alg_not_allowed", reason)
			}
			// One altered signing-input byte breaks it.
			bad := strings.Replace(tt.token, "SXTigJlz", "SXTigJlx", 1)
			if _, reason := jwt.VerifyWithKeySet(bad, []byte(rfc7520KeySet), kid, tt.alg, tt.alg); reason != jwt.ReasonBadSignature {
				t.Errorf("altered payload: reason %q, want bad_signature", reason)
			}
		})
	}
	t.Run("4.4 HMAC refused", func(t *testing.T) {
		// The oct key never enters a key set...
		if _, reason := jwt.VerifyWithKeySet(rfc7520_4_4, []byte(rfc7520KeySet), "018c0ae5-4d9b-471b-bfd6-eef314bc7037", "HS256", "HS256"); reason != jwt.ReasonBadSignature {
			t.Errorf("HS256 with the oct key: reason %q, want bad_signature (no usable key)", reason)
		}
		// ...HS256 cannot be configured...
		_, err := jwt.New(jwt.Config{Issuers: []jwt.Issuer{{Issuer: "https://hobbiton.example", JWKSFile: policy.FilePath(writeFile(t, rfc7520KeySet)),
			Audiences: []string{"a"}, Algorithms: []string{"HS256"}}}})
		if err == nil || !strings.Contains(err.Error(), "HMAC cannot be used") {
			t.Errorf("HS256 configured: %v", err)
		}
		// ...and the policy refuses the token before anything else.
		w := newWorld(t, nil)
		expect(t, w.do(rfc7520_4_4), jwt.ReasonAlgNotAllowed)
	})
	t.Run("4.1 through the policy", func(t *testing.T) {
		// A key set file with the RFC's keys loads; the section 4 payload is
		// not a claims set, so the policy refuses it as malformed after the
		// header checks.
		p, err := jwt.New(jwt.Config{Issuers: []jwt.Issuer{{Issuer: "https://hobbiton.example", JWKSFile: policy.FilePath(writeFile(t, rfc7520KeySet)),
			Audiences: []string{"a"}, Algorithms: []string{"RS256", "PS384", "ES512"}}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Verify(t.Context(), rfc7520_4_1, timeNow())
		if e, ok := err.(*jwt.Error); !ok || e.Reason != jwt.ReasonTokenMalformed {
			t.Errorf("Verify: %v", err)
		}
	})
}
