package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/apikey"
	"github.com/wardengw/warden/internal/store"
)

// TestAPIKeysThroughTheGateway: a key issued into the gateway's store by
// another process (as `warden keys create` does) works at once, names its
// consumer, never reaches the upstream, and stops working on the next
// request after it is revoked.
func TestAPIKeysThroughTheGateway(t *testing.T) {
	e := newEnv(t, map[string]any{"APIKey": true})
	cli, err := store.Open(filepath.Join(e.dir, "warden.db")) // a second handle, like the CLI's
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	if err := cli.CreateConsumer(ctx, store.Consumer{Name: "acme", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	key, rec, err := apikey.Issue(ctx, cli, "acme", time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	do := func(k string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.httpsURL("/keyed/x"), nil)
		req.Header.Set("X-API-Key", k)
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do(key.Reveal())
	var echo upstreamEcho
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || echo.Header.Get("X-Api-Key") != "" {
		t.Fatalf("valid key: %d; upstream saw the key: %q", resp.StatusCode, echo.Header.Get("X-Api-Key"))
	}
	typo := "x" // a different last character: the checksum no longer matches
	if strings.HasSuffix(key.Reveal(), typo) {
		typo = "y"
	}
	if p := readProblem(t, do(key.Reveal()[:len(key.Reveal())-1]+typo)); p.Reason != "key_malformed" {
		t.Fatalf("typo'd key: %s", p.Reason)
	}
	if err := cli.RevokeKey(ctx, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, do(key.Reveal())); p.Reason != "key_revoked" {
		t.Fatalf("revoked key: %s", p.Reason)
	}
}
