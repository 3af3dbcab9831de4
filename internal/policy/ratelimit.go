package policy

import (
	"container/list"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

func init() { RegisterConfig("rate_limit", NewRateLimit) }

// RateLimitConfig is the config block of the local rate_limit policy.
type RateLimitConfig struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
	// Key selects what is limited: client_ip (default), consumer (the
	// authenticated consumer, falling back to the client IP) or route.
	Key string `yaml:"key"`
}

// RateLimit is a token bucket per key, in this process's memory. At most
// maxBuckets keys are tracked; see bucketFor for which one gives way.
type RateLimit struct {
	limit rate.Limit
	burst int
	key   string
	max   int // maxBuckets; tests lower it

	mu      sync.Mutex
	buckets map[string]*list.Element // key -> element of lru holding its *bucket
	lru     list.List                // most recently used first
}

// bucket is one key's token bucket.
type bucket struct {
	key string
	lim *rate.Limiter
}

var _ Policy = (*RateLimit)(nil)

const (
	// maxBuckets bounds memory under a flood of distinct keys.
	maxBuckets = 100_000
	// idleScan is how many of the least recently used buckets are looked
	// at for an idle (full) one before the least recently used gives way.
	idleScan = 8
)

// NewRateLimit builds the policy.
func NewRateLimit(c RateLimitConfig) (*RateLimit, error) {
	if c.RequestsPerSecond <= 0 || math.IsInf(c.RequestsPerSecond, 0) || math.IsNaN(c.RequestsPerSecond) {
		return nil, fmt.Errorf("requests_per_second must be a positive number")
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(math.Ceil(c.RequestsPerSecond)))
	}
	if c.Burst < 1 {
		return nil, fmt.Errorf("burst must be at least 1")
	}
	switch c.Key {
	case "":
		c.Key = "client_ip"
	case "client_ip", "consumer", "route":
	default:
		return nil, fmt.Errorf("key %q is not one of client_ip, consumer, route", c.Key)
	}
	return &RateLimit{limit: rate.Limit(c.RequestsPerSecond), burst: c.Burst, key: c.Key, max: maxBuckets,
		buckets: map[string]*list.Element{}}, nil
}

func (p *RateLimit) keyOf(r *http.Request, x *Exchange) string {
	switch {
	case p.key == "route":
		return "route"
	case p.key == "consumer" && x != nil && x.Identity.Consumer != "":
		return "consumer:" + x.Identity.Consumer
	}
	return "ip:" + ClientKey(r, x, 64)
}

// allow takes a token for key, or returns how long until one is free.
func (p *RateLimit) allow(key string, now time.Time) (bool, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lim := p.bucketFor(key, now)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	res := lim.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	res.CancelAt(now)
	return false, wait
}

// bucketFor returns key's bucket, marked most recently used; p.mu is held.
// A new key past p.max takes the place of an idle (full) bucket among the
// least recently used, which loses nothing (a full bucket is a fresh one),
// or else of the least recently used: a key that keeps sending keeps its
// bucket, however many other keys appear. Nothing is ever reset wholesale.
func (p *RateLimit) bucketFor(key string, now time.Time) *rate.Limiter {
	if el, ok := p.buckets[key]; ok {
		p.lru.MoveToFront(el)
		return el.Value.(*bucket).lim
	}
	if len(p.buckets) < p.max {
		b := &bucket{key: key, lim: rate.NewLimiter(p.limit, p.burst)}
		p.buckets[key] = p.lru.PushFront(b)
		return b.lim
	}
	victim := p.lru.Back()
	for el, i := victim, 0; el != nil && i < idleScan; el, i = el.Prev(), i+1 {
		if el.Value.(*bucket).lim.TokensAt(now) >= float64(p.burst) {
			victim = el
			break
		}
	}
	b := victim.Value.(*bucket)
	delete(p.buckets, b.key)
	b.key, b.lim = key, rate.NewLimiter(p.limit, p.burst)
	p.buckets[key] = victim
	p.lru.MoveToFront(victim)
	return b.lim
}

// Wrap implements Policy.
func (p *RateLimit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := ExchangeOf(r)
		var now time.Time
		if x != nil {
			now = x.Env.Clock()
		} else {
			now = time.Now()
		}
		ok, wait := p.allow(p.keyOf(r, x), now)
		if !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			Deny(w, r, Problem{Status: http.StatusTooManyRequests, Reason: "rate_limited",
				Detail: "too many requests; retry later", Severity: "info",
				Header: http.Header{"Retry-After": {strconv.Itoa(secs)}}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
