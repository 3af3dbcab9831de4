package expiry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WebhookConfig is where notifications are posted.
type WebhookConfig struct {
	// URL receives a POST of each Notification as JSON. It must be https,
	// or http to a loopback address (a local relay).
	URL string
	// Secret, if set, signs each body: the X-Warden-Signature header is
	// "sha256=" and the hex HMAC-SHA256 of the body under Secret.
	Secret string
	// Timeout bounds each attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a failed attempt is repeated within one
	// check; 0 means DefaultRetries, negative means none.
	Retries int
	// Backoff is the wait before the first retry, doubled before each
	// next one; 0 means DefaultBackoff.
	Backoff time.Duration
}

// String hides the URL's path and query, where webhook services keep
// their token, and the secret.
func (c WebhookConfig) String() string { return "webhook(" + redactURL(c.URL) + ")" }

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// ValidateWebhookURL reports why raw cannot be a webhook URL, or nil.
func ValidateWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("webhook url %s: not an absolute URL", redactURL(raw))
	}
	if u.User != nil {
		return fmt.Errorf("webhook url %s: must not carry credentials", redactURL(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("webhook url %s: http is allowed only to a loopback address; use https", redactURL(raw))
	default:
		return fmt.Errorf("webhook url %s: scheme must be https", redactURL(raw))
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type webhook struct {
	cfg    WebhookConfig
	client *http.Client
	sleep  func(context.Context, time.Duration) error
}

func newWebhook(cfg WebhookConfig, client *http.Client, sleep func(context.Context, time.Duration) error) (*webhook, error) {
	if err := ValidateWebhookURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("expiry: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if client == nil {
		client = &http.Client{
			// A redirect could take the notification off https.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	return &webhook{cfg: cfg, client: client, sleep: sleep}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send posts n, retrying with backoff; it returns the attempts made and
// the last error.
func (h *webhook) send(ctx context.Context, n *Notification) (int, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return 0, err
	}
	wait := h.cfg.Backoff
	attempts := 0
	for {
		attempts++
		err = h.post(ctx, n.ID, body)
		if err == nil || attempts > h.cfg.Retries || ctx.Err() != nil {
			return attempts, err
		}
		if serr := h.sleep(ctx, wait); serr != nil {
			return attempts, errors.Join(err, serr)
		}
		wait *= 2
	}
}

func (h *webhook) post(ctx context.Context, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("cannot build request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-expiry")
	req.Header.Set("Idempotency-Key", id)
	if h.cfg.Secret != "" {
		m := hmac.New(sha256.New, []byte(h.cfg.Secret))
		m.Write(body)
		req.Header.Set("X-Warden-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error names the URL, which may hold the receiver's token.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("post %s: %w", redactURL(h.cfg.URL), ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post %s: status %s", redactURL(h.cfg.URL), resp.Status)
	}
	return nil
}
