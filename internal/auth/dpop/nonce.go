package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// nonces issues and checks server nonces (RFC 9449 §8) statelessly: a
// nonce is base64url(issued || HMAC-SHA256(key, issued)[:16]), issued
// being the issue time in Unix nanoseconds. Keys are random, one per
// lifetime-long epoch: a nonce verifies with the key of its epoch, which
// is kept for one more epoch and then forgotten, so a nonce is refused
// after at most two lifetimes even before its age is checked.
//
// Stateless rather than stored: a client without a valid proof can make
// the gateway issue nonces at will (every 401 carries one), and storing
// them would let it fill memory; an HMAC costs a hash and no memory, and
// the jti replay cache, not the nonce, stops replays.
type nonces struct {
	lifetime time.Duration

	mu        sync.Mutex
	epoch     int64 // epoch of cur; -1 before first use
	cur, prev []byte
}

const (
	nonceMACLen = 16
	nonceLen    = 8 + nonceMACLen
)

func newNonces(lifetime time.Duration) *nonces {
	return &nonces{lifetime: lifetime, epoch: -1}
}

// key returns the key of the epoch of t, or nil if that epoch's key has
// been forgotten (or is in the future). Keys are made lazily, so that
// building the policy stays pure.
func (n *nonces) key(t, now time.Time) []byte {
	want, cur := t.UnixNano()/int64(n.lifetime), now.UnixNano()/int64(n.lifetime)
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur > n.epoch {
		if cur == n.epoch+1 {
			n.prev = n.cur
		} else {
			n.prev = nil
		}
		n.cur, n.epoch = make([]byte, 32), cur
		_, _ = rand.Read(n.cur) // never fails (Go 1.24+)
	}
	switch want {
	case n.epoch:
		return n.cur
	case n.epoch - 1:
		return n.prev
	}
	return nil
}

func (n *nonces) mac(key []byte, issued []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("warden dpop nonce\x00"))
	m.Write(issued)
	return m.Sum(nil)[:nonceMACLen]
}

// issue returns a fresh nonce.
func (n *nonces) issue(now time.Time) string {
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	copy(b[8:], n.mac(n.key(now, now), b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// check returns the age of a nonce this policy issued that is still
// current, or ok false.
func (n *nonces) check(nonce string, now time.Time) (age time.Duration, ok bool) {
	b, err := b64.DecodeString(nonce)
	if err != nil || len(b) != nonceLen {
		return 0, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age = now.Sub(issued)
	if age < 0 || age > n.lifetime {
		return 0, false
	}
	key := n.key(issued, now)
	if key == nil || !hmac.Equal(n.mac(key, b[:8]), b[8:]) {
		return 0, false
	}
	return age, true
}
