package stepup

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/store"
)

// Audit events of webhook deliveries.
const (
	EventWebhookDelivered = "stepup_webhook_delivered"
	EventWebhookFailed    = "stepup_webhook_failed"
)

// NotificationType is the type of the JSON document POSTed to the webhook.
const NotificationType = "warden.stepup.approval_requested"

// Notification is the JSON document POSTed to an approval webhook. It
// carries what an operator needs to decide, and the id to approve or deny
// through the admin API or `warden stepup approve|deny ID`. The id alone
// is useless to anyone else: it works only with the consumer's own
// credentials, for the very same request.
type Notification struct {
	Type       string    `json:"type"`
	ApprovalID string    `json:"approval_id"`
	Consumer   string    `json:"consumer"`
	Route      string    `json:"route"`
	Method     string    `json:"method"`
	Target     string    `json:"target"`
	Digest     string    `json:"digest"`
	Remote     string    `json:"remote,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// notifier delivers notifications asynchronously: a bounded number in
// flight, each with bounded attempts, each attempt with a timeout; it
// never follows redirects.
type notifier struct {
	url      *url.URL
	client   *http.Client
	sem      chan struct{}
	wg       sync.WaitGroup
	attempts int
	backoff  time.Duration
}

func newNotifier(u *url.URL) *notifier {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: webhookTimeout,
	}
	return &notifier{
		url: u,
		client: &http.Client{Transport: tr, Timeout: webhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:      make(chan struct{}, maxDeliveries),
		attempts: webhookAttempts,
		backoff:  webhookBackoff,
	}
}

// notify starts delivering n, or audits that it was dropped because too
// many deliveries are in flight.
func (nt *notifier) notify(aud *audit.Logger, a store.Approval) {
	n := Notification{Type: NotificationType, ApprovalID: a.ID, Consumer: a.Consumer, Route: a.Route, Method: a.Method,
		Target: bounded(a.Target), Digest: fmt.Sprintf("%x", a.Digest), Remote: a.Remote, RequestID: a.RequestID,
		CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt}
	body, err := json.Marshal(n)
	if err != nil { // cannot happen: strings and times
		return
	}
	select {
	case nt.sem <- struct{}{}:
	default:
		aud.Emit(audit.Event{Type: EventWebhookFailed, Severity: audit.Critical, RequestID: a.RequestID, Route: a.Route,
			Reason: "webhook_queue_full", Fields: map[string]any{"approval_id": a.ID, "consumer": a.Consumer, "attempts": 0}})
		return
	}
	nt.wg.Go(func() {
		defer func() { <-nt.sem }()
		nt.deliver(aud, a, body)
	})
}

func (nt *notifier) deliver(aud *audit.Logger, a store.Approval, body []byte) {
	wait := nt.backoff
	var err error
	for attempt := 1; attempt <= nt.attempts; attempt++ {
		if attempt > 1 {
			time.Sleep(wait)
			wait *= 2
		}
		if err = nt.post(body, attempt); err == nil {
			aud.Emit(audit.Event{Type: EventWebhookDelivered, Severity: audit.Info, RequestID: a.RequestID, Route: a.Route,
				Fields: map[string]any{"approval_id": a.ID, "consumer": a.Consumer, "attempts": attempt}})
			return
		}
		final := attempt == nt.attempts
		sev := audit.Warning
		if final {
			sev = audit.Critical
		}
		aud.Emit(audit.Event{Type: EventWebhookFailed, Severity: sev, RequestID: a.RequestID, Route: a.Route,
			Reason: "webhook_delivery_failed", Detail: bounded(err.Error()),
			Fields: map[string]any{"approval_id": a.ID, "consumer": a.Consumer, "attempt": attempt, "final": final}})
	}
}

func (nt *notifier) post(body []byte, attempt int) error {
	ctx, cancel := context.WithTimeout(context.Background(), webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nt.url.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-stepup")
	req.Header.Set("Warden-Delivery-Attempt", fmt.Sprint(attempt))
	resp, err := nt.client.Do(req)
	if err != nil {
		return redactURL(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// redactURL keeps a webhook URL's path and query (which may hold a
// token) out of the audit log.
func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Errorf("%s %s://%s: %w", ue.Op, u.Scheme, u.Host, ue.Err)
		}
	}
	return err
}

// wait blocks until every delivery in flight has ended or ctx is done.
func (nt *notifier) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { nt.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func bounded(s string) string {
	if len(s) > maxAuditText {
		return s[:maxAuditText] + "…"
	}
	return s
}
