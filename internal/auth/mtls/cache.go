package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// result is the outcome of verifying one presented chain against one
// policy's bundle, with what the request path derives from it, computed
// once: a keep-alive request pays a hash and a map lookup.
type result struct {
	expires time.Time
	err     *Error // non-nil: refused (cached for negativeTTL)

	chain      []*x509.Certificate // verified: leaf first, trust anchor last
	facts      facts               // consumer empty: set per request
	consumer   string              // from the consumers mapping, "" if none matched
	certValue  string              // Client-Cert
	chainValue string              // Client-Cert-Chain, "" without intermediates
	identity   string              // identity header for consumer, "" if not configured

	lastSoftFail atomic.Int64 // unix nanoseconds of the last revocation_soft_fail event
}

// cacheKey identifies a presented chain: SHA-256 over each certificate's
// length and DER.
type cacheKey [sha256.Size]byte

func keyOf(presented []*x509.Certificate) cacheKey {
	h := sha256.New()
	var n [4]byte
	for _, c := range presented {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k cacheKey
	h.Sum(k[:0])
	return k
}

// cache is a bounded map of results with expiry. When full it drops the
// expired entries, then arbitrary ones down to 7/8 of its size, so that a
// flood of distinct chains costs the flooder verifications, not the
// gateway memory.
type cache struct {
	mu  sync.Mutex
	m   map[cacheKey]*result
	max int
}

func newCache(max int) *cache { return &cache{m: make(map[cacheKey]*result), max: max} }

// get returns the live result for k, or nil.
func (c *cache) get(k cacheKey, now time.Time) *result {
	c.mu.Lock()
	r := c.m[k]
	c.mu.Unlock()
	if r == nil || !now.Before(r.expires) {
		return nil
	}
	return r
}

func (c *cache) put(k cacheKey, r *result, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m { // map order is random enough for eviction
			if len(c.m) <= c.max*7/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[k] = r
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
