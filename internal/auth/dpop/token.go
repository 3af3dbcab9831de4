package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Authorization schemes, as AccessToken returns them.
const (
	SchemeDPoP   = "DPoP"   // RFC 9449 §7.1: a DPoP-bound access token
	SchemeBearer = "Bearer" // RFC 6750
)

// AccessToken reads the access token from the request's single
// Authorization header, "DPoP <token>" or "Bearer <token>" (scheme
// case-insensitive, token68 syntax). It returns the canonical scheme
// (SchemeDPoP or SchemeBearer) and the token; ("", "", nil) when there is
// no Authorization header or it uses another scheme (Basic…); an error for
// several Authorization headers or a DPoP or Bearer credential that is not
// a token68.
func AccessToken(r *http.Request) (token, scheme string, err error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", "", nil
	case 1:
	default:
		return "", "", errors.New("several Authorization headers")
	}
	s, rest, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(s, SchemeDPoP):
		scheme = SchemeDPoP
	case strings.EqualFold(s, SchemeBearer):
		scheme = SchemeBearer
	default:
		return "", "", nil
	}
	token = strings.TrimLeft(rest, " ")
	if !isToken68(token) {
		return "", "", fmt.Errorf("the %s credential is not a token68", scheme)
	}
	return token, scheme, nil
}

// isToken68 reports whether s is an RFC 9110 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// AccessTokenHash is a proof's "ath" for token: base64url (no padding) of
// the SHA-256 of its ASCII bytes (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint is the RFC 7638 JWK SHA-256 thumbprint of a public key
// (*ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey), base64url
// without padding: the value of an access token's cnf.jkt (RFC 9449 §6.1).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
	default:
		return "", fmt.Errorf("dpop: thumbprint of %T: not a supported public key", pub)
	}
	return thumbprint(&jose.JSONWebKey{Key: pub})
}

// ThumbprintJWK is the RFC 7638 SHA-256 thumbprint of a JWK given as JSON,
// which must be a public key: a JWK carrying private or symmetric key
// material is an error.
func ThumbprintJWK(jwk []byte) (string, error) {
	k, err := parsePublicJWK(jwk)
	if err != nil {
		return "", err
	}
	return thumbprint(k)
}

func thumbprint(k *jose.JSONWebKey) (string, error) {
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 §6, RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// parsePublicJWK parses a JWK that must be an asymmetric public key.
func parsePublicJWK(b []byte) (*jose.JSONWebKey, error) {
	members, err := objectMembers(b)
	if err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return nil, fmt.Errorf("jwk holds private or symmetric key material (%q)", m)
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	if !k.Valid() || !k.IsPublic() {
		return nil, errors.New("jwk is not a valid public key")
	}
	return &k, nil
}

// boundJKT reads cnf.jkt from the access token's claims. A token is
// DPoP-bound when cnf has a jkt member; a cnf that is not an object, or a
// jkt that is not a non-empty string, counts as bound to no key, so that
// the request fails closed.
func boundJKT(claims map[string]any) (jkt string, bound bool) {
	cnf, ok := claims["cnf"]
	if !ok {
		return "", false
	}
	m, ok := cnf.(map[string]any)
	if !ok {
		return "", true
	}
	v, ok := m["jkt"]
	if !ok {
		return "", false
	}
	s, _ := v.(string)
	return s, true
}
