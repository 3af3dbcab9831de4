// Package ttlcache is a bounded map whose entries expire: the cache of
// verified results that the authentication policies (jwt, mtls) keep, so
// that a request repeating a credential pays a hash and a lookup.
//
// When full it drops the expired entries, then arbitrary ones down to 7/8
// of its size, so that a flood of distinct credentials costs the flooder
// verifications, not the gateway memory. Times are passed in by the caller
// (its injected clock); the cache never reads the clock itself.
package ttlcache

import (
	"sync"
	"time"
)

type entry[V any] struct {
	v       V
	expires time.Time
}

// Cache maps keys to values until their expiry, with at most Max entries.
// It is safe for concurrent use. Keys should be digests (a SHA-256), never
// the credentials themselves.
type Cache[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]entry[V]
	max int
}

// New returns an empty cache of at most n entries (at least 1).
func New[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{m: make(map[K]entry[V]), max: max(n, 1)}
}

// Max returns the bound New was given (at least 1).
func (c *Cache[K, V]) Max() int { return c.max }

// Get returns the value for k if it has not expired at now.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v for k until expires; nothing if that is not after now.
func (c *Cache[K, V]) Put(k K, v V, expires, now time.Time) {
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
	c.m[k] = entry[V]{v: v, expires: expires}
}

// Len returns the number of entries held, expired ones included until
// they are evicted.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
