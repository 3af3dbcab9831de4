// Package deadline coarsens the I/O deadlines set for every request on a
// kept-alive connection. Setting a deadline costs a timer update in the
// runtime (a lock, a heap fix-up and a clock read); a connection serving
// thousands of requests a second would pay it several times per request
// to move a deadline by microseconds. Instead, a deadline is moved only
// when the one already set is outside [now+d, now+d+d/16], and then to
// the end of that window: a timeout of d is
// enforced between d and d + d/16 (30 s: at most 1.9 s late), never
// earlier, and a steady stream of requests updates it about once per
// d/16 instead of on every request.
package deadline

import "time"

// Next returns the deadline to set so that a connection whose current
// deadline is cur (zero: none, or not known) is bounded by now+d, and
// true; or false when cur already is within [now+d, now+d+d/16], and
// nothing need change. A deadline set for another bound (a longer
// timeout) is replaced. d must be positive.
func Next(cur, now time.Time, d time.Duration) (time.Time, bool) {
	want, latest := now.Add(d), now.Add(d+d/16)
	if !cur.IsZero() && !cur.Before(want) && !cur.After(latest) {
		return time.Time{}, false
	}
	return latest, true
}
