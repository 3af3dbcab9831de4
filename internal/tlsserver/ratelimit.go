package tlsserver

import (
	"sync"
	"time"
)

// eventLimiter lets at most max events through per one-second window and
// counts the rest, so that attacker-triggered audit events cannot flood the
// audit log. Metrics are counted regardless.
type eventLimiter struct {
	mu         sync.Mutex
	max        int
	now        func() time.Time
	start      time.Time
	n          int
	suppressed int
}

func newEventLimiter(max int) *eventLimiter {
	return &eventLimiter{max: max, now: time.Now}
}

// allow reports whether one more event may be emitted now and, if so, how
// many were suppressed since the last one let through.
func (e *eventLimiter) allow() (ok bool, suppressed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.now(); t.Sub(e.start) >= time.Second || t.Before(e.start) {
		e.start, e.n = t, 0
	}
	if e.n >= e.max {
		e.suppressed++
		return false, 0
	}
	e.n++
	suppressed, e.suppressed = e.suppressed, 0
	return true, suppressed
}
