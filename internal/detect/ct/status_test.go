package ct

import (
	"context"
	"testing"
	"time"
)

// TestStatus: Status reports the verified size and the last success, from
// the state file after a restart, and only a successful poll moves it.
func TestStatus(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func(c *Config) { c.Now = func() time.Time { return now } }
	m := f.monitor(t, clock)
	if s := m.Status(); len(s) != 1 || s[0].Name != "test-log" || !s[0].LastSuccess.IsZero() || !m.Started().Equal(now) {
		t.Fatalf("before any poll: %+v", s)
	}
	f.log.AddCert(f.known.Cert, f.ca.Cert)
	if _, err := f.poll(t, m); err != nil {
		t.Fatal(err)
	}
	if s := m.Status()[0]; s.TreeSize != 1 || !s.LastSuccess.Equal(now) {
		t.Fatalf("after a poll: %+v", s)
	}

	now = now.Add(time.Hour)
	f.log.BadSignatures(true)
	if _, err := f.poll(t, m); err == nil {
		t.Fatal("a bad signature was accepted")
	}
	if s := m.Status()[0]; !s.LastSuccess.Equal(now.Add(-time.Hour)) {
		t.Fatalf("a failed poll moved the last success: %+v", s)
	}
	restarted := f.monitor(t, clock)
	if s := restarted.Status()[0]; s.TreeSize != 1 || !s.LastSuccess.Equal(now.Add(-time.Hour)) {
		t.Fatalf("after a restart: %+v", s)
	}
}

// TestStoppedPollIsNotAFailure: a poll cut short by its context ending (a
// reload or shutdown) raises no poll-failure warning.
func TestStoppedPollIsNotAFailure(t *testing.T) {
	f := newFixture(t)
	m := f.monitor(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := len(f.sink.Events())
	if err := m.Poll(ctx); err == nil {
		t.Fatal("a cancelled poll succeeded")
	}
	if evs := f.sink.Events()[before:]; len(ofType(evs, EventPollFailed)) != 0 {
		t.Fatalf("events %+v", evs)
	}
}
