package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// proof is a DPoP proof whose structure, header, key and signature have
// been checked; its claims are still to be matched against the request.
type proof struct {
	alg   string
	jkt   string // RFC 7638 thumbprint of the proof key
	jti   string
	htm   string
	htu   string
	iat   float64 // seconds since the epoch
	ath   *string // nil when absent
	nonce *string // nil when absent
}

var b64 = base64.RawURLEncoding.Strict()

// parseProof checks one DPoP header value (RFC 9449 §4.3 steps 2-7):
// a compact JWS of at most maxBytes, typ dpop+jwt, an allowed asymmetric
// alg, a public jwk suited to alg, a signature that verifies with it and
// well-typed claims. It is pure.
func parseProof(s string, algs map[string]bool, maxBytes int) (*proof, *Error) {
	if len(s) > maxBytes {
		return nil, fail(ReasonMalformed, "proof of %d bytes exceeds max_proof_bytes %d", len(s), maxBytes)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return nil, fail(ReasonMalformed, "byte %#x at %d is not base64url: not a compact JWS", c, i)
		}
	}
	h, rest, ok1 := strings.Cut(s, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") || h == "" || payload == "" {
		return nil, fail(ReasonMalformed, "not a compact JWS of three parts")
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fail(ReasonMalformed, "header: %v", err)
	}
	hdr, err := objectMembers(hb)
	if err != nil {
		return nil, fail(ReasonMalformed, "header: %v", err)
	}
	var typ, alg string
	if json.Unmarshal(hdr["typ"], &typ) != nil || !isDPoPType(typ) {
		return nil, fail(ReasonBadTyp, "typ %q is not dpop+jwt", truncate(typ))
	}
	if json.Unmarshal(hdr["alg"], &alg) != nil || !algs[alg] {
		return nil, fail(ReasonAlgNotAllowed, "alg %q is not allowed", truncate(alg))
	}
	for _, m := range []string{"crit", "b64"} {
		if _, ok := hdr[m]; ok {
			return nil, fail(ReasonMalformed, "header parameter %q is not supported", m)
		}
	}
	raw, ok := hdr["jwk"]
	if !ok {
		return nil, fail(ReasonBadKey, "no jwk header")
	}
	key, err := parsePublicJWK(raw)
	if err == nil {
		err = keyFits(key.Key, alg)
	}
	if err != nil {
		return nil, &Error{Reason: ReasonBadKey, Err: err}
	}
	jws, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{supportedAlgs[alg]})
	if err != nil {
		return nil, fail(ReasonMalformed, "JWS: %v", err)
	}
	body, err := jws.Verify(key.Key)
	if err != nil {
		return nil, fail(ReasonBadSignature, "%s signature: %v", alg, err)
	}
	p, err := parseClaims(body)
	if err != nil {
		return nil, fail(ReasonMalformed, "claims: %v", err)
	}
	p.alg = alg
	if p.jkt, err = thumbprint(key); err != nil {
		return nil, &Error{Reason: ReasonBadKey, Err: err}
	}
	return p, nil
}

// isDPoPType reports whether a typ header names application/dpop+jwt:
// media types are case-insensitive and "application/" may be omitted
// (RFC 7515 §4.1.9).
func isDPoPType(typ string) bool {
	return strings.EqualFold(typ, "dpop+jwt") || strings.EqualFold(typ, "application/dpop+jwt")
}

// keyFits checks that the proof key is of the type and strength alg needs.
func keyFits(key any, alg string) error {
	var ok bool
	desc := fmt.Sprintf("%T", key)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		ok, desc = want != nil && k.Curve == want, "EC "+k.Curve.Params().Name
	case ed25519.PublicKey:
		ok = alg == "EdDSA"
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits, fewer than %d", k.N.BitLen(), minRSABits)
		}
		ok, desc = alg[0] == 'R' || alg[0] == 'P', "RSA"
	}
	if !ok {
		return fmt.Errorf("a %s key cannot sign %s", desc, alg)
	}
	return nil
}

// parseClaims reads the proof's claims: jti, htm, htu (strings) and iat (a
// number) are required; ath and nonce, when present, are strings.
func parseClaims(b []byte) (*proof, error) {
	m, err := objectMembers(b)
	if err != nil {
		return nil, err
	}
	p := &proof{}
	for name, dst := range map[string]*string{"jti": &p.jti, "htm": &p.htm, "htu": &p.htu} {
		if json.Unmarshal(m[name], dst) != nil || *dst == "" {
			return nil, fmt.Errorf("%s: missing, empty or not a string", name)
		}
	}
	var iat json.Number // json.Number also takes a string: refuse one
	if raw := m["iat"]; len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &iat) != nil {
		return nil, errors.New("iat: missing or not a number")
	}
	if p.iat, err = iat.Float64(); err != nil || math.IsInf(p.iat, 0) || math.Abs(p.iat) > 1e11 {
		return nil, errors.New("iat: not a plausible NumericDate")
	}
	for name, dst := range map[string]**string{"ath": &p.ath, "nonce": &p.nonce} {
		if v, ok := m[name]; ok {
			*dst = new(string)
			if json.Unmarshal(v, *dst) != nil {
				return nil, fmt.Errorf("%s: not a string", name)
			}
		}
	}
	return p, nil
}

// iatTime is the proof's iat as a time.
func (p *proof) iatTime() time.Time {
	sec, frac := math.Modf(p.iat)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// objectMembers decodes a JSON object into its members, refusing
// duplicate member names, which parsers resolve differently: a valid
// object has as many members as colons at its top level.
func objectMembers(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	if topLevelMembers(b) != len(m) {
		return nil, errors.New("duplicate member names")
	}
	return m, nil
}

// topLevelMembers counts the members of a valid JSON object.
func topLevelMembers(b []byte) int {
	n, depth, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ':':
			if depth == 1 {
				n++
			}
		}
	}
	return n
}

func truncate(s string) string {
	if len(s) <= maxAuditText {
		return s
	}
	return s[:maxAuditText] + "…"
}
