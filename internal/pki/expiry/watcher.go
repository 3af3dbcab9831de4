package expiry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/telemetry"
)

// Defaults of a [Config] left at its zero values.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultRetries  = 3
	DefaultBackoff  = time.Second
	DefaultInterval = time.Hour
	// CriticalAt is the threshold at and under which an expiring
	// certificate is a critical event rather than a warning.
	CriticalAt = 7 * Day
)

// Day is 24 hours, the unit thresholds are usually written in.
const Day = 24 * time.Hour

// DefaultThresholds are the thresholds of a Config without any: 30, 14, 7
// and 1 days before NotAfter.
func DefaultThresholds() []time.Duration {
	return []time.Duration{30 * Day, 14 * Day, 7 * Day, 1 * Day}
}

// Audit event types.
const (
	EventExpiring      = "certificate_expiring"
	EventExpired       = "certificate_expired"
	EventWebhookFailed = "certificate_expiry_webhook_failed"
)

// Config configures a Watcher. Zero values mean the defaults above.
type Config struct {
	// Thresholds are how long before NotAfter a certificate is reported;
	// each must be positive. Empty means DefaultThresholds.
	Thresholds []time.Duration
	// Webhook, if set, receives every notification as JSON.
	Webhook *WebhookConfig
	// Audit receives the events; nil discards them.
	Audit *audit.Logger
	// Log receives operational messages (failed deliveries); nil means
	// slog.Default.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient posts to the webhook; nil means a client that follows no
	// redirect. Each attempt is bounded by Webhook.Timeout whatever the
	// client's own timeout.
	HTTPClient *http.Client
	// Sleep waits between delivery attempts, or returns ctx's error; nil
	// means a timer. Tests inject one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Cert is one certificate in use: telemetry.CertInfo, the gateway's
// description of it for the expiry gauge.
type Cert = telemetry.CertInfo

// Notification is one certificate crossing one threshold: the body of the
// webhook and the fields of the audit event.
type Notification struct {
	// ID is stable across retries and restarts: serial, NotAfter and
	// threshold. It is also sent as the Idempotency-Key header.
	ID string `json:"id"`
	// Event is EventExpiring or EventExpired.
	Event    string `json:"event"`
	Severity string `json:"severity"`
	Use      string `json:"use"`
	Name     string `json:"name,omitempty"`
	Serial   string `json:"serial"`
	// NotAfter is when the certificate expires.
	NotAfter time.Time `json:"not_after"`
	// SecondsLeft is NotAfter minus the time of detection (negative once
	// expired).
	SecondsLeft int64 `json:"seconds_left"`
	// Threshold is the threshold crossed, in days ("30d") or as a Go
	// duration when not whole days; "expired" for EventExpired.
	Threshold        string `json:"threshold"`
	ThresholdSeconds int64  `json:"threshold_seconds"`
	// DetectedAt is when the check found it.
	DetectedAt time.Time `json:"detected_at"`
}

// key names one (certificate, threshold) pair; threshold 0 is "expired".
type key struct {
	serial    string
	notAfter  int64
	threshold time.Duration
}

func (k key) id() string {
	t := "expired"
	if k.threshold > 0 {
		t = formatThreshold(k.threshold)
	}
	return k.serial + "/" + strconv.FormatInt(k.notAfter, 10) + "/" + t
}

// Watcher reports certificates nearing expiry. Its methods are safe for
// concurrent use; checks run one at a time.
type Watcher struct {
	thresholds []time.Duration // descending
	hook       *webhook
	audit      *audit.Logger
	log        *slog.Logger
	now        func() time.Time

	mu    sync.Mutex
	certs []Cert

	checkMu  sync.Mutex            // serializes Check; guards the fields below
	notified map[key]bool          // notified (audit event emitted), or superseded
	pending  map[key]*Notification // webhook not yet delivered
}

// New validates cfg and returns a Watcher with no certificates.
func New(cfg Config) (*Watcher, error) {
	w := &Watcher{audit: cfg.Audit, log: cfg.Log, now: cfg.Now,
		notified: map[key]bool{}, pending: map[key]*Notification{}}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.now == nil {
		w.now = time.Now
	}
	th, err := normalizeThresholds(cfg.Thresholds)
	if err != nil {
		return nil, err
	}
	w.thresholds = th
	if cfg.Webhook != nil {
		if w.hook, err = newWebhook(*cfg.Webhook, cfg.HTTPClient, cfg.Sleep); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func normalizeThresholds(in []time.Duration) ([]time.Duration, error) {
	if len(in) == 0 {
		return DefaultThresholds(), nil
	}
	out := slices.Clone(in)
	for _, t := range out {
		if t <= 0 {
			return nil, fmt.Errorf("expiry: threshold %v must be positive", t)
		}
	}
	slices.SortFunc(out, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	return slices.Compact(out), nil
}

// SetCertificates replaces the certificates watched (at start and on every
// reload). Pending webhook deliveries of certificates no longer in the set
// are dropped at the next check.
func (w *Watcher) SetCertificates(certs []Cert) {
	w.mu.Lock()
	w.certs = slices.Clone(certs)
	w.mu.Unlock()
}

// Check compares every certificate with the thresholds at the current
// time, emits the audit event of each newly crossed threshold, and
// delivers pending webhook notifications. It returns the delivery error,
// if any; the notifications that failed are tried again at the next
// check.
func (w *Watcher) Check(ctx context.Context) error {
	w.checkMu.Lock()
	defer w.checkMu.Unlock()
	w.mu.Lock()
	certs := w.certs
	w.mu.Unlock()

	now := w.now()
	present := map[key]bool{}
	for _, c := range certs {
		present[key{serial: c.Serial, notAfter: c.NotAfter.Unix()}] = true
		if k, n := w.cross(c, now); n != nil {
			w.emit(n)
			if w.hook != nil {
				w.pending[k] = n
			}
		}
	}
	for k := range w.pending {
		if !present[key{serial: k.serial, notAfter: k.notAfter}] {
			delete(w.pending, k)
		}
	}
	return w.deliver(ctx)
}

// cross returns the notification c is due at now, or nil, and marks it
// (and every looser threshold) notified.
func (w *Watcher) cross(c Cert, now time.Time) (key, *Notification) {
	left := c.NotAfter.Sub(now)
	k := key{serial: c.Serial, notAfter: c.NotAfter.Unix()}
	if left > 0 {
		// The tightest threshold crossed: thresholds are descending.
		i := -1
		for j, t := range w.thresholds {
			if left <= t {
				i = j
			}
		}
		if i < 0 {
			return k, nil
		}
		k.threshold = w.thresholds[i]
	}
	if w.notified[k] {
		return k, nil
	}
	for _, t := range w.thresholds {
		if k.threshold == 0 || t >= k.threshold {
			w.notified[key{k.serial, k.notAfter, t}] = true
		}
	}
	w.notified[k] = true
	n := &Notification{
		ID: k.id(), Event: EventExpiring, Severity: audit.Warning,
		Use: c.Use, Name: c.Name, Serial: c.Serial, NotAfter: c.NotAfter.UTC(),
		SecondsLeft: int64(left / time.Second), ThresholdSeconds: int64(k.threshold / time.Second),
		Threshold: formatThreshold(k.threshold), DetectedAt: now.UTC(),
	}
	switch {
	case k.threshold == 0:
		n.Event, n.Severity, n.Threshold = EventExpired, audit.Critical, "expired"
	case k.threshold <= CriticalAt:
		n.Severity = audit.Critical
	}
	return k, n
}

func (w *Watcher) emit(n *Notification) {
	detail := fmt.Sprintf("%s certificate %s (serial %s) expires %s, within %s", n.Use, n.Name, n.Serial, n.NotAfter.Format(time.RFC3339), n.Threshold)
	if n.Event == EventExpired {
		detail = fmt.Sprintf("%s certificate %s (serial %s) expired %s", n.Use, n.Name, n.Serial, n.NotAfter.Format(time.RFC3339))
	}
	w.audit.Emit(audit.Event{
		Type: n.Event, Severity: n.Severity, Reason: n.Event, Detail: detail,
		Fields: map[string]any{
			"id": n.ID, "use": n.Use, "name": n.Name, "serial": n.Serial,
			"not_after": n.NotAfter, "seconds_left": n.SecondsLeft, "threshold": n.Threshold,
		},
	})
}

// deliver posts the pending notifications, oldest certificate first. It
// stops at the first one whose every attempt failed: the receiver is down,
// and the rest wait for the next check.
func (w *Watcher) deliver(ctx context.Context) error {
	if w.hook == nil || len(w.pending) == 0 {
		return nil
	}
	keys := make([]key, 0, len(w.pending))
	for k := range w.pending {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.notAfter, b.notAfter), cmp.Compare(a.serial, b.serial), cmp.Compare(b.threshold, a.threshold))
	})
	for _, k := range keys {
		n := w.pending[k]
		attempts, err := w.hook.send(ctx, n)
		if err == nil {
			delete(w.pending, k)
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		w.log.Warn("certificate expiry webhook failed; retrying at the next check", "id", n.ID, "attempts", attempts, "err", err)
		w.audit.Emit(audit.Event{
			Type: EventWebhookFailed, Severity: audit.Warning, Reason: "webhook_failed",
			Detail: fmt.Sprintf("notification %s not delivered after %d attempts: %v", n.ID, attempts, err),
			Fields: map[string]any{"id": n.ID, "attempts": attempts},
		})
		return fmt.Errorf("expiry webhook: notification %s: %w", n.ID, err)
	}
	return nil
}

// Pending returns the number of notifications not yet delivered to the
// webhook. It waits for a running check to finish.
func (w *Watcher) Pending() int {
	w.checkMu.Lock()
	defer w.checkMu.Unlock()
	return len(w.pending)
}

// Run checks at once and then every interval (DefaultInterval if not
// positive) until ctx ends, and returns ctx's error. Delivery errors are
// logged and retried at the next check.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.log.Debug("certificate expiry check", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// formatThreshold writes whole days as "30d", anything else as a Go
// duration.
func formatThreshold(d time.Duration) string {
	if d > 0 && d%Day == 0 {
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return d.String()
}

// ParseThreshold parses a threshold as written in config: "30d", or a Go
// duration such as "12h".
func ParseThreshold(s string) (time.Duration, error) {
	if n, ok := cutDays(s); ok {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v <= 0 || v > 3650 {
			return 0, fmt.Errorf("threshold %q: want a number of days from 1 to 3650 such as 30d", s)
		}
		return time.Duration(v) * Day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("threshold " + strconv.Quote(s) + ": want a positive duration such as 30d or 12h")
	}
	return d, nil
}

func cutDays(s string) (string, bool) {
	if len(s) > 1 && s[len(s)-1] == 'd' {
		return s[:len(s)-1], true
	}
	return "", false
}
