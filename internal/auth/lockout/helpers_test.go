package lockout_test

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/lockout"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/testkit"
)

// timers records the progressive delays armed; by default each fires at
// once.
type timers struct {
	mu     sync.Mutex
	armed  []time.Duration
	hold   bool          // never fire
	armedC chan struct{} // signalled on each arming when hold
	stopC  chan struct{} // signalled when a held timer is stopped
}

func (tm *timers) after(d time.Duration) (<-chan time.Time, func() bool) {
	tm.mu.Lock()
	tm.armed = append(tm.armed, d)
	hold := tm.hold
	tm.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !hold {
		ch <- time.Time{}
		return ch, func() bool { return false }
	}
	tm.armedC <- struct{}{}
	return ch, func() bool { tm.stopC <- struct{}{}; return true }
}

func (tm *timers) delays() []time.Duration {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return append([]time.Duration(nil), tm.armed...)
}

const secret = "right-secret"

// world is a gateway in miniature, on a real listener: the brute_force
// policy first, a fake authentication policy, brute_force again after it
// (for consumer lock-outs), and an upstream.
type world struct {
	guard    *lockout.Guard
	clock    *testkit.Clock
	timers   *timers
	sink     *audit.MemorySink
	metrics  *telemetry.Metrics
	env      *policy.Env
	url      string
	auths    atomic.Int64 // requests that reached the authentication policy
	upstream atomic.Int64 // requests that reached the upstream
}

// start serves the chain. policyBlock is the brute_force policy's config
// (nil: {}).
func start(t *testing.T, cfg lockout.Config, policyBlock *lockout.PolicyConfig) *world {
	t.Helper()
	w := &world{clock: testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), timers: &timers{},
		sink: audit.NewMemorySink(), metrics: telemetry.New()}
	cfg.Now = w.clock.Now
	cfg.Audit = audit.New(w.sink)
	g, err := lockout.New(cfg)
	if err != nil {
		t.Fatalf("lockout.New: %v", err)
	}
	lockout.SetTimer(g, w.timers.after)
	w.guard = g
	w.env = &policy.Env{Audit: audit.New(w.sink), Metrics: w.metrics, Now: w.clock.Now, AuthFailures: g}
	decode := func(v any) error {
		if policyBlock != nil {
			*v.(*lockout.PolicyConfig) = *policyBlock
		}
		return nil
	}
	first, err := policy.Build(lockout.Type, decode)
	if err != nil {
		t.Fatal(err)
	}
	after, err := policy.Build(lockout.Type, decode)
	if err != nil {
		t.Fatal(err)
	}
	chain := policy.Chain(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.upstream.Add(1)
		_, _ = io.WriteString(rw, "upstream\n")
	}), first, w.fakeAuth(), after)
	n := atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if remote := r.Header.Get("X-Test-Remote"); remote != "" {
			r.RemoteAddr = remote // the test plays many clients
		}
		x := &policy.Exchange{ID: "req-" + strconv.FormatInt(n.Add(1), 10), Route: "test", Remote: r.RemoteAddr,
			Start: w.clock.Now(), Env: w.env}
		chain.ServeHTTP(rw, r.WithContext(policy.WithExchange(r.Context(), x)))
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// fakeAuth is an authentication policy: X-User names the consumer (known
// even when the secret is wrong, as when an earlier policy established
// it), X-Secret must be the secret.
func (w *world) fakeAuth() policy.Policy {
	return policyFunc(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			w.auths.Add(1)
			x := policy.ExchangeOf(r)
			if u := r.Header.Get("X-User"); u != "" {
				x.Identity.Consumer = u
			}
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Secret")), []byte(secret)) != 1 {
				reason := r.Header.Get("X-Test-Reason")
				if reason == "" {
					reason = "bad_secret"
				}
				policy.Deny(rw, r, policy.Problem{Status: http.StatusUnauthorized, Reason: reason,
					Header: http.Header{"Www-Authenticate": {`Fake realm="test"`}}})
				return
			}
			x.Identity.Methods = append(x.Identity.Methods, "fake")
			next.ServeHTTP(rw, r)
		})
	})
}

type policyFunc func(http.Handler) http.Handler

func (f policyFunc) Wrap(next http.Handler) http.Handler { return f(next) }

type result struct {
	status int
	header http.Header
	reason string
}

// do sends one request from remote (host:port) as user with the secret.
func (w *world) do(t *testing.T, remote, user, sec string) result {
	t.Helper()
	return w.doCtx(t, context.Background(), remote, user, sec, "")
}

func (w *world) doCtx(t *testing.T, ctx context.Context, remote, user, sec, reason string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url+"/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Remote", remote)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	if sec != "" {
		req.Header.Set("X-Secret", sec)
	}
	if reason != "" {
		req.Header.Set("X-Test-Reason", reason)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return result{}
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		var p struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("problem body %q: %v", body, err)
		}
		res.reason = p.Reason
	}
	return res
}

// fail sends n requests with a wrong secret, each expected to get 401.
func (w *world) fail(t *testing.T, n int, remote, user string) {
	t.Helper()
	for i := range n {
		if r := w.do(t, remote, user, "wrong"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret #%d from %s: %d %s, want 401", i+1, remote, r.status, r.reason)
		}
	}
}

// expectLocked checks a 429 locked_out with Retry-After.
func expectLocked(t *testing.T, r result, retryAfter string) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || r.reason != lockout.ReasonLockedOut {
		t.Fatalf("got %d %q, want 429 %s", r.status, r.reason, lockout.ReasonLockedOut)
	}
	if got := r.header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After = %q, want %q", got, retryAfter)
	}
	if r.header.Get("Www-Authenticate") != "" {
		t.Fatalf("a locked-out answer carries WWW-Authenticate %q", r.header.Get("Www-Authenticate"))
	}
}

// events returns the audit events of a type.
func (w *world) events(typ string) []audit.Event {
	var out []audit.Event
	for _, e := range w.sink.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// counter reads a counter of the world's registry; 0 if absent.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
