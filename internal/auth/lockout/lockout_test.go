package lockout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/lockout"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/testkit"
)

const attacker = "192.0.2.1:40000"

// TestLockoutEngagesAndReleases: Threshold wrong secrets lock the address
// out; the next request, even with the right secret, gets 429 with
// Retry-After and never reaches the authentication policy; the lock-out
// ends on time; the next one lasts twice as long, up to max_lockout; the
// back-off is forgotten after backoff_window.
func TestLockoutEngagesAndReleases(t *testing.T) {
	w := start(t, lockout.Config{MaxLockout: 3 * time.Minute}, nil)
	w.fail(t, 10, attacker, "")
	auths := w.auths.Load()
	expectLocked(t, w.do(t, attacker, "", secret), "60")
	if w.auths.Load() != auths || w.upstream.Load() != 0 {
		t.Fatal("a locked-out request reached the authentication policy or the upstream")
	}
	ev := w.events(lockout.EventEngaged)
	if len(ev) != 1 {
		t.Fatalf("%d lockout_engaged events, want 1", len(ev))
	}
	if f := ev[0].Fields; f["kind"] != lockout.KindIP || f["key"] != "192.0.2.1" || f["failures"] != 10 ||
		f["duration"] != 60.0 || f["lockouts"] != 1 || f["last_reason"] != "bad_secret" {
		t.Errorf("lockout_engaged fields %v", f)
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricEngaged, map[string]string{"kind": "ip"}); c != 1 {
		t.Errorf("%s = %v, want 1", lockout.MetricEngaged, c)
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricFailures, map[string]string{"kind": "ip"}); c != 10 {
		t.Errorf("%s = %v, want 10", lockout.MetricFailures, c)
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricRefused, map[string]string{"kind": "ip"}); c != 1 {
		t.Errorf("%s = %v, want 1", lockout.MetricRefused, c)
	}
	// Another client is untouched.
	if r := w.do(t, "192.0.2.2:1", "", secret); r.status != http.StatusOK {
		t.Fatalf("another address: %d", r.status)
	}

	w.clock.Advance(59 * time.Second)
	expectLocked(t, w.do(t, attacker, "", secret), "1")
	w.clock.Advance(time.Second)
	if r := w.do(t, attacker, "", secret); r.status != http.StatusOK {
		t.Fatalf("after the lock-out: %d %s", r.status, r.reason)
	}

	// The second lock-out within 24h lasts twice as long.
	w.fail(t, 10, attacker, "")
	expectLocked(t, w.do(t, attacker, "", secret), "120")
	w.clock.Advance(61 * time.Second)
	expectLocked(t, w.do(t, attacker, "", secret), "59")
	w.clock.Advance(59 * time.Second)
	if r := w.do(t, attacker, "", secret); r.status != http.StatusOK {
		t.Fatalf("after the second lock-out: %d %s", r.status, r.reason)
	}
	// The third is capped by max_lockout (3m, not 4m).
	w.fail(t, 10, attacker, "")
	expectLocked(t, w.do(t, attacker, "", "wrong"), "180")
	if f := w.events(lockout.EventEngaged)[2].Fields; f["lockouts"] != 3 || f["duration"] != 180.0 {
		t.Errorf("third lockout_engaged fields %v", f)
	}

	// A day later the back-off starts again from base_lockout.
	w.clock.Advance(25 * time.Hour)
	w.fail(t, 10, attacker, "")
	expectLocked(t, w.do(t, attacker, "", secret), "60")
}

// TestWindow: failures older than the window do not count.
func TestWindow(t *testing.T) {
	w := start(t, lockout.Config{Threshold: 3, Window: time.Minute}, nil)
	w.fail(t, 2, attacker, "")
	w.clock.Advance(time.Minute)
	w.fail(t, 2, attacker, "")
	if r := w.do(t, attacker, "", secret); r.status != http.StatusOK {
		t.Fatalf("2+2 failures a window apart locked the address out: %d", r.status)
	}
	w.clock.Advance(30 * time.Second)
	w.fail(t, 1, attacker, "") // 3 within a minute (sliding)
	expectLocked(t, w.do(t, attacker, "", secret), "60")
}

// TestProgressiveDelay: from delay_after failures on, each request of the
// address is delayed 250ms·2^(n−delay_after), capped at max_delay, before
// authentication; other addresses and routes with progressive_delay:
// false are not delayed.
func TestProgressiveDelay(t *testing.T) {
	w := start(t, lockout.Config{}, nil)
	w.fail(t, 3, attacker, "")
	if d := w.timers.delays(); len(d) != 0 {
		t.Fatalf("delays before delay_after failures: %v", d)
	}
	w.fail(t, 6, attacker, "") // requests seeing 3..8 failures
	ms := time.Millisecond
	want := []time.Duration{250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 2000 * ms, 2000 * ms}
	if d := w.timers.delays(); !slices.Equal(d, want) {
		t.Fatalf("delays %v, want %v", d, want)
	}
	if r := w.do(t, "192.0.2.9:1", "", secret); r.status != http.StatusOK || len(w.timers.delays()) != len(want) {
		t.Fatalf("another address was delayed: %v", w.timers.delays())
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricDelays, map[string]string{"result": "completed"}); c != float64(len(want)) {
		t.Errorf("%s = %v, want %d", lockout.MetricDelays, c, len(want))
	}

	off := false
	w2 := start(t, lockout.Config{}, &lockout.PolicyConfig{ProgressiveDelay: &off})
	w2.fail(t, 9, attacker, "")
	if d := w2.timers.delays(); len(d) != 0 {
		t.Fatalf("progressive_delay: false still delayed: %v", d)
	}
	expectLocked(t, (func() result { w2.fail(t, 1, attacker, ""); return w2.do(t, attacker, "", secret) })(), "60")
}

// TestDelayEndsWhenClientLeaves: a delayed request whose client goes away
// stops waiting (the timer is stopped) and never reaches authentication.
func TestDelayEndsWhenClientLeaves(t *testing.T) {
	w := start(t, lockout.Config{}, nil)
	w.fail(t, 3, attacker, "")
	w.timers.mu.Lock()
	w.timers.hold = true
	w.timers.armedC, w.timers.stopC = make(chan struct{}, 1), make(chan struct{}, 1)
	w.timers.mu.Unlock()
	auths := w.auths.Load()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.doCtx(t, ctx, attacker, "", secret, "")
	}()
	<-w.timers.armedC
	cancel()
	<-w.timers.stopC
	<-done
	if w.auths.Load() != auths {
		t.Fatal("the abandoned request reached authentication")
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricDelays, map[string]string{"result": "client_gone"}); c != 1 {
		t.Errorf("%s{client_gone} = %v, want 1", lockout.MetricDelays, c)
	}
}

// TestConsumerLockout: failures for one consumer from many addresses,
// none of which reaches the threshold itself, lock the consumer out. From
// a fresh address, the right secret is then refused after authentication
// (the upstream is not reached) and a wrong one gets the same 429, so
// the answer says nothing about the secret.
func TestConsumerLockout(t *testing.T) {
	w := start(t, lockout.Config{}, nil)
	for i := range 10 {
		w.fail(t, 1, fmt.Sprintf("198.51.100.%d:5000", i+1), "alice")
	}
	ev := w.events(lockout.EventEngaged)
	if len(ev) != 1 || ev[0].Fields["kind"] != lockout.KindConsumer || ev[0].Fields["key"] != "alice" {
		t.Fatalf("lockout_engaged events %+v", ev)
	}
	expectLocked(t, w.do(t, "203.0.113.1:1", "alice", secret), "60")
	if w.upstream.Load() != 0 {
		t.Fatal("a locked-out consumer reached the upstream")
	}
	expectLocked(t, w.do(t, "203.0.113.2:1", "alice", "wrong"), "60")
	if r := w.do(t, "203.0.113.3:1", "bob", secret); r.status != http.StatusOK {
		t.Fatalf("another consumer: %d %s", r.status, r.reason)
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricRefused, map[string]string{"kind": "consumer"}); c != 2 {
		t.Errorf("%s{consumer} = %v, want 2", lockout.MetricRefused, c)
	}
	// The wrong secret during the lock-out was not counted: the back-off
	// is by lock-out, not by failures while locked.
	w.clock.Advance(time.Minute)
	if r := w.do(t, "203.0.113.1:1", "alice", secret); r.status != http.StatusOK {
		t.Fatalf("after the lock-out: %d %s", r.status, r.reason)
	}
	w.fail(t, 9, "203.0.113.4:1", "alice")
	if r := w.do(t, "203.0.113.1:1", "alice", secret); r.status != http.StatusOK {
		t.Fatalf("9 failures after release: %d %s", r.status, r.reason)
	}
}

// TestIgnoredReasons: 401s that are not guesses are not counted.
func TestIgnoredReasons(t *testing.T) {
	w := start(t, lockout.Config{Threshold: 2}, nil)
	for range 5 {
		if r := w.doCtx(t, context.Background(), attacker, "", "", "dpop_nonce_required"); r.status != http.StatusUnauthorized {
			t.Fatalf("%d", r.status)
		}
	}
	if r := w.do(t, attacker, "", secret); r.status != http.StatusOK {
		t.Fatalf("ignored reasons locked the address out: %d", r.status)
	}
	w2 := start(t, lockout.Config{Threshold: 2, IgnoreReasons: []string{}}, nil)
	for range 2 {
		w2.doCtx(t, context.Background(), attacker, "", "", "dpop_nonce_required")
	}
	expectLocked(t, w2.do(t, attacker, "", secret), "60")
}

// TestAdminUnlock: the admin API lists lock-outs and lifts one, audited.
func TestAdminUnlock(t *testing.T) {
	w := start(t, lockout.Config{}, nil)
	w.fail(t, 10, attacker, "")
	for i := range 10 {
		w.fail(t, 1, fmt.Sprintf("[2001:db8:0:%x::1]:443", i), "alice")
	}
	mux := http.NewServeMux()
	w.guard.Mount(mux)
	adm := httptest.NewServer(mux)
	t.Cleanup(adm.Close)
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(adm.URL+lockout.AdminUnlockPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	resp, err := http.Get(adm.URL + lockout.AdminListPath)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Lockouts []lockout.Lock }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(list.Lockouts) != 2 || list.Lockouts[0].Kind != "consumer" || list.Lockouts[0].Key != "alice" ||
		list.Lockouts[1].Key != "192.0.2.1" || list.Lockouts[1].Failures != 10 ||
		!list.Lockouts[1].Until.Equal(w.clock.Now().Add(time.Minute)) {
		t.Fatalf("lockouts %+v", list.Lockouts)
	}

	if code, m := post(`{"ip": "192.0.2.1"}`); code != http.StatusOK || m["unlocked"] == nil {
		t.Fatalf("unlock: %d %v", code, m)
	}
	ev := w.events(lockout.EventReleased)
	if len(ev) != 1 || ev[0].Fields["kind"] != "ip" || ev[0].Fields["key"] != "192.0.2.1" || ev[0].Remote == "" {
		t.Fatalf("lockout_released events %+v", ev)
	}
	if r := w.do(t, attacker, "", secret); r.status != http.StatusOK {
		t.Fatalf("after unlock: %d %s", r.status, r.reason)
	}
	if code, _ := post(`{"ip": "192.0.2.1"}`); code != http.StatusNotFound {
		t.Fatalf("second unlock: %d, want 404", code)
	}
	if code, _ := post(`{"consumer": "alice"}`); code != http.StatusOK {
		t.Fatalf("consumer unlock: %d", code)
	}
	if c := counter(t, w.metrics.Registry, lockout.MetricReleased, map[string]string{"kind": "consumer"}); c != 1 {
		t.Errorf("%s = %v", lockout.MetricReleased, c)
	}
	for _, bad := range []string{`{}`, `nope`, `{"ip": "not-an-ip"}`, `{"ip": "192.0.2.1", "consumer": "a"}`,
		`{"user": "a"}`, `{"consumer": ""}`, `{"ip": "2001:db8::/48"}`} {
		if code, _ := post(bad); code != http.StatusBadRequest {
			t.Errorf("unlock %s: %d, want 400", bad, code)
		}
	}
	if resp, err := http.Get(adm.URL + lockout.AdminUnlockPath); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET unlock: %v %v", resp.StatusCode, err)
	}
	// Unlock by Go API, IPv6 by address within the /64 or by network.
	w.fail(t, 10, "[2001:db8:1:2:aaaa::1]:1", "")
	if !w.guard.Unlock(lockout.KindIP, "2001:db8:1:2::99") {
		t.Fatal("Unlock by an address inside the locked /64 failed")
	}
	w.fail(t, 10, "[2001:db8:1:2:aaaa::1]:1", "")
	if !w.guard.Unlock(lockout.KindIP, "2001:db8:1:2::/64") || w.guard.Unlock(lockout.KindIP, "2001:db8:1:2::/64") {
		t.Fatal("Unlock by network")
	}
}

// TestIPv6Prefix: addresses of one /64 are one client.
func TestIPv6Prefix(t *testing.T) {
	w := start(t, lockout.Config{}, nil)
	for i := range 10 {
		w.fail(t, 1, fmt.Sprintf("[2001:db8:a:b::%x]:1", i+1), "")
	}
	expectLocked(t, w.do(t, "[2001:db8:a:b:ffff::1]:1", "", secret), "60")
	if r := w.do(t, "[2001:db8:a:c::1]:1", "", secret); r.status != http.StatusOK {
		t.Fatalf("the next /64: %d", r.status)
	}
	if r := w.do(t, "[::ffff:192.0.2.77]:1", "", secret); r.status != http.StatusOK {
		t.Fatalf("mapped IPv4: %d", r.status)
	}
	if k := w.guard.IPKey("[::ffff:192.0.2.77]:1"); k != "192.0.2.77" {
		t.Errorf("IPKey(mapped) = %q", k)
	}
}

// TestMemoryBounded: a flood of distinct addresses never grows the table
// past max_keys, and does not wash out a lock-out.
func TestMemoryBounded(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	sink := audit.NewMemorySink()
	g, err := lockout.New(lockout.Config{MaxKeys: 1000, Now: clock.Now, Audit: audit.New(sink)})
	if err != nil {
		t.Fatal(err)
	}
	m := telemetry.New()
	env := &policy.Env{Audit: audit.New(sink), Metrics: m, Now: clock.Now, AuthFailures: g}
	fail := func(remote, consumer string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		x := &policy.Exchange{Remote: remote, Env: env}
		x.Identity.Consumer = consumer
		g.Failed(r, x, "bad_secret")
	}
	for range 10 {
		fail("192.0.2.1:1", "victim")
	}
	for i := range 50_000 {
		fail(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), "")
		if i%997 == 0 {
			clock.Advance(time.Second)
		}
		if n := lockout.Len(g, lockout.KindIP); n > 1000 {
			t.Fatalf("after %d addresses: %d keys tracked, max_keys 1000", i+1, n)
		}
	}
	locks := g.Locks()
	if len(locks) != 2 || locks[1].Key != "192.0.2.1" {
		t.Fatalf("the flood washed out the lock-out: %+v", locks)
	}
	if c := counter(t, m.Registry, lockout.MetricEvictions, map[string]string{"kind": "ip", "class": "active"}); c == 0 {
		t.Error("evictions of active keys not counted")
	}
	// Once the window has passed, the flood's keys are stale and dropped
	// first.
	clock.Advance(16 * time.Minute)
	fail("192.0.2.200:1", "")
	if n := lockout.Len(g, lockout.KindIP); n > 1000 {
		t.Fatalf("%d keys", n)
	}
}

// TestConfig: defaults, and every invalid setting reported at once with
// its key.
func TestConfig(t *testing.T) {
	d := lockout.Defaults()
	if d.Threshold != 10 || d.Window != 15*time.Minute || d.DelayAfter != 3 || d.MaxDelay != 2*time.Second ||
		d.BaseLockout != time.Minute || d.MaxLockout != time.Hour || d.BackoffWindow != 24*time.Hour ||
		d.MaxKeys != 100_000 || d.IPv6Prefix != 64 || len(d.IgnoreReasons) == 0 {
		t.Fatalf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	err := lockout.Config{Threshold: -1, Window: time.Millisecond, DelayAfter: -2, MaxDelay: time.Hour,
		BaseLockout: 2 * time.Hour, MaxLockout: time.Hour, MaxKeys: 5, IPv6Prefix: 8, IgnoreReasons: []string{"Bad Reason"}}.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *lockout.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"threshold", "window", "delay_after", "max_delay", "max_lockout", "max_keys", "ipv6_prefix", "ignore_reasons[0]"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields %v, want %v (%v)", fields, want, err)
	}
	if _, err := lockout.New(lockout.Config{Threshold: 5000}); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("New accepted an invalid config: %v", err)
	}
	// Update keeps state; a bad update keeps the old settings.
	w := start(t, lockout.Config{}, nil)
	w.fail(t, 10, attacker, "")
	if err := w.guard.Update(lockout.Config{Threshold: 3, Now: w.clock.Now}); err != nil {
		t.Fatal(err)
	}
	expectLocked(t, w.do(t, attacker, "", secret), "60")
	if err := w.guard.Update(lockout.Config{Threshold: -3}); err == nil || w.guard.Config().Threshold != 3 {
		t.Fatalf("bad update: %v, threshold %d", err, w.guard.Config().Threshold)
	}
}

// TestWithoutGuard: with no Guard in the Env the policy passes requests
// through (and logs once).
func TestWithoutGuard(t *testing.T) {
	p, err := policy.Build(lockout.Type, func(any) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
	var logs bytes.Buffer
	env := &policy.Env{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(policy.WithExchange(r.Context(), &policy.Exchange{Env: env})))
	}
	if reached != 3 {
		t.Fatalf("reached %d of 3", reached)
	}
	if n := strings.Count(logs.String(), "no lock-out guard"); n != 1 {
		t.Fatalf("logged %d times, want once: %s", n, logs.String())
	}
}
