package h1server

import (
	"context"
	"sync"
)

// requestContext is a request's context: its conn's context, cancelled
// (context.Canceled) when the handler returns, the client goes away or
// the conn's context ends. It does what context.WithCancel did here for
// less per request: it lives inside the request's response (no
// allocation of its own), registers nothing with its parent (the
// gateway's conn context cannot be cancelled; a cancellable one is
// followed through one context.AfterFunc per request, see serveOne),
// makes its Done channel only when
// asked, and has its own AfterFunc, which context.AfterFunc and derived
// contexts use instead of a goroutine, and which a caller on the hot path
// (the upstream transport's abort hook) may call directly to spare
// context.AfterFunc's allocations.
//
// It also holds one value set by the handler (HoldValue): the gateway's
// request state, which would otherwise take a derived context and a copy
// of the request (see policy.AttachExchange).
//
// One difference from context.WithCancel: context.Cause looks for the
// nearest context-package cancelCtx, so with a conn context that has one
// (a cancellable BaseContext) Cause reports that context's cause, not
// this one's cancellation; Err is right either way. The gateway's conn
// context has none.
type requestContext struct {
	context.Context // the conn's: its deadline and values

	mu     sync.Mutex
	done   chan struct{} // made by the first Done, closed by cancel
	err    error
	hooks  []afterHook // AfterFunc functions not stopped yet
	inline [2]afterHook
	nextID uint64

	key, val any // HoldValue's
}

type afterHook struct {
	id uint64
	f  func()
}

// closedChan is the Done channel of a context cancelled before anyone
// asked for one.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *requestContext) init(parent context.Context) {
	c.Context = parent
	c.hooks = c.inline[:0]
}

// Done implements context.Context.
func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err implements context.Context.
func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value implements context.Context: the held value, else the conn's.
func (c *requestContext) Value(key any) any {
	if c.key != nil && key == c.key {
		return c.val
	}
	return c.Context.Value(key)
}

// HoldValue makes Value(key) return val, as context.WithValue would in a
// derived context, without deriving one. It may be called once, by the
// handler, before the context is shared with any other goroutine;
// false (nothing held) on a second call.
func (c *requestContext) HoldValue(key, val any) bool {
	if c.key != nil || key == nil {
		return false
	}
	c.key, c.val = key, val
	return true
}

// AfterFunc has context.AfterFunc's contract: f runs in its own goroutine
// once c is cancelled (at once if it already is), unless stop is called
// first; stop reports whether it stopped f from running.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.nextID++
	id := c.nextID
	c.hooks = append(c.hooks, afterHook{id: id, f: f})
	c.mu.Unlock()
	return func() bool { return c.stopHook(id) }
}

// stopHook removes the hook id; false if it is not registered any more
// (it ran, or was stopped).
func (c *requestContext) stopHook(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, h := range c.hooks {
		if h.id == id {
			c.hooks = append(c.hooks[:i], c.hooks[i+1:]...)
			return true
		}
	}
	return false
}

// cancel cancels c with err (the first call wins) and starts its hooks.
func (c *requestContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
	hooks := c.hooks
	c.hooks = nil
	c.mu.Unlock()
	for _, h := range hooks {
		go h.f()
	}
}
