package expiry_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/expiry"
	"github.com/wardengw/warden/internal/testkit"
)

// receiver is a webhook endpoint that fails the attempts fail says to
// fail (by their 1-based number) and records the rest.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	n    int
	fail func(attempt int) bool
	got  []expiry.Notification
	hdrs []http.Header
	body [][]byte
}

func newReceiver(t *testing.T, fail func(int) bool) *receiver {
	r := &receiver{t: t, fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.n++
		if r.fail != nil && r.fail(r.n) {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var n expiry.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		r.got = append(r.got, n)
		r.hdrs = append(r.hdrs, req.Header.Clone())
		r.body = append(r.body, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) delivered() []expiry.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// sleepRecorder returns a sleep func that records each wait and returns at
// once.
func sleepRecorder() (*[]time.Duration, func(context.Context, time.Duration) error) {
	var waits []time.Duration
	var mu sync.Mutex
	return &waits, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
}

var expiresAt = time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)

func serverCert() expiry.Cert {
	return expiry.Cert{Use: "server", Name: "api.example.com", Serial: "1f2e", NotAfter: expiresAt}
}

func newWatcher(t *testing.T, clk *testkit.Clock, sink *audit.MemorySink, hook *expiry.WebhookConfig, sleep func(context.Context, time.Duration) error) *expiry.Watcher {
	t.Helper()
	w, err := expiry.New(expiry.Config{Webhook: hook, Audit: audit.New(sink), Now: clk.Now, Sleep: sleep})
	if err != nil {
		t.Fatal(err)
	}
	w.SetCertificates([]expiry.Cert{serverCert()})
	return w
}

func expiryEvents(sink *audit.MemorySink) []audit.Event {
	var out []audit.Event
	for _, e := range sink.Events() {
		if e.Type == expiry.EventExpiring || e.Type == expiry.EventExpired {
			out = append(out, e)
		}
	}
	return out
}

func TestThresholdsFireOnceEach(t *testing.T) {
	rcv := newReceiver(t, nil)
	clk := testkit.NewClock(time.Time{})
	sink := audit.NewMemorySink()
	_, sleep := sleepRecorder()
	w := newWatcher(t, clk, sink, &expiry.WebhookConfig{URL: rcv.srv.URL}, sleep)
	ctx := context.Background()

	steps := []struct {
		left                       time.Duration
		event, severity, threshold string
	}{
		{31 * expiry.Day, "", "", ""},
		{30 * expiry.Day, expiry.EventExpiring, audit.Warning, "30d"},
		{20 * expiry.Day, "", "", ""},
		{14 * expiry.Day, expiry.EventExpiring, audit.Warning, "14d"},
		{7 * expiry.Day, expiry.EventExpiring, audit.Critical, "7d"},
		{36 * time.Hour, "", "", ""},
		{1 * expiry.Day, expiry.EventExpiring, audit.Critical, "1d"},
		{time.Second, "", "", ""},
		{0, expiry.EventExpired, audit.Critical, "expired"},
		{-30 * expiry.Day, "", "", ""},
	}
	want := 0
	for _, s := range steps {
		clk.Set(expiresAt.Add(-s.left))
		for range 3 { // repeated checks do not repeat a notification
			if err := w.Check(ctx); err != nil {
				t.Fatalf("%v left: %v", s.left, err)
			}
		}
		if s.event != "" {
			want++
		}
		evs, got := expiryEvents(sink), rcv.delivered()
		if len(evs) != want || len(got) != want {
			t.Fatalf("%v left: %d events, %d deliveries; want %d of each", s.left, len(evs), len(got), want)
		}
		if s.event == "" {
			continue
		}
		e, n := evs[want-1], got[want-1]
		if e.Type != s.event || e.Severity != s.severity || e.Fields["threshold"] != s.threshold {
			t.Errorf("%v left: event %s/%s/%v, want %s/%s/%s", s.left, e.Type, e.Severity, e.Fields["threshold"], s.event, s.severity, s.threshold)
		}
		if n.Event != s.event || n.Severity != s.severity || n.Threshold != s.threshold ||
			n.Use != "server" || n.Name != "api.example.com" || n.Serial != "1f2e" ||
			!n.NotAfter.Equal(expiresAt) || n.SecondsLeft != int64(s.left/time.Second) {
			t.Errorf("%v left: webhook got %+v", s.left, n)
		}
	}
	if rcv.attempts() != want {
		t.Errorf("%d webhook requests for %d notifications", rcv.attempts(), want)
	}
}

func TestFailedDeliveryIsRetriedWithBackoff(t *testing.T) {
	rcv := newReceiver(t, func(n int) bool { return n == 1 })
	clk := testkit.NewClock(time.Time{})
	sink := audit.NewMemorySink()
	waits, sleep := sleepRecorder()
	w := newWatcher(t, clk, sink, &expiry.WebhookConfig{URL: rcv.srv.URL, Backoff: 2 * time.Second}, sleep)

	clk.Set(expiresAt.Add(-10 * expiry.Day))
	for range 2 {
		if err := w.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := rcv.delivered(); len(got) != 1 || got[0].Threshold != "14d" || rcv.attempts() != 2 {
		t.Fatalf("deliveries %+v after %d attempts; want one 14d after 2", got, rcv.attempts())
	}
	if !slices.Equal(*waits, []time.Duration{2 * time.Second}) {
		t.Errorf("waits %v", *waits)
	}
	if len(expiryEvents(sink)) != 1 {
		t.Errorf("audit events: %+v", sink.Events())
	}
}

func TestDeliveryFailingEveryAttemptIsRetriedAtNextCheck(t *testing.T) {
	down := true
	var mu sync.Mutex
	rcv := newReceiver(t, func(int) bool { mu.Lock(); defer mu.Unlock(); return down })
	clk := testkit.NewClock(time.Time{})
	sink := audit.NewMemorySink()
	waits, sleep := sleepRecorder()
	w := newWatcher(t, clk, sink, &expiry.WebhookConfig{URL: rcv.srv.URL}, sleep)
	ctx := context.Background()

	clk.Set(expiresAt.Add(-3 * expiry.Day))
	if err := w.Check(ctx); err == nil {
		t.Fatal("Check: no error while the receiver is down")
	}
	if rcv.attempts() != 1+expiry.DefaultRetries || w.Pending() != 1 {
		t.Fatalf("%d attempts, %d pending", rcv.attempts(), w.Pending())
	}
	if !slices.Equal(*waits, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
		t.Errorf("waits %v", *waits)
	}
	if _, err := sink.Wait(ctx, audit.OfType(expiry.EventWebhookFailed)); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	down = false
	mu.Unlock()
	for range 2 {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := rcv.delivered()
	if len(got) != 1 || got[0].Threshold != "7d" || got[0].Severity != audit.Critical || w.Pending() != 0 {
		t.Fatalf("after recovery: %+v, %d pending", got, w.Pending())
	}
	if n := len(expiryEvents(sink)); n != 1 {
		t.Errorf("%d certificate_expiring events; the retry must not repeat it", n)
	}
}

func TestSkippedThresholdsNotifyOnlyTheTightest(t *testing.T) {
	rcv := newReceiver(t, nil)
	clk := testkit.NewClock(time.Time{})
	sink := audit.NewMemorySink()
	_, sleep := sleepRecorder()
	w := newWatcher(t, clk, sink, &expiry.WebhookConfig{URL: rcv.srv.URL}, sleep)

	clk.Set(expiresAt.Add(-5 * expiry.Day)) // started late: 30d, 14d and 7d are all crossed
	_ = w.Check(context.Background())
	clk.Set(expiresAt.Add(-12 * time.Hour))
	_ = w.Check(context.Background())
	var th []string
	for _, n := range rcv.delivered() {
		th = append(th, n.Threshold)
	}
	if !slices.Equal(th, []string{"7d", "1d"}) {
		t.Fatalf("thresholds notified: %v", th)
	}
}

func TestRotatedCertificateDropsPendingAndIsWatchedAfresh(t *testing.T) {
	down := true
	var mu sync.Mutex
	rcv := newReceiver(t, func(int) bool { mu.Lock(); defer mu.Unlock(); return down })
	clk := testkit.NewClock(time.Time{})
	sink := audit.NewMemorySink()
	_, sleep := sleepRecorder()
	w := newWatcher(t, clk, sink, &expiry.WebhookConfig{URL: rcv.srv.URL, Retries: -1}, sleep)

	clk.Set(expiresAt.Add(-20 * expiry.Day))
	_ = w.Check(context.Background())
	if rcv.attempts() != 1 || w.Pending() != 1 {
		t.Fatalf("Retries -1: %d attempts, %d pending", rcv.attempts(), w.Pending())
	}
	// Renewed before the receiver came back: the old notice is moot.
	renewed := serverCert()
	renewed.Serial, renewed.NotAfter = "2a2a", expiresAt.Add(90*expiry.Day)
	w.SetCertificates([]expiry.Cert{renewed})
	mu.Lock()
	down = false
	mu.Unlock()
	if err := w.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rcv.delivered()) != 0 || w.Pending() != 0 {
		t.Fatalf("delivered %+v, %d pending", rcv.delivered(), w.Pending())
	}
}

func TestWebhookHeaders(t *testing.T) {
	rcv := newReceiver(t, nil)
	clk := testkit.NewClock(time.Time{})
	_, sleep := sleepRecorder()
	w := newWatcher(t, clk, audit.NewMemorySink(), &expiry.WebhookConfig{URL: rcv.srv.URL, Secret: "s3cret"}, sleep)
	clk.Set(expiresAt.Add(-29 * expiry.Day))
	if err := w.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rcv.delivered()
	if len(got) != 1 {
		t.Fatal("no delivery")
	}
	h := rcv.hdrs[0]
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write(rcv.body[0])
	if h.Get("X-Warden-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("signature %q", h.Get("X-Warden-Signature"))
	}
	if h.Get("Idempotency-Key") != got[0].ID || got[0].ID == "" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v, id %q", h, got[0].ID)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  expiry.Config
	}{
		{"http to a remote host", expiry.Config{Webhook: &expiry.WebhookConfig{URL: "http://alerts.example.com/hook"}}},
		{"other scheme", expiry.Config{Webhook: &expiry.WebhookConfig{URL: "ftp://alerts.example.com/hook"}}},
		{"relative url", expiry.Config{Webhook: &expiry.WebhookConfig{URL: "/hook"}}},
		{"credentials in url", expiry.Config{Webhook: &expiry.WebhookConfig{URL: "https://u:p@alerts.example.com/hook"}}},
		{"zero threshold", expiry.Config{Thresholds: []time.Duration{0}}},
	} {
		if _, err := expiry.New(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	for _, u := range []string{"https://alerts.example.com/hook", "http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]/hook"} {
		if _, err := expiry.New(expiry.Config{Webhook: &expiry.WebhookConfig{URL: u}}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestCustomThresholds(t *testing.T) {
	clk := testkit.NewClock(time.Time{})
	sink := audit.NewMemorySink()
	w, err := expiry.New(expiry.Config{Thresholds: []time.Duration{12 * time.Hour, 3 * expiry.Day, 12 * time.Hour}, Audit: audit.New(sink), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.SetCertificates([]expiry.Cert{serverCert()})
	for _, left := range []time.Duration{5 * expiry.Day, 3 * expiry.Day, expiry.Day, 12 * time.Hour} {
		clk.Set(expiresAt.Add(-left))
		_ = w.Check(context.Background())
	}
	var th []any
	for _, e := range expiryEvents(sink) {
		th = append(th, e.Fields["threshold"])
	}
	if !slices.Equal(th, []any{"3d", "12h0m0s"}) {
		t.Fatalf("thresholds %v", th)
	}
}

func TestRunChecksAtOnceAndStopsWithContext(t *testing.T) {
	clk := testkit.NewClock(time.Time{})
	clk.Set(expiresAt.Add(time.Hour))
	sink := audit.NewMemorySink()
	w := newWatcher(t, clk, sink, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, time.Hour) }()
	if _, err := sink.Wait(ctx, audit.OfType(expiry.EventExpired)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}

func TestParseThreshold(t *testing.T) {
	for s, want := range map[string]time.Duration{"30d": 30 * expiry.Day, "1d": expiry.Day, "12h": 12 * time.Hour} {
		if got, err := expiry.ParseThreshold(s); err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0d", "-1d", "xd", "0s", "30"} {
		if _, err := expiry.ParseThreshold(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
