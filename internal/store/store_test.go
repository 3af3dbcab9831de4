package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/store"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

func open(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func key(id, consumer string) store.APIKey {
	return store.APIKey{ID: id, Consumer: consumer, Hash: []byte{1, 2, 3, byte(len(id))}, CreatedAt: t0}
}

func TestOpenCreatesPrivateFileAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub dir?#%", "warden.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	ctx := context.Background()
	if err := s.CreateConsumer(ctx, store.Consumer{Name: "a", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(name), fi.Mode().Perm())
		}
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	// A second Open of the same file finds the schema in place.
	s2 := open(t, path)
	if _, err := s2.Consumer(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if store.SchemaVersion() < 1 {
		t.Fatal("no migrations embedded")
	}
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := store.Open(path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	store.ForceSchemaVersion(t, path, store.SchemaVersion()+1)
	if _, err := store.Open(path); err == nil || !strings.Contains(err.Error(), "newer than this warden") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestConsumers(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "warden.db"))
	ctx := context.Background()
	c := store.Consumer{Name: "billing", Metadata: map[string]string{"team": "payments"}, CreatedAt: t0}
	if err := s.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConsumer(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := s.Consumer(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "billing" || got.Metadata["team"] != "payments" || !got.CreatedAt.Equal(store.Round(t0)) || got.Disabled {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.Consumer(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.SetConsumerDisabled(ctx, "billing", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Consumer(ctx, "billing"); !got.Disabled {
		t.Fatal("not disabled")
	}
	if err := s.SetConsumerDisabled(ctx, "nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestKeys(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "warden.db"))
	ctx := context.Background()
	if err := s.CreateKey(ctx, key("k1", "billing")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key for a missing consumer: %v", err)
	}
	if err := s.CreateConsumer(ctx, store.Consumer{Name: "billing", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	k1 := key("k1", "billing")
	k1.ExpiresAt = t0.Add(90 * 24 * time.Hour)
	if err := s.CreateKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, k1); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	got, err := s.KeyByLookupID(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "k1" || got.Consumer != "billing" || string(got.Hash) != string(k1.Hash) ||
		!got.CreatedAt.Equal(store.Round(t0)) || !got.ExpiresAt.Equal(store.Round(k1.ExpiresAt)) ||
		!got.RevokedAt.IsZero() || got.ReplacedBy != "" || got.ConsumerDisabled {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.KeyByLookupID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}

	// Rotation: one transaction, same consumer, the old one marked.
	k2 := key("k2", "")
	until := t0.Add(24 * time.Hour)
	if succ, err := s.RotateKey(ctx, "k1", k2, until); err != nil {
		t.Fatal(err)
	} else if succ.Consumer != "billing" || succ.ID != "k2" {
		t.Fatalf("successor %+v", succ)
	}
	old, _ := s.KeyByLookupID(ctx, "k1")
	if old.ReplacedBy != "k2" || !old.OverlapUntil.Equal(store.Round(until)) {
		t.Fatalf("old after rotation: %+v", old)
	}
	if n, _ := s.KeyByLookupID(ctx, "k2"); n.Consumer != "billing" {
		t.Fatalf("successor: %+v", n)
	}
	if _, err := s.RotateKey(ctx, "k1", key("k3", ""), until); !errors.Is(err, store.ErrRotated) {
		t.Fatalf("second rotation: %v", err)
	}
	if _, err := s.KeyByLookupID(ctx, "k3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused rotation left its successor behind")
	}
	if _, err := s.RotateKey(ctx, "k2", key("k1", ""), until); !errors.Is(err, store.ErrExists) {
		t.Fatalf("successor id taken: %v", err)
	}
	if k, _ := s.KeyByLookupID(ctx, "k2"); k.ReplacedBy != "" {
		t.Fatal("a failed rotation marked the old key")
	}
	if _, err := s.RotateKey(ctx, "nope", key("k4", ""), until); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := s.RotateKey(ctx, "k2", key("k4", "other"), until); err == nil {
		t.Fatal("rotation to another consumer accepted")
	}

	// Revocation keeps the first time; revoked keys cannot be rotated.
	if err := s.RevokeKey(ctx, "k2", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, "k2", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.KeyByLookupID(ctx, "k2"); !k.RevokedAt.Equal(store.Round(t0.Add(time.Hour))) {
		t.Fatalf("revoked_at %v", k.RevokedAt)
	}
	if err := s.RevokeKey(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := s.RotateKey(ctx, "k2", key("k5", ""), until); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("rotate revoked: %v", err)
	}

	if err := s.CreateConsumer(ctx, store.Consumer{Name: "other", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, key("o1", "other")); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListKeys(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("list all: %d %v", len(all), err)
	}
	mine, err := s.ListKeys(ctx, "billing")
	if err != nil || len(mine) != 2 || mine[0].ID != "k1" || mine[1].ID != "k2" {
		t.Fatalf("list billing: %+v %v", mine, err)
	}
	if err := s.SetConsumerDisabled(ctx, "other", true); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.KeyByLookupID(ctx, "o1"); !k.ConsumerDisabled {
		t.Fatal("ConsumerDisabled not reported")
	}
}

func TestBadKeysRefused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "warden.db"))
	ctx := context.Background()
	_ = s.CreateConsumer(ctx, store.Consumer{Name: "c", CreatedAt: t0})
	for name, k := range map[string]store.APIKey{
		"no id":       {Consumer: "c", Hash: []byte{1}, CreatedAt: t0},
		"no hash":     {ID: "x", Consumer: "c", CreatedAt: t0},
		"no time":     {ID: "x", Consumer: "c", Hash: []byte{1}},
		"pre-revoked": {ID: "x", Consumer: "c", Hash: []byte{1}, CreatedAt: t0, RevokedAt: t0},
	} {
		if err := s.CreateKey(ctx, k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Two Stores on one file, as the gateway and `warden keys` are: each sees
// the other's committed writes at once, and concurrent writers queue on
// SQLite's lock instead of failing.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	gw, cli := open(t, path), open(t, path)
	ctx := context.Background()
	if err := cli.CreateConsumer(ctx, store.Consumer{Name: "c", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := cli.CreateKey(ctx, key("k1", "c")); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.KeyByLookupID(ctx, "k1"); err != nil {
		t.Fatalf("gateway does not see the CLI's key: %v", err)
	}
	if err := cli.RevokeKey(ctx, "k1", t0); err != nil {
		t.Fatal(err)
	}
	if k, _ := gw.KeyByLookupID(ctx, "k1"); k.RevokedAt.IsZero() {
		t.Fatal("gateway does not see the revocation")
	}

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w, s := range []*store.Store{gw, cli, gw, cli} {
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.CreateKey(ctx, key(id, "c")); err != nil {
					errs <- err
				}
				if _, err := s.KeyByLookupID(ctx, id); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := gw.ListKeys(ctx, "c")
	if err != nil || len(all) != 101 {
		t.Fatalf("want 101 keys, got %d (%v)", len(all), err)
	}
}
