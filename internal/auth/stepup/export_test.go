package stepup

import (
	"net/http"
	"time"
)

// HOTP is hotp with any number of digits (the RFC 6238 vectors have 8).
func HOTP(secret []byte, counter uint64, digits int) string {
	b := make([]byte, digits)
	hotp(secret, counter, b)
	return string(b)
}

// SetWebhookBackoff shortens the delay between delivery attempts.
func SetWebhookBackoff(p *Policy, d time.Duration) { p.notifier.backoff = d }

// SetWebhookClient replaces the webhook's HTTP client (a test TLS root).
func SetWebhookClient(p *Policy, c *http.Client) {
	c.CheckRedirect = p.notifier.client.CheckRedirect
	p.notifier.client = c
}
