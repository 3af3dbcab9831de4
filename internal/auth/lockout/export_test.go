package lockout

import "time"

// Test hooks.

// SetTimer replaces the progressive-delay timer: tests see each delay
// armed and decide when (if ever) it fires, without sleeping.
func SetTimer(g *Guard, after func(time.Duration) (<-chan time.Time, func() bool)) { g.after = after }

// Len returns the number of keys of a kind the Guard tracks.
func Len(g *Guard, kind string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, n := range kindNames {
		if n == kind {
			return len(g.keys[k])
		}
	}
	return -1
}
