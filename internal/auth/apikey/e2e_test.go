package apikey_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/apikey"
)

// End to end over real HTTP on 127.0.0.1: the policy in front of a
// handler, the store on a temp file, keys managed through a second Store
// on the same file as `warden keys` would.
func TestEndToEnd(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(inGateway(f.env, newPolicy(t, apikey.Config{}).Wrap(upstream)))
	defer srv.Close()
	cli := openStore(t, f.path)
	ctx := context.Background()

	call := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/orders?limit=5", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	k1, _, err := apikey.Issue(ctx, cli, "billing", f.clock.Now(), f.clock.Now().Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	code, body := call(k1.Reveal())
	var s seen
	_ = json.Unmarshal([]byte(body), &s)
	if code != 200 || s.Consumer != "billing" || s.Header != "" || s.Query != "limit=5" {
		t.Fatalf("issued key: %d %s", code, body)
	}
	if code, _ := call(""); code != 401 {
		t.Fatalf("no key: %d", code)
	}

	// Concurrent clients on the warm path.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if code, body := call(k1.Reveal()); code != 200 {
					t.Errorf("concurrent: %d %s", code, body)
					return
				}
			}
		})
	}
	wg.Wait()

	now := f.clock.Now()
	k2, _, err := apikey.Rotate(ctx, cli, k1.LookupID(), now, now.Add(30*24*time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c1, _ := call(k1.Reveal()); c1 != 200 {
		t.Fatalf("old key during overlap: %d", c1)
	}
	if c2, _ := call(k2.Reveal()); c2 != 200 {
		t.Fatalf("new key: %d", c2)
	}
	f.clock.Set(now.Add(time.Hour))
	if code, body := call(k1.Reveal()); code != 401 || !strings.Contains(body, apikey.ReasonExpired) {
		t.Fatalf("old key after overlap: %d %s", code, body)
	}
	if err := cli.RevokeKey(ctx, k2.LookupID(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, body := call(k2.Reveal()); code != 401 || !strings.Contains(body, apikey.ReasonRevoked) {
		t.Fatalf("revoked: %d %s", code, body)
	}
}
