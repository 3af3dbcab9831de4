package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	l := New(NewJSONSink(&buf))
	l.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	l.Emit(Event{Type: "request_denied", Reason: "no_route", Status: 404, Fields: map[string]any{"path": "/x"}})
	l.Emit(Event{Type: "config_reloaded", Severity: Critical})
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var e Event
	if err := json.Unmarshal(lines[0], &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != "request_denied" || e.Severity != Info || e.Status != 404 || e.Fields["path"] != "/x" || !e.Time.Equal(l.now()) {
		t.Errorf("event %+v", e)
	}
	var nilLogger *Logger
	nilLogger.Emit(Event{Type: "x"}) // must not panic
}

func TestMemorySinkWait(t *testing.T) {
	m := NewMemorySink()
	l := New(m)
	l.Emit(Event{Type: "a"})
	got := make(chan Event, 1)
	go func() {
		e, err := m.Wait(context.Background(), OfType("b"))
		if err == nil {
			got <- e
		}
	}()
	l.Emit(Event{Type: "b", Reason: "later"})
	if e := <-got; e.Reason != "later" {
		t.Fatalf("got %+v", e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Wait(ctx, OfType("never")); err == nil {
		t.Fatal("Wait returned without the event")
	}
}
