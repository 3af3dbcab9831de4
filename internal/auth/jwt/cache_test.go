package jwt_test

import (
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/jwt"
)

// TestCache: a repeated token costs one verification; a cached token is
// never served past its exp, whatever the leeway; per-request checks still
// run on a hit.
func TestCache(t *testing.T) {
	w := newWorld(t, func(c *jwt.Config) { c.Issuers[0].Leeway = 30 * time.Second })
	now := w.clock.Now().Unix()
	tok := mint(t, w.keys.rs256(), w.with("exp", now+60, "jti", "cached-1"), nil)
	for range 10 {
		expect(t, w.do(tok), "")
	}
	if n := jwt.Verifications(w.policy); n != 1 {
		t.Fatalf("%d verifications for 10 requests, want 1", n)
	}
	// Past exp but within the leeway: not served from the cache, verified
	// again (and accepted by the leeway).
	w.clock.Advance(61 * time.Second)
	expect(t, w.do(tok), "")
	if n := jwt.Verifications(w.policy); n != 2 {
		t.Fatalf("%d verifications, want 2: a token past exp must not come from the cache", n)
	}
	// Past exp and leeway: refused.
	w.clock.Advance(30 * time.Second)
	expect(t, w.do(tok), jwt.ReasonExpired)

	// Failures are not cached: each costs its own verification.
	bad := mint(t, w.keys.attacker4(), w.claims(), nil)
	before := jwt.Verifications(w.policy)
	expect(t, w.do(bad), jwt.ReasonBadSignature)
	expect(t, w.do(bad), jwt.ReasonBadSignature)
	if n := jwt.Verifications(w.policy) - before; n != 2 {
		t.Errorf("%d verifications for two bad tokens, want 2", n)
	}
}

// TestCacheBounded: the cache never grows past max_entries.
func TestCacheBounded(t *testing.T) {
	w := newWorld(t, func(c *jwt.Config) { c.Cache.MaxEntries = 16 })
	for range 100 {
		expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	}
	if n := jwt.CacheLen(w.policy); n > 16 {
		t.Errorf("cache holds %d entries, max 16", n)
	}
}
