package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/apikey"
	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/store"
)

// issueKey creates a consumer and a key in the env's store through a second
// handle, as the CLI does.
func issueKey(t *testing.T, e *env, consumer string) (*store.Store, apikey.Key) {
	t.Helper()
	cli, err := store.Open(filepath.Join(e.dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx := context.Background()
	if err := cli.CreateConsumer(ctx, store.Consumer{Name: consumer, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	key, _, err := apikey.Issue(ctx, cli, consumer, time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return cli, key
}

func (e *env) send(t *testing.T, method, path string, h map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, e.httpsURL(path), strings.NewReader("{}"))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestBruteForceLockOut: a client that keeps failing authentication is
// locked out, and then even the right key is refused without being
// checked (no oracle).
func TestBruteForceLockOut(t *testing.T) {
	e := newEnv(t, map[string]any{"APIKey": true})
	_, key := issueKey(t, e, "acme")
	now := time.Now()
	e.clock.Store(&now) // frozen: the progressive delay is armed but the window never slides
	wrong := "wdn_" + strings.Repeat("A", 12) + "_" + strings.Repeat("B", 43) + "_AAAAAA"
	for i := range 10 {
		resp := e.send(t, "GET", "/keyed/x", map[string]string{"X-API-Key": wrong})
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	resp := e.send(t, "GET", "/keyed/x", map[string]string{"X-API-Key": key.Reveal()})
	if p := readProblem(t, resp); resp.StatusCode != http.StatusTooManyRequests || p.Reason != "locked_out" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the right key while locked out: %d %s", resp.StatusCode, p.Reason)
	}
	e.waitEvent(audit.OfType("lockout_engaged"))
	later := now.Add(2 * time.Minute)
	e.clock.Store(&later)
	resp = e.send(t, "GET", "/keyed/x", map[string]string{"X-API-Key": key.Reveal()})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the lock-out: %d", resp.StatusCode)
	}
}

// TestStepUpTOTP: a critical method needs a TOTP code on top of the API
// key; a code works once; the identity reaching the upstream lists both
// methods.
func TestStepUpTOTP(t *testing.T) {
	e := newEnv(t, map[string]any{"APIKey": true})
	cli, key := issueKey(t, e, "acme")
	secret, err := stepup.Enroll(context.Background(), cli, "acme", time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"X-API-Key": key.Reveal()}
	resp := e.send(t, "GET", "/critical/read", auth) // not a critical method
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	resp = e.send(t, "POST", "/critical/transfer", auth)
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "stepup_required" {
		t.Fatalf("POST without a code: %d %s", resp.StatusCode, p.Reason)
	}
	code := stepup.Code(secret, stepup.Step(time.Now()))
	withCode := map[string]string{"X-API-Key": key.Reveal(), "Warden-OTP": code}
	resp = e.send(t, "POST", "/critical/transfer", withCode)
	var echo upstreamEcho
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || echo.Header.Get("Warden-Otp") != "" {
		t.Fatalf("POST with a code: %d; code forwarded: %q", resp.StatusCode, echo.Header.Get("Warden-Otp"))
	}
	if id := echo.Header.Get("X-Warden-Identity"); id != `{"consumer":"acme","methods":["api_key","totp"]}` {
		t.Errorf("identity header %q", id)
	}
	resp = e.send(t, "POST", "/critical/transfer", withCode)
	if p := readProblem(t, resp); p.Reason != "otp_replayed" {
		t.Fatalf("replayed code: %s", p.Reason)
	}
}
