package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/store"
)

func TestEnrollTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	s, s2 := open(t, path), open(t, path)
	ctx := context.Background()
	tok := store.EnrollToken{Hash: "aa", Consumer: "svc-a", CommonName: "svc-a",
		Names: []string{"dns:a.example.com", "uri:spiffe://example.com/a"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s2.CreateEnrollToken(ctx, tok); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := s2.EnrollTokenByHash(ctx, "aa")
	if err != nil || got.Consumer != "svc-a" || got.CommonName != "svc-a" || len(got.Names) != 2 ||
		got.Names[1] != "uri:spiffe://example.com/a" || !got.ExpiresAt.Equal(store.Round(tok.ExpiresAt)) || !got.UsedAt.IsZero() {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.UseEnrollToken(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	// Concurrent uses from two stores: exactly one wins, the others are
	// told it was used.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			rec, err := st.UseEnrollToken(ctx, "aa", t0.Add(time.Minute))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				if rec.Consumer != "svc-a" || len(rec.Names) != 2 || !rec.UsedAt.Equal(store.Round(t0.Add(time.Minute))) {
					t.Errorf("%+v", rec)
				}
			case !errors.Is(err, store.ErrTokenUsed):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d uses succeeded", wins)
	}
	// Expiry: at expires_at exactly the token is already expired.
	exp := tok
	exp.Hash = "bb"
	if err := s.CreateEnrollToken(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseEnrollToken(ctx, "bb", t0.Add(time.Hour)); !errors.Is(err, store.ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	if rec, _ := s.EnrollTokenByHash(ctx, "bb"); !rec.UsedAt.IsZero() {
		t.Fatal("an expired token was marked used")
	}
	if n, err := s.DeleteExpiredEnrollTokens(ctx, t0.Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
	for _, bad := range []store.EnrollToken{{}, {Hash: "x", Consumer: "c"},
		{Hash: "x", Consumer: "c", CreatedAt: t0, ExpiresAt: t0, Names: []string{"dns:a\nuri:b"}},
		{Hash: "x", Consumer: "c", CreatedAt: t0, ExpiresAt: t0, UsedAt: t0}} {
		if err := s.CreateEnrollToken(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
