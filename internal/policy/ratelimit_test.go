package policy

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// mapRateLimit is the previous bucket store, kept as the attack's
// demonstration and the benchmark's baseline: past maxBuckets it dropped
// full buckets and, if none was, emptied the whole map.
type mapRateLimit struct {
	limit   rate.Limit
	burst   int
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func (p *mapRateLimit) allow(key string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	lim, ok := p.buckets[key]
	if !ok {
		if len(p.buckets) >= maxBuckets {
			for k, l := range p.buckets {
				if l.TokensAt(now) >= float64(p.burst) {
					delete(p.buckets, k)
				}
			}
			if len(p.buckets) >= maxBuckets {
				clear(p.buckets)
			}
		}
		lim = rate.NewLimiter(p.limit, p.burst)
		p.buckets[key] = lim
	}
	return lim.AllowN(now, 1)
}

func floodKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "ip:10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return keys
}

// TestRateLimitFloodKeepsLimits: a client over its limit stays limited
// while an attacker sprays 200,000 distinct keys (twice the table), the
// clock frozen so that no token comes back; memory stays bounded. The
// previous store, under the same flood, let the client through again.
func TestRateLimitFloodKeepsLimits(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := NewRateLimit(RateLimitConfig{RequestsPerSecond: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	old := &mapRateLimit{limit: 1, burst: 2, buckets: map[string]*rate.Limiter{}}
	const victim = "ip:192.0.2.1"
	for range 2 {
		p.allow(victim, now)
		old.allow(victim, now)
	}
	keys := floodKeys(200_000)
	oldReset := 0
	for i, k := range keys {
		p.allow(k, now)
		old.allow(k, now)
		if i%1000 == 999 { // the client keeps trying
			if ok, wait := p.allow(victim, now); ok || wait <= 0 {
				t.Fatalf("after %d flood keys the limited client got through", i+1)
			}
			if old.allow(victim, now) {
				oldReset++
			}
		}
		if len(p.buckets) > maxBuckets || p.lru.Len() != len(p.buckets) {
			t.Fatalf("%d buckets, %d in the LRU list: over the bound of %d", len(p.buckets), p.lru.Len(), maxBuckets)
		}
	}
	if oldReset == 0 {
		t.Fatal("the previous store resisted the flood: this test no longer shows the attack")
	}
	t.Logf("the previous store let the limited client through %d times during the flood", oldReset)
}

// TestRateLimitEvictsIdleFirst: past the bound, a full (idle) bucket near
// the least recently used end gives way before a partly used one, so the
// partly used one keeps its state.
func TestRateLimitEvictsIdleFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := NewRateLimit(RateLimitConfig{RequestsPerSecond: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.max = 3
	p.allow("a", t0)
	p.allow("a", t0) // a is empty
	p.allow("b", t0) // b has 1 of 2
	t1 := t0.Add(time.Second)
	p.allow("c", t1) // LRU order: a, b, c; at t1 a has 1 token, b is full again
	p.allow("d", t1)
	if _, ok := p.buckets["b"]; ok || len(p.buckets) != 3 {
		t.Fatalf("the idle bucket b was kept: %v", keysOf(p))
	}
	// a kept its state: one token left at t1, none after using it.
	if ok, _ := p.allow("a", t1); !ok {
		t.Fatal("a lost its token")
	}
	if ok, _ := p.allow("a", t1); ok {
		t.Fatal("a was reset to a full bucket")
	}
}

func keysOf(p *RateLimit) []string {
	var ks []string
	for k := range p.buckets {
		ks = append(ks, k)
	}
	return ks
}

// BenchmarkRateLimitStore compares the bucket stores in one run: hot keys
// (a fixed set of clients) and a flood of new keys past the bound.
func BenchmarkRateLimitStore(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hot := floodKeys(1000)
	flood := floodKeys(1 << 18)
	for _, c := range []struct {
		name string
		keys []string
	}{{"hot", hot}, {"flood", flood}} {
		b.Run(c.name+"/store=map_clear", func(b *testing.B) {
			p := &mapRateLimit{limit: 1e9, burst: 1e9, buckets: map[string]*rate.Limiter{}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				p.allow(c.keys[i%len(c.keys)], now)
			}
		})
		b.Run(c.name+"/store=lru", func(b *testing.B) {
			p, err := NewRateLimit(RateLimitConfig{RequestsPerSecond: 1e9, Burst: 1e9})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				p.allow(c.keys[i%len(c.keys)], now)
			}
		})
	}
}
