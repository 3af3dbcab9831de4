package jwt

import (
	"crypto/sha256"
	"sync"
	"time"
)

// cacheKey is the SHA-256 of a token: the cache never holds a token
// itself.
type cacheKey [sha256.Size]byte

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// cache is a bounded map of verified results with expiry. When full it
// drops the expired entries, then arbitrary ones down to 7/8 of its size,
// so that a flood of distinct valid tokens costs the flooder
// verifications, not the gateway memory.
type cache[V any] struct {
	mu  sync.Mutex
	m   map[cacheKey]cacheEntry[V]
	max int
}

func newCache[V any](max int) *cache[V] {
	return &cache[V]{m: make(map[cacheKey]cacheEntry[V]), max: max}
}

// get returns the value for k if it has not expired at now.
func (c *cache[V]) get(k cacheKey, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v until expires (nothing if that is not after now).
func (c *cache[V]) put(k cacheKey, v V, expires, now time.Time) {
	if !now.Before(expires) {
		return
	}
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
	c.m[k] = cacheEntry[V]{v: v, expires: expires}
}

func (c *cache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
