package dpop

import "time"

// Test hooks for the external tests, fuzz target and benchmarks.

// ReplayLen returns the number of proofs p's replay cache remembers.
func ReplayLen(p *Policy) int { return p.replay.len() }

// ParseProof is parseProof with p's settings; it returns the proof key's
// thumbprint, or the refusal.
func ParseProof(p *Policy, s string) (jkt string, err error) {
	pr, e := parseProof(s, p.algs, p.maxBytes)
	if e != nil {
		return "", e
	}
	return pr.jkt, nil
}

// NormalizeURI is normalizeURI.
var NormalizeURI = normalizeURI

// NonceAge checks nonce with p's nonces.
func NonceAge(p *Policy, nonce string, now time.Time) (time.Duration, bool) {
	return p.nonces.check(nonce, now)
}
