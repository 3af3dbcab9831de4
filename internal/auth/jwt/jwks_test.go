package jwt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/jwt"
)

// TestFactoryIsPure: building the policy fetches nothing; the first
// request does.
func TestFactoryIsPure(t *testing.T) {
	w := newWorld(t, nil)
	if n := w.ks.hits.Load(); n != 0 {
		t.Fatalf("building the policy fetched the key set %d times", n)
	}
	expect(t, w.do(mint(t, w.keys.rs256(), w.claims(), nil)), "")
	if n := w.ks.hits.Load(); n != 1 {
		t.Fatalf("%d fetches after the first request, want 1", n)
	}
}

// TestUnknownKIDRefetch: a rotated-in key is found by one refetch; a flood
// of unknown kids costs at most one fetch per UnknownKIDInterval.
func TestUnknownKIDRefetch(t *testing.T) {
	w := newWorld(t, nil)
	expect(t, w.do(mint(t, w.keys.rs256(), w.claims(), nil)), "") // fetch 1
	rotated, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w.ks.set(jwksOf(t, jose.JSONWebKey{Key: w.keys.rsa.Public(), KeyID: "rsa-1"}, jose.JSONWebKey{Key: rotated.Public(), KeyID: "ec-2"}))
	next := signer{"ES256", "ec-2", rotated}

	// Within the interval of fetch 1: no refetch, unknown kid.
	expect(t, w.do(mint(t, next, w.claims(), nil)), jwt.ReasonUnknownKID)
	if n := w.ks.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (rate limit)", n)
	}
	w.clock.Advance(jwt.UnknownKIDInterval)
	expect(t, w.do(mint(t, next, w.claims(), nil)), "") // fetch 2 finds it
	if n := w.ks.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	flood := func() {
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				rec := w.do(mint(t, signer{"ES256", "kid-" + strconv.Itoa(i), rotated}, w.claims(), nil))
				if reasonOf(t, rec) != jwt.ReasonUnknownKID {
					t.Errorf("flood: %d %s", rec.Code, rec.Body)
				}
			})
		}
		wg.Wait()
	}
	flood()
	if n := w.ks.hits.Load(); n != 2 {
		t.Fatalf("a flood right after a fetch made %d fetches, want none more", n-2)
	}
	w.clock.Advance(jwt.UnknownKIDInterval)
	flood()
	if n := w.ks.hits.Load(); n != 3 {
		t.Fatalf("a flood after the interval made %d fetches, want exactly 1", n-2)
	}
	// The old key still works throughout.
	expect(t, w.do(mint(t, w.keys.rs256(), w.claims(), nil)), "")
}

// TestJWKSDown: with the endpoint failing, the last good set stays in use,
// fetches back off, and each failure is audited; before any set was
// fetched, requests fail closed with 503.
func TestJWKSDown(t *testing.T) {
	w := newWorld(t, nil)
	expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	w.ks.down.Store(true)

	// Past the refresh interval: a background refresh fails, the token is
	// still accepted with the last good set.
	w.clock.Advance(jwt.DefaultJWKSRefresh + time.Second)
	for range 20 {
		expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.sink.Wait(ctx, func(e audit.Event) bool { return e.Type == jwt.EventJWKSFetchFailed }); err != nil {
		t.Fatal("no jwks_fetch_failed event")
	}
	waitHits(t, w, 2)
	// Backoff: requests within a second of the failure do not fetch again.
	for range 20 {
		expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	}
	jwt.WaitIdle(w.policy)
	if n := w.ks.hits.Load(); n != 2 {
		t.Errorf("%d fetches while backing off, want 2", n)
	}
	// After the backoff, one more attempt, then twice the wait.
	w.clock.Advance(time.Second)
	expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	waitHits(t, w, 3)
	w.clock.Advance(time.Second) // backoff is now 2s
	expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	jwt.WaitIdle(w.policy)
	if n := w.ks.hits.Load(); n != 3 {
		t.Errorf("%d fetches, want 3: the second backoff should be 2s", n)
	}
	// Back up: the next due refresh succeeds and new keys are learnt.
	w.ks.down.Store(false)
	w.clock.Advance(time.Second)
	expect(t, w.do(mint(t, w.keys.es256(), w.claims(), nil)), "")
	waitHits(t, w, 4)

	// A fresh policy whose endpoint has never answered: 503, fail closed.
	cold := newWorld(t, nil)
	cold.ks.down.Store(true)
	rec := cold.do(mint(t, cold.keys.es256(), cold.claims(), nil))
	expect(t, rec, jwt.ReasonJWKSUnavailable)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	expect(t, cold.do(mint(t, cold.keys.es256(), cold.claims(), nil)), jwt.ReasonJWKSUnavailable)
	if n := cold.ks.hits.Load(); n != 1 {
		t.Errorf("%d fetches within the first backoff, want 1", n)
	}
}

// waitHits waits for the background fetch a request started, then checks
// it reached the key server.
func waitHits(t *testing.T, w *world, n int64) {
	t.Helper()
	jwt.WaitIdle(w.policy)
	if got := w.ks.hits.Load(); got != n {
		t.Fatalf("%d fetches, want %d", got, n)
	}
}
