package ttlcache

import (
	"testing"
	"time"
)

func TestGetPutExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New[int, string](8)
	c.Put(1, "one", now.Add(time.Minute), now)
	if v, ok := c.Get(1, now); !ok || v != "one" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	if v, ok := c.Get(1, now.Add(time.Minute-time.Nanosecond)); !ok || v != "one" {
		t.Fatalf("just before expiry: %q %v", v, ok)
	}
	if _, ok := c.Get(1, now.Add(time.Minute)); ok {
		t.Fatal("served at its expiry")
	}
	if _, ok := c.Get(2, now); ok {
		t.Fatal("a key never put was found")
	}
	c.Put(3, "gone", now, now)
	c.Put(4, "past", now.Add(-time.Second), now)
	if c.Len() != 1 {
		t.Fatalf("expired values stored: %d entries", c.Len())
	}
}

// TestBound: a flood of distinct keys never holds more than max entries;
// when full, expired entries go first, then arbitrary ones down to 7/8.
func TestBound(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const max = 64
	c := New[int, int](max)
	for i := range max / 2 {
		c.Put(i, i, now.Add(time.Second), now)
	}
	for i := max / 2; i < max; i++ {
		c.Put(i, i, now.Add(time.Hour), now)
	}
	later := now.Add(time.Minute) // the first half has expired
	c.Put(-1, -1, later.Add(time.Hour), later)
	if n := c.Len(); n != max/2+1 {
		t.Fatalf("after eviction of the expired: %d entries, want %d", n, max/2+1)
	}
	for i := max / 2; i < max; i++ {
		if _, ok := c.Get(i, later); !ok {
			t.Fatalf("live entry %d evicted while expired ones were there", i)
		}
	}
	for i := range 10 * max {
		c.Put(1000+i, i, later.Add(time.Hour), later)
		if c.Len() > max {
			t.Fatalf("%d entries, bound %d", c.Len(), max)
		}
	}
	if c.Max() != max {
		t.Errorf("Max = %d", c.Max())
	}
}

func TestConcurrent(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New[int, int](16)
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 1000 {
				c.Put(w*1000+i, i, now.Add(time.Hour), now)
				c.Get(i, now)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if c.Len() > 16 {
		t.Fatalf("%d entries, bound 16", c.Len())
	}
}
