package lockout

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
)

// Type is the route policy type name used in configs.
const Type = "brute_force"

func init() {
	policy.RegisterConfig(Type, func(c PolicyConfig) (*Policy, error) { return NewPolicy(c), nil })
}

// Policy is the brute_force route policy. It holds no counts: at request
// time it uses the gateway's Guard, policy.Env.AuthFailures.
type Policy struct {
	delay    bool
	warnOnce sync.Once
}

var _ policy.Policy = (*Policy)(nil)

// NewPolicy returns the brute_force policy for its config block.
func NewPolicy(c PolicyConfig) *Policy {
	return &Policy{delay: c.ProgressiveDelay == nil || *c.ProgressiveDelay}
}

// Wrap implements policy.Policy. Without a Guard in the request's Env the
// request passes unchecked, and the policy logs that once.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := policy.ExchangeOf(r)
		var g *Guard
		if x != nil && x.Env != nil {
			g, _ = x.Env.AuthFailures.(*Guard)
		}
		if g == nil {
			p.warnOnce.Do(func() {
				log := slog.Default()
				if x != nil && x.Env != nil && x.Env.Log != nil {
					log = x.Env.Log
				}
				log.Warn("brute_force policy: the gateway has no lock-out guard (policy.Env.AuthFailures is not a *lockout.Guard); requests pass unchecked")
			})
			next.ServeHTTP(w, r)
			return
		}
		g.serve(w, r, next, p.delay)
	})
}

// Wrap implements policy.Policy, so that the gateway can put the Guard
// around every route's chain (outermost) and, for consumer lock-outs,
// around the handler after the authentication policies, without a
// brute_force entry in each route. It behaves as the brute_force policy
// with the progressive delay on.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, next, true)
	})
}

// serve runs one request's checks. The first instance in a chain checks
// the client address (and applies the delay); any instance that sees a
// consumer not yet checked checks it.
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler, delay bool) {
	x := policy.ExchangeOf(r)
	st := stateOf(r, x)
	if st == nil {
		both := &struct { // one allocation
			st reqState
			lw lockWriter
		}{}
		st = &both.st
		if x != nil {
			x.Lockout = st
		} else {
			r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		}
		both.lw = lockWriter{ResponseWriter: w, st: st, r: r, g: g}
		w = &both.lw
	}
	var env *policy.Env
	if x != nil {
		env = x.Env
	}
	c := g.cfg.Load()
	if !st.ipChecked {
		st.ipChecked = true
		wait, n := g.status(kindIP, policy.ClientKey(r, x, c.IPv6Prefix), g.now())
		if wait > 0 {
			g.refuse(w, r, KindIP, wait)
			return
		}
		if d := c.delayFor(n); delay && d > 0 && !g.wait(r.Context(), env, d) {
			return // the client left; nothing to answer
		}
	}
	if x != nil && x.Identity.Consumer != "" && st.consumerChecked != x.Identity.Consumer {
		st.consumerChecked = x.Identity.Consumer
		if wait, _ := g.status(kindConsumer, x.Identity.Consumer, g.now()); wait > 0 {
			g.refuse(w, r, KindConsumer, wait)
			return
		}
	}
	next.ServeHTTP(w, r)
}

// wait holds the request for d, or until the client leaves (false). No
// lock is held meanwhile.
func (g *Guard) wait(ctx context.Context, env *policy.Env, d time.Duration) bool {
	m := g.metrics.get(env)
	ch, stop := g.after(d)
	select {
	case <-ch:
		m.delay("completed")
		return true
	case <-ctx.Done():
		m.delay("client_gone")
		stop()
		return false
	}
}

// refuse answers 429 locked_out through the single deny path.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, kind string, wait time.Duration) {
	var env *policy.Env
	if x := policy.ExchangeOf(r); x != nil {
		env = x.Env
	}
	g.metrics.get(env).refusal(kind)
	policy.Deny(w, r, policy.Problem{Status: http.StatusTooManyRequests, Reason: ReasonLockedOut,
		Detail: "too many failed authentications; retry later", Severity: audit.Info,
		Header: retryAfter(wait), Fields: map[string]any{"lockout_kind": kind}})
}

// reqState is one request's progress through the Guard's checks, shared
// by the brute_force instances of its chain and by Failed.
type reqState struct {
	ipChecked       bool
	consumerChecked string

	mu         sync.Mutex
	lockedKind string // set by Failed: a key of the request was already locked out
	lockedTill time.Time
}

func (s *reqState) markLocked(kind string, until time.Time) {
	s.mu.Lock()
	s.lockedKind, s.lockedTill = kind, until
	s.mu.Unlock()
}

func (s *reqState) locked() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lockedKind, s.lockedTill
}

// stateKey carries a request's state in its context when it has no
// Exchange (outside the gateway).
type stateKey struct{}

// stateOf returns r's state: in its Exchange x, or in its context without
// one.
func stateOf(r *http.Request, x *policy.Exchange) *reqState {
	if x != nil {
		s, _ := x.Lockout.(*reqState)
		return s
	}
	s, _ := r.Context().Value(stateKey{}).(*reqState)
	return s
}

// lockWriter turns a 401 into the lock-out's 429 when Failed found a key
// of the request already locked out: a locked consumer gets the same
// answer whether its credential was right (refused after authentication)
// or wrong.
type lockWriter struct {
	http.ResponseWriter
	st      *reqState
	r       *http.Request
	g       *Guard
	wrote   bool // the final header is out
	swallow bool // the 401 was replaced; drop its body
}

// WriteHeader implements http.ResponseWriter.
func (lw *lockWriter) WriteHeader(code int) {
	if lw.swallow {
		return
	}
	if !lw.wrote && code == http.StatusUnauthorized {
		if kind, until := lw.st.locked(); kind != "" {
			if wait := until.Sub(lw.g.now()); wait > 0 {
				lw.swallow, lw.wrote = true, true
				lw.Header().Del("Www-Authenticate")
				lw.g.refuse(lw.ResponseWriter, lw.r, kind, wait)
				return
			}
		}
	}
	if code >= 200 {
		lw.wrote = true
	}
	lw.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (lw *lockWriter) Write(b []byte) (int, error) {
	if lw.swallow {
		return len(b), nil
	}
	if !lw.wrote {
		lw.WriteHeader(http.StatusOK)
	}
	return lw.ResponseWriter.Write(b)
}

// Flush forwards streaming flushes.
func (lw *lockWriter) Flush() {
	if lw.swallow {
		return
	}
	if !lw.wrote {
		lw.WriteHeader(http.StatusOK)
	}
	if f, ok := lw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (lw *lockWriter) Unwrap() http.ResponseWriter { return lw.ResponseWriter }
