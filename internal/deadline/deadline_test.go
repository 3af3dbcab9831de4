package deadline

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	d := 16 * time.Second
	for _, tc := range []struct {
		name string
		cur  time.Time
		set  bool
		want time.Time
	}{
		{"none set", time.Time{}, true, now.Add(17 * time.Second)},
		{"earlier than the bound", now.Add(15 * time.Second), true, now.Add(17 * time.Second)},
		{"in the past", now.Add(-time.Second), true, now.Add(17 * time.Second)},
		{"exactly the bound", now.Add(d), false, time.Time{}},
		{"past the bound, within the slack", now.Add(d + time.Second), false, time.Time{}},
		{"the latest allowed", now.Add(d + d/16), false, time.Time{}},
		{"past the slack (another, longer timeout's)", now.Add(d + d/16 + 1), true, now.Add(17 * time.Second)},
		{"far past", now.Add(time.Hour), true, now.Add(17 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, set := Next(tc.cur, now, d)
			if set != tc.set || !got.Equal(tc.want) {
				t.Fatalf("Next = %v, %v; want %v, %v", got, set, tc.want, tc.set)
			}
		})
	}
}

// TestNextBounds: over a stream of requests, the deadline in force is
// never before now+d nor after now+d+d/16, and it moves about once per
// d/16, not on every request.
func TestNextBounds(t *testing.T) {
	d := 8 * time.Second
	start := time.Unix(1_000_000, 0)
	var cur time.Time
	updates := 0
	const steps = 100_000
	for i := range steps {
		now := start.Add(time.Duration(i) * time.Millisecond) // 1000 requests a second for 100 s
		if next, ok := Next(cur, now, d); ok {
			cur = next
			updates++
		}
		if cur.Before(now.Add(d)) || cur.After(now.Add(d+d/16)) {
			t.Fatalf("at %v: deadline %v outside [now+d, now+d+d/16]", now.Sub(start), cur.Sub(now))
		}
	}
	// 100 s / (d/16 = 0.5 s) = 200 updates, give or take one.
	if updates < 199 || updates > 201 {
		t.Fatalf("%d updates for %d requests, want about 200", updates, steps)
	}
}
