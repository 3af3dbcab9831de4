// Package audit records security decisions as structured events: every
// handshake failure, deny, pin mismatch and reload. Events are written as
// JSON lines to one or more sinks.
package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Severities.
const (
	Info     = "info"
	Warning  = "warning"
	Critical = "critical"
)

// Event is one security decision or notable change.
type Event struct {
	Time      time.Time      `json:"time"`
	Type      string         `json:"type"`
	Severity  string         `json:"severity"`
	RequestID string         `json:"request_id,omitempty"`
	Route     string         `json:"route,omitempty"`
	Remote    string         `json:"remote,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	Status    int            `json:"status,omitempty"`
	Detail    string         `json:"detail,omitempty"`
	Fields    map[string]any `json:"fields,omitempty"`
}

// Sink receives events. Write must be safe for concurrent use and must not
// block for long: it runs on the request path of denied requests.
type Sink interface {
	Write(Event)
}

// Logger stamps events and fans them out to its sinks. A nil *Logger
// discards everything.
type Logger struct {
	sinks []Sink
	now   func() time.Time
}

// New returns a Logger writing to the given sinks.
func New(sinks ...Sink) *Logger {
	return &Logger{sinks: sinks, now: time.Now}
}

// Emit records e, filling in its time and severity if unset.
func (l *Logger) Emit(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	if e.Severity == "" {
		e.Severity = Info
	}
	for _, s := range l.sinks {
		s.Write(e)
	}
}

// JSONSink writes each event as one JSON line.
type JSONSink struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
}

// NewJSONSink returns a sink writing JSON lines to w.
func NewJSONSink(w io.Writer) *JSONSink {
	return &JSONSink{w: w, enc: json.NewEncoder(w)}
}

// Write implements Sink.
func (s *JSONSink) Write(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enc.Encode(e); err != nil {
		slog.Error("audit: write event", "type", e.Type, "err", err)
	}
}

// MemorySink keeps events in memory; tests use it to wait for an event
// without sleeping.
type MemorySink struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{}
}

// NewMemorySink returns an empty MemorySink.
func NewMemorySink() *MemorySink { return &MemorySink{changed: make(chan struct{})} }

// Write implements Sink.
func (m *MemorySink) Write(e Event) {
	m.mu.Lock()
	m.events = append(m.events, e)
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Events returns a copy of the events recorded so far.
func (m *MemorySink) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// Wait blocks until an event matching match has been recorded (including
// before the call) or ctx ends.
func (m *MemorySink) Wait(ctx context.Context, match func(Event) bool) (Event, error) {
	seen := 0
	for {
		m.mu.Lock()
		for ; seen < len(m.events); seen++ {
			if match(m.events[seen]) {
				e := m.events[seen]
				m.mu.Unlock()
				return e, nil
			}
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// OfType returns a matcher for Wait selecting events of the given type.
func OfType(typ string) func(Event) bool {
	return func(e Event) bool { return e.Type == typ }
}
