package jwt

import (
	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/ttlcache"
)

// Test hooks: the external tests and fuzz targets reach internals through
// these.

// Verifications returns how many signature verifications p has run (cache
// hits excluded).
func Verifications(p *Policy) int64 { return p.verifications.Load() }

// CacheLen returns the number of cached verified tokens.
func CacheLen(p *Policy) int { return p.cache.Len() }

// IntrospectionCalls returns how many requests p sent to its endpoint.
func IntrospectionCalls(p *Introspection) int64 { return p.calls.Load() }

// VerifyWithKeySet parses jwks as a key set would be, and verifies the
// compact JWS raw with the set's keys named by kid that fit alg, through
// the same signature step as the policy, with algs as the allow-list. It
// returns the payload, or the refusal's reason.
func VerifyWithKeySet(raw string, jwks []byte, kid, alg string, algs ...string) ([]byte, string) {
	set, err := parseKeySet(jwks)
	if err != nil {
		return nil, "keyset: " + err.Error()
	}
	var keys []jose.JSONWebKey
	for _, k := range set.keys(kid) {
		if keyFits(k, alg) {
			keys = append(keys, k)
		}
	}
	allowed := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		allowed[i] = jose.SignatureAlgorithm(a)
	}
	payload, e := verifySignature(raw, allowed, keys)
	if e != nil {
		return nil, e.Reason
	}
	return payload, ""
}

// ResetCache empties the cache of verified tokens.
func ResetCache(p *Policy) { p.cache = ttlcache.New[cacheKey, *Token](p.cache.Max()) }

// WaitIdle waits until no key-set fetch of p is running, its outcome
// recorded: tests synchronise with background fetches through it.
func WaitIdle(p *Policy) {
	for _, is := range p.issuers {
		if rk, ok := is.keys.(*remoteKeys); ok {
			rk.idle()
		}
	}
}
