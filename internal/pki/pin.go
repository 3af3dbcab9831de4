package pki

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
)

// Pin is the SHA-256 digest of a certificate's SubjectPublicKeyInfo, the
// form HPKP made common and the config's `pins` lists use:
// "sha256/<base64 of the digest>".
type Pin [sha256.Size]byte

const pinPrefix = "sha256/"

// ParsePin parses "sha256/<base64>" (standard base64, with padding).
func ParsePin(s string) (Pin, error) {
	var p Pin
	rest, ok := strings.CutPrefix(s, pinPrefix)
	if !ok {
		return p, fmt.Errorf("pin %q: must start with %q", s, pinPrefix)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return p, fmt.Errorf("pin %q: not standard base64: %w", s, err)
	}
	if len(raw) != sha256.Size {
		return p, fmt.Errorf("pin %q: digest is %d bytes, want %d", s, len(raw), sha256.Size)
	}
	copy(p[:], raw)
	return p, nil
}

// SPKIPin returns the pin of a certificate's public key.
func SPKIPin(c *x509.Certificate) Pin {
	return sha256.Sum256(c.RawSubjectPublicKeyInfo)
}

// String returns the pin in its config form.
func (p Pin) String() string {
	return pinPrefix + base64.StdEncoding.EncodeToString(p[:])
}

// PinSet is a parsed list of pins.
type PinSet []Pin

// ParsePins parses every pin, returning the first error.
func ParsePins(ss []string) (PinSet, error) {
	out := make(PinSet, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePin(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Contains reports whether p is in the set, comparing in constant time.
func (ps PinSet) Contains(p Pin) bool {
	found := 0
	for i := range ps {
		found |= subtle.ConstantTimeCompare(ps[i][:], p[:])
	}
	return found == 1
}

// MatchChain reports whether any certificate of chain has a pinned key.
func (ps PinSet) MatchChain(chain []*x509.Certificate) bool {
	for _, c := range chain {
		if ps.Contains(SPKIPin(c)) {
			return true
		}
	}
	return false
}
