package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
)

// TestLegacyVariant: clients without a certificate reach the route's legacy
// variant, which carries the deprecation headers, a tighter rate limit and
// an audit event per request, and is cut off after its sunset; clients
// with a certificate take the modern path.
func TestLegacyVariant(t *testing.T) {
	e := newEnv(t, map[string]any{"Legacy": true})
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	e.clock.Store(&now)

	get := func(c *http.Client) (*http.Response, upstreamEcho) {
		t.Helper()
		resp, err := c.Get(e.httpsURL("/partner/orders"))
		if err != nil {
			t.Fatal(err)
		}
		var echo upstreamEcho
		if resp.StatusCode == 200 {
			_ = json.NewDecoder(resp.Body).Decode(&echo)
			resp.Body.Close()
		}
		return resp, echo
	}
	legacyClient := e.client()
	for i := range 3 { // the burst
		resp, echo := get(legacyClient)
		if resp.StatusCode != 200 {
			t.Fatalf("legacy request %d: %d", i, resp.StatusCode)
		}
		if got := resp.Header.Get("Deprecation"); got != "@1767225600" {
			t.Errorf("Deprecation = %q", got)
		}
		if got := resp.Header.Get("Sunset"); got != "Fri, 01 Jan 2027 00:00:00 GMT" {
			t.Errorf("Sunset = %q", got)
		}
		if got := resp.Header.Get("Link"); !strings.Contains(got, `<https://docs.example.com/partners/mtls>; rel="deprecation"`) {
			t.Errorf("Link = %q", got)
		}
		if echo.Header.Get("X-Legacy") != "yes" {
			t.Errorf("the legacy policies did not run: %v", echo.Header)
		}
	}
	ev := e.waitEvent(audit.OfType("legacy_request"))
	if ev.Route != "partner" || ev.Status != 200 || ev.Fields["path"] != "/partner/orders" || ev.Fields["user_agent"] == "" {
		t.Errorf("legacy audit event lacks detail: %+v", ev)
	}
	// The clock is frozen: no token comes back, so the fourth is refused.
	resp, _ := get(legacyClient)
	if p := readProblem(t, resp); resp.StatusCode != http.StatusTooManyRequests || p.Reason != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth legacy request: %d %s", resp.StatusCode, p.Reason)
	}

	// The modern path: a client certificate, no limit, no deprecation.
	modern := e.clientWith(e.clientCert, false)
	for range 5 {
		resp, echo := get(modern)
		if resp.StatusCode != 200 || resp.Header.Get("Deprecation") != "" || echo.Header.Get("X-Legacy") != "" {
			t.Fatalf("modern request: %d %v", resp.StatusCode, resp.Header)
		}
	}

	// After the sunset: 410 with the migration link.
	later := time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)
	e.clock.Store(&later)
	resp, _ = get(e.client())
	if p := readProblem(t, resp); resp.StatusCode != http.StatusGone || p.Reason != "legacy_sunset" || resp.Header.Get("Link") == "" {
		t.Fatalf("after sunset: %d %s", resp.StatusCode, p.Reason)
	}

	_, _, admin := e.g.Addrs()
	mresp, err := e.client().Get("https://" + admin.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`warden_route_variant_requests_total{consumer="-",route="partner",variant="legacy"} 5`,
		`warden_route_variant_requests_total{consumer="-",route="partner",variant="modern"} 5`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
