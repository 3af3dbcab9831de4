package dpop

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// replayCache remembers the (jkt, jti) of every accepted proof until its
// iat leaves the window. It holds at most max entries: when full it first
// drops expired entries, then the entries expiring soonest, and raises a
// floor so that any proof whose expiry is at or below the highest dropped
// one is refused, since it could be a replay of a dropped entry. Memory
// stays bounded under a flood of unique jtis, and no replay is ever
// admitted; the cost of a flood is that proofs with the oldest iats are
// refused until the window moves past the floor.
type replayCache struct {
	mu    sync.Mutex
	max   int
	seen  map[[32]byte]struct{}
	byExp expiryHeap
	floor int64 // UnixNano: proofs expiring at or before it are refused
}

type replayEntry struct {
	key [32]byte
	exp int64 // UnixNano
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[[32]byte]struct{}, min(max, 1024))}
}

// replayKey joins the proof key and jti: a jti is unique per key.
func replayKey(jkt, jti string) [32]byte {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// add records key until exp and reports whether it is fresh: false for a
// replay, or a proof the cache can no longer vouch for (at or below the
// floor).
func (c *replayCache) add(key [32]byte, exp, now time.Time) bool {
	e, n := exp.UnixNano(), now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byExp) > 0 && c.byExp[0].exp < n {
		delete(c.seen, heap.Pop(&c.byExp).(replayEntry).key)
	}
	if _, dup := c.seen[key]; dup || e <= c.floor {
		return false
	}
	if len(c.byExp) >= c.max && e <= c.byExp[0].exp {
		return false // making room would raise the floor to at least e
	}
	for len(c.byExp) >= c.max {
		old := heap.Pop(&c.byExp).(replayEntry)
		delete(c.seen, old.key)
		c.floor = max(c.floor, old.exp)
	}
	if e <= c.floor {
		return false
	}
	c.seen[key] = struct{}{}
	heap.Push(&c.byExp, replayEntry{key: key, exp: e})
	return true
}

// len returns the number of remembered proofs.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// expiryHeap is a min-heap of entries by expiry.
type expiryHeap []replayEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
