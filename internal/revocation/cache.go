package revocation

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"sync"
	"time"
)

// ocspResult is a cached OCSP answer: err is nil (good), a *RevokedError,
// or an *UnavailableError (remembered for failureTTL only).
type ocspResult struct {
	err     error
	expires time.Time
}

const cacheShards = 16

// ocspCache maps (issuer, serial) to OCSP answers. It is sharded to keep
// lock contention off the request path and bounded: a full shard first
// drops expired entries, then an arbitrary one.
type ocspCache struct {
	max    int // per shard
	shards [cacheShards]struct {
		mu sync.RWMutex
		m  map[cacheKey]*ocspResult
	}
}

// cacheKey names a certificate: its issuer's key (issuerKey) and serial.
type cacheKey struct {
	issuer [32]byte
	serial string // serialKey
}

func newOCSPCache(maxEntries int) *ocspCache {
	c := &ocspCache{max: max(1, maxEntries/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*ocspResult)
	}
	return c
}

func ocspKey(ik [32]byte, serial *big.Int) cacheKey {
	return cacheKey{issuer: ik, serial: serialKey(serial)}
}

// String is the key for the fetch flight.
func (k cacheKey) String() string { return string(k.issuer[:]) + k.serial }

// shard spreads keys by serial (random or sequential, its low byte varies)
// and issuer.
func (c *ocspCache) shard(k cacheKey) int {
	b := k.issuer[0]
	if n := len(k.serial); n > 0 {
		b ^= k.serial[n-1]
	}
	return int(b % cacheShards)
}

// get returns the unexpired answer for key.
func (c *ocspCache) get(key cacheKey, now time.Time) (*ocspResult, bool) {
	s := &c.shards[c.shard(key)]
	s.mu.RLock()
	r, ok := s.m[key]
	s.mu.RUnlock()
	if !ok || !now.Before(r.expires) {
		return nil, false
	}
	return r, true
}

func (c *ocspCache) put(key cacheKey, r *ocspResult, now time.Time) {
	s := &c.shards[c.shard(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.max {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.max {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[key] = r
}

// sweep drops expired entries.
func (c *ocspCache) sweep(now time.Time) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

func (c *ocspCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// issuerKeys memoises issuerKey, by the issuer certificate's DER: chains
// share a handful of issuers, and hashing is most of the request-path cost.
// Bounded: when full, it starts over.
type issuerKeys struct {
	mu sync.RWMutex
	m  map[string][32]byte
}

const maxIssuerKeys = 1024

func (ks *issuerKeys) get(issuer *x509.Certificate) [32]byte {
	ks.mu.RLock()
	k, ok := ks.m[string(issuer.Raw)]
	ks.mu.RUnlock()
	if ok {
		return k
	}
	k = issuerKey(issuer)
	ks.mu.Lock()
	if ks.m == nil || len(ks.m) >= maxIssuerKeys {
		ks.m = make(map[string][32]byte)
	}
	ks.m[string(issuer.Raw)] = k
	ks.mu.Unlock()
	return k
}

// issuerKey identifies an issuer by its name and public key: CRLs and
// OCSP answers verified against one are used only for certificates whose
// issuer has both.
func issuerKey(issuer *x509.Certificate) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(issuer.RawSubject)))
	h.Write(n[:])
	h.Write(issuer.RawSubject)
	h.Write(issuer.RawSubjectPublicKeyInfo)
	var k [32]byte
	h.Sum(k[:0])
	return k
}
