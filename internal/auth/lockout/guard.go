package lockout

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
)

// Kinds of keys a Guard counts failures under.
const (
	// KindIP is the client address (IPv6: its /IPv6Prefix network).
	KindIP = "ip"
	// KindConsumer is the consumer an authentication policy established.
	KindConsumer = "consumer"
)

// Audit event types and the reason code of a refusal.
const (
	// EventEngaged records a lock-out starting: fields kind, key,
	// failures, duration (seconds), until, lockouts (this one included,
	// within the back-off window) and last_reason.
	EventEngaged = "lockout_engaged"
	// EventReleased records a lock-out lifted through Unlock (the admin
	// API): fields kind, key.
	EventReleased = "lockout_released"
	// ReasonLockedOut is the reason code of the 429 a locked-out key gets.
	ReasonLockedOut = "locked_out"
)

const (
	kindIP = iota
	kindConsumer
	numKinds
)

var kindNames = [numKinds]string{KindIP, KindConsumer}

// Guard counts failed authentications per client address and per
// consumer, and locks a key out after Config.Threshold failures within
// Config.Window, for a time that doubles with each lock-out of the key
// within Config.BackoffWindow. It implements policy.AuthFailureRecorder
// (set it as policy.Env.AuthFailures) and policy.Policy (the gateway may
// wrap every route with it). It is safe for concurrent use; keep one per
// gateway, across config reloads (Update), so that a reload does not
// release lock-outs.
type Guard struct {
	cfg    atomic.Pointer[settings]
	ignore atomic.Pointer[map[string]bool]

	mu   sync.Mutex
	keys [numKinds]map[string]*entry

	metrics metricsHolder
	// after arms the progressive-delay timer; a test hook.
	after func(time.Duration) (<-chan time.Time, func() bool)
}

// settings is a Config with defaults, validated.
type settings struct{ Config }

var (
	_ policy.AuthFailureRecorder = (*Guard)(nil)
	_ policy.Policy              = (*Guard)(nil)
)

// entry is one key's state. fails holds the times of the failures within
// the window, oldest first, at most Threshold of them.
type entry struct {
	fails       []time.Time
	lockedAt    time.Time // start of the current or last lock-out
	lockedUntil time.Time // zero: never locked
	lockouts    int       // lock-outs in the current back-off period, this one included
	failures    int       // failures that engaged the current lock-out
}

func (e *entry) locked(now time.Time) bool { return now.Before(e.lockedUntil) }

// prune drops failures outside the window and returns how many remain.
func (e *entry) prune(now time.Time, window time.Duration) int {
	cut := now.Add(-window)
	i := 0
	for i < len(e.fails) && !e.fails[i].After(cut) {
		i++
	}
	if i > 0 {
		e.fails = append(e.fails[:0], e.fails[i:]...)
	}
	return len(e.fails)
}

// stale: nothing about the key matters any more.
func (e *entry) stale(now time.Time, c *settings) bool {
	return !e.locked(now) && e.prune(now, c.Window) == 0 &&
		(e.lockedUntil.IsZero() || now.Sub(e.lockedAt) >= c.BackoffWindow)
}

// New returns a Guard for cfg, refusing an invalid one.
func New(cfg Config) (*Guard, error) {
	g := &Guard{after: realTimer}
	for i := range g.keys {
		g.keys[i] = map[string]*entry{}
	}
	if err := g.Update(cfg); err != nil {
		return nil, err
	}
	return g, nil
}

// Update replaces the Guard's settings (on a config reload), keeping the
// counts and lock-outs. An invalid cfg is refused and the old settings
// stay. Pass the same Now and Audit as to New.
func (g *Guard) Update(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("brute_force: %w", err)
	}
	s := &settings{cfg.withDefaults()}
	ign := make(map[string]bool, len(s.IgnoreReasons))
	for _, r := range s.IgnoreReasons {
		ign[r] = true
	}
	g.ignore.Store(&ign)
	g.cfg.Store(s)
	return nil
}

// Config returns the Guard's settings, with defaults filled in.
func (g *Guard) Config() Config { return g.cfg.Load().Config }

func (g *Guard) now() time.Time {
	if n := g.cfg.Load().Now; n != nil {
		return n()
	}
	return time.Now()
}

func realTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// IPKey returns the key under which failures from remote (an address
// "host:port", or a bare IP) are counted: the IP itself for IPv4 (also
// IPv4-mapped IPv6), the /IPv6Prefix network for IPv6, remote unchanged
// if it is not an IP address.
func (g *Guard) IPKey(remote string) string {
	return policy.AddrKey(remote, g.cfg.Load().IPv6Prefix)
}

// Failed implements policy.AuthFailureRecorder: the deny path calls it
// for every 401. It counts the failure against the client address and,
// when an authentication policy established one, the consumer, unless
// reason is one of Config.IgnoreReasons; it engages a lock-out of a key
// that reaches the threshold. A key that is already locked out (a request
// that passed the check before the lock-out began, or one whose consumer
// is only known now) is not counted again, and the request's 401 is
// turned into the lock-out's 429 when the brute_force policy wraps it, so
// that a locked key's answers say nothing about the credential.
func (g *Guard) Failed(r *http.Request, x *policy.Exchange, reason string) {
	if (*g.ignore.Load())[reason] {
		return
	}
	c := g.cfg.Load()
	now := g.now()
	keys := [numKinds]string{kindIP: policy.ClientKey(r, x, c.IPv6Prefix)}
	if x != nil {
		keys[kindConsumer] = x.Identity.Consumer
	}
	var (
		engaged  []Lock
		counted  [numKinds]bool
		lockKind = -1
		until    time.Time
	)
	g.mu.Lock()
	for k, key := range keys {
		if key == "" {
			continue
		}
		e := g.entry(k, key, now, c, true)
		if e.locked(now) {
			if lockKind < 0 || e.lockedUntil.After(until) {
				lockKind, until = k, e.lockedUntil
			}
			continue
		}
		counted[k] = true
		e.prune(now, c.Window)
		if len(e.fails) >= c.Threshold { // Threshold lowered by a reload
			e.fails = append(e.fails[:0], e.fails[len(e.fails)-c.Threshold+1:]...)
		}
		e.fails = append(e.fails, now)
		if len(e.fails) >= c.Threshold {
			engaged = append(engaged, g.engage(k, key, e, now, c))
		}
	}
	g.mu.Unlock()

	var env *policy.Env
	if x != nil {
		env = x.Env
	}
	m := g.metrics.get(env)
	for k, ok := range counted {
		if ok {
			m.failure(kindNames[k])
		}
	}
	for _, l := range engaged {
		m.engaged(l.Kind)
		g.emitEngaged(x, l, reason)
	}
	if lockKind >= 0 {
		if st := stateOf(r, x); st != nil {
			st.markLocked(kindNames[lockKind], until)
		}
	}
}

// entry returns key's entry, creating it (evicting if full) when create.
// g.mu is held.
func (g *Guard) entry(k int, key string, now time.Time, c *settings, create bool) *entry {
	m := g.keys[k]
	e := m[key]
	if e != nil || !create {
		return e
	}
	if len(m) >= c.MaxKeys {
		g.evict(k, now, c)
	}
	e = &entry{}
	m[key] = e
	return e
}

// engage starts a lock-out of e. g.mu is held.
func (g *Guard) engage(k int, key string, e *entry, now time.Time, c *settings) Lock {
	if e.lockedUntil.IsZero() || now.Sub(e.lockedAt) >= c.BackoffWindow {
		e.lockouts = 0
	}
	e.lockouts++
	d := c.BaseLockout
	for i := 1; i < e.lockouts && d < c.MaxLockout; i++ {
		d *= 2
	}
	d = min(d, c.MaxLockout)
	e.failures = len(e.fails)
	e.lockedAt, e.lockedUntil = now, now.Add(d)
	e.fails = e.fails[:0]
	return Lock{Kind: kindNames[k], Key: key, Since: now, Until: e.lockedUntil, Failures: e.failures, Lockouts: e.lockouts}
}

// evict makes room in a full map: down to 90% of MaxKeys, dropping stale
// keys first, then keys below the delay band, then any key not locked
// out, and only then the lock-outs that end soonest. g.mu is held.
func (g *Guard) evict(k int, now time.Time, c *settings) {
	m := g.keys[k]
	target := c.MaxKeys - max(1, c.MaxKeys/10)
	passes := []func(e *entry) bool{
		func(e *entry) bool { return e.stale(now, c) },
		func(e *entry) bool { return !e.locked(now) && len(e.fails) < c.DelayAfter },
		func(e *entry) bool { return !e.locked(now) },
	}
	dropped := [3]int{}
	for i, drop := range passes {
		for key, e := range m {
			if len(m) <= target {
				break
			}
			if drop(e) {
				delete(m, key)
				dropped[min(i, 2)]++
			}
		}
	}
	if len(m) > target {
		type kv struct {
			key   string
			until time.Time
		}
		all := make([]kv, 0, len(m))
		for key, e := range m {
			all = append(all, kv{key, e.lockedUntil})
		}
		slices.SortFunc(all, func(a, b kv) int { return a.until.Compare(b.until) })
		for _, x := range all[:len(m)-target] {
			delete(m, x.key)
			dropped[2]++
		}
	}
	g.metrics.evicted(kindNames[k], dropped[0], dropped[1]+dropped[2])
}

// status reports whether key is locked out (and for how much longer) and
// its failures within the window. It never creates an entry.
func (g *Guard) status(k int, key string, now time.Time) (wait time.Duration, failures int) {
	if key == "" {
		return 0, 0
	}
	c := g.cfg.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.keys[k][key]
	if e == nil {
		return 0, 0
	}
	if e.locked(now) {
		return e.lockedUntil.Sub(now), 0
	}
	return 0, e.prune(now, c.Window)
}

// delayFor is the progressive delay after failures failures.
func (c *settings) delayFor(failures int) time.Duration {
	if failures < c.DelayAfter || c.MaxDelay <= 0 {
		return 0
	}
	d := BaseDelay
	for i := c.DelayAfter; i < failures && d < c.MaxDelay; i++ {
		d *= 2
	}
	return min(d, c.MaxDelay)
}

// Lock describes one current lock-out.
type Lock struct {
	Kind  string    `json:"kind"` // KindIP or KindConsumer
	Key   string    `json:"key"`  // the address (IPv6: network) or consumer name
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Failures is the number of failures that engaged the lock-out.
	Failures int `json:"failures"`
	// Lockouts counts the key's lock-outs within the back-off window,
	// this one included: its duration is BaseLockout·2^(Lockouts−1).
	Lockouts int `json:"lockouts"`
}

// Locks lists the current lock-outs, by kind then key.
func (g *Guard) Locks() []Lock {
	now := g.now()
	var out []Lock
	g.mu.Lock()
	for k, m := range g.keys {
		for key, e := range m {
			if e.locked(now) {
				out = append(out, Lock{Kind: kindNames[k], Key: key, Since: e.lockedAt.UTC(), Until: e.lockedUntil.UTC(),
					Failures: e.failures, Lockouts: e.lockouts})
			}
		}
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Lock) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Key, b.Key)) })
	return out
}

// Unlock lifts the lock-out of a key of the given kind (KindIP: an
// address, or the IPv6 network as listed by Locks; KindConsumer: a
// consumer name) and forgets the key's failures and lock-out history. It
// reports whether the key was locked out, and records a lockout_released
// event if so.
func (g *Guard) Unlock(kind, key string) bool {
	return g.unlock(kind, key, "")
}

func (g *Guard) unlock(kind, key, remote string) bool {
	k, key, ok := g.normalize(kind, key)
	if !ok {
		return false
	}
	now := g.now()
	g.mu.Lock()
	e := g.keys[k][key]
	was := e != nil && e.locked(now)
	if was {
		delete(g.keys[k], key)
	}
	g.mu.Unlock()
	if !was {
		return false
	}
	g.metrics.get(nil).released(kindNames[k])
	g.cfg.Load().Audit.Emit(audit.Event{Type: EventReleased, Severity: audit.Warning, Remote: remote,
		Detail: "lock-out lifted through the admin API", Fields: map[string]any{"kind": kindNames[k], "key": key}})
	return true
}

// normalize maps a kind name to its index and an admin-given key to the
// key it is stored under.
func (g *Guard) normalize(kind, key string) (int, string, bool) {
	switch kind {
	case KindConsumer:
		return kindConsumer, key, key != ""
	case KindIP:
		key = g.ipKeyOf(key)
		return kindIP, key, key != ""
	}
	return 0, "", false
}

// ipKeyOf maps an address or a network (as Locks lists it) to its key, or
// "" if s is neither.
func (g *Guard) ipKeyOf(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return policy.AddrKey(a.String(), g.cfg.Load().IPv6Prefix)
	}
	if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() && p.Bits() == g.cfg.Load().IPv6Prefix {
		return p.Masked().String()
	}
	return ""
}

// emitEngaged records a lock-out starting.
func (g *Guard) emitEngaged(x *policy.Exchange, l Lock, reason string) {
	al := g.cfg.Load().Audit
	ev := audit.Event{Type: EventEngaged, Severity: audit.Warning, Reason: ReasonLockedOut,
		Detail: fmt.Sprintf("%s locked out for %v after %d failed authentications", l.Kind, l.Until.Sub(l.Since), l.Failures),
		Fields: map[string]any{"kind": l.Kind, "key": l.Key, "failures": l.Failures,
			"duration": l.Until.Sub(l.Since).Seconds(), "until": l.Until.UTC().Format(time.RFC3339), "lockouts": l.Lockouts,
			"last_reason": reason}}
	if x != nil {
		ev.RequestID, ev.Route, ev.Remote = x.ID, x.Route, x.Remote
		if al == nil && x.Env != nil {
			al = x.Env.Audit
		}
	}
	al.Emit(ev)
}
