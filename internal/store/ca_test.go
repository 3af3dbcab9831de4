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

func TestIssuedCerts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	s, s2 := open(t, path), open(t, path)
	ctx := context.Background()
	c := store.IssuedCert{Serial: "abc1", Issuer: "ff", Subject: "CN=a", SANs: []string{"dns:a.example", "uri:spiffe://example/a"},
		Profile: "client", NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), IssuedAt: t0, PEM: []byte("PEM")}
	if err := s.RecordIssued(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s2.RecordIssued(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := s2.IssuedCert(ctx, "abc1")
	if err != nil || got.Subject != "CN=a" || len(got.SANs) != 2 || got.SANs[1] != "uri:spiffe://example/a" ||
		!got.NotAfter.Equal(store.Round(c.NotAfter)) || string(got.PEM) != "PEM" || got.Revoked() {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.IssuedCert(ctx, "00"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	c2 := c
	c2.Serial, c2.Issuer, c2.IssuedAt, c2.SANs = "abc2", "ee", t0.Add(time.Second), nil
	if err := s.RecordIssued(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListIssued(ctx, "", 0); err != nil || len(l) != 2 || l[0].Serial != "abc2" {
		t.Fatalf("%+v %v", l, err)
	}
	if l, err := s.ListIssued(ctx, "ff", 0); err != nil || len(l) != 1 || l[0].Serial != "abc1" {
		t.Fatalf("%+v %v", l, err)
	}
	// Concurrent revocations: exactly one is recorded.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 6 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			err := st.RevokeIssued(ctx, "abc1", 1, t0.Add(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, store.ErrAlreadyRevoked) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d revocations recorded", wins)
	}
	if err := s.RevokeIssued(ctx, "nope", 1, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	r, err := s.RevokedList(ctx, "ff")
	if err != nil || len(r) != 1 || r[0].Reason != 1 || !r[0].RevokedAt.Equal(store.Round(t0.Add(time.Hour))) {
		t.Fatalf("%+v %v", r, err)
	}
	if r, _ := s.RevokedList(ctx, "ee"); len(r) != 0 {
		t.Fatalf("%+v", r)
	}
	for _, bad := range []store.IssuedCert{{}, {Serial: "x", Issuer: "i", Profile: "p", PEM: []byte("x")},
		func() store.IssuedCert { b := c; b.Serial = "new"; b.SANs = []string{"dns:a\nuri:b"}; return b }()} {
		if err := s.RecordIssued(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestNextCRLNumber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	s := open(t, path)
	ctx := context.Background()
	for want := int64(1); want <= 3; want++ {
		if n, err := s.NextCRLNumber(ctx, "ff"); err != nil || n != want {
			t.Fatalf("%d %v, want %d", n, err, want)
		}
	}
	if n, _ := s.NextCRLNumber(ctx, "ee"); n != 1 {
		t.Fatalf("other issuer: %d", n)
	}
	// Persisted, and shared by concurrent stores: all distinct.
	s.Close()
	s, s2 := open(t, path), open(t, path)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]bool{}
	for i := range 8 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			n, err := st.NextCRLNumber(ctx, "ff")
			mu.Lock()
			defer mu.Unlock()
			if err != nil || n < 4 || seen[n] {
				t.Errorf("%d %v", n, err)
			}
			seen[n] = true
		})
	}
	wg.Wait()
}

// TestRevocationGeneration: every recorded revocation, by any store handle
// on the file (another process, as `warden ca revoke` is), changes its
// issuer's generation; a refused revocation and other issuers' do not.
func TestRevocationGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	gw, cli := open(t, path), open(t, path)
	ctx := context.Background()
	for _, c := range []store.IssuedCert{
		{Serial: "a1", Issuer: "ff", Subject: "CN=a", Profile: "client", NotBefore: t0, NotAfter: t0.Add(time.Hour), IssuedAt: t0, PEM: []byte("P")},
		{Serial: "a2", Issuer: "ff", Subject: "CN=b", Profile: "client", NotBefore: t0, NotAfter: t0.Add(time.Hour), IssuedAt: t0, PEM: []byte("P")},
		{Serial: "b1", Issuer: "ee", Subject: "CN=c", Profile: "client", NotBefore: t0, NotAfter: t0.Add(time.Hour), IssuedAt: t0, PEM: []byte("P")},
	} {
		if err := gw.RecordIssued(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	gen := func(issuer string) int64 {
		t.Helper()
		g, err := gw.RevocationGeneration(ctx, issuer)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	steps := []struct {
		name         string
		serial       string
		wantErr      error
		wantFF, want int64 // generations of ff and ee after the step
	}{
		{"before any revocation", "", nil, 0, 0},
		{"revoke a1 from the other handle", "a1", nil, 1, 0},
		{"revoke a1 again: refused, unchanged", "a1", store.ErrAlreadyRevoked, 1, 0},
		{"unknown serial: unchanged", "zz", store.ErrNotFound, 1, 0},
		{"revoke a2", "a2", nil, 2, 0},
		{"another issuer's revocation", "b1", nil, 2, 1},
	}
	for _, s := range steps {
		if s.serial != "" {
			if err := cli.RevokeIssued(ctx, s.serial, 1, t0); !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: %v, want %v", s.name, err, s.wantErr)
			}
		}
		if ff, ee := gen("ff"), gen("ee"); ff != s.wantFF || ee != s.want {
			t.Fatalf("%s: generations ff=%d ee=%d, want %d %d", s.name, ff, ee, s.wantFF, s.want)
		}
	}
}

// BenchmarkRevocationGeneration: the per-request cost of the internal CA's
// change signal.
func BenchmarkRevocationGeneration(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "warden.db"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.RevocationGeneration(ctx, "ff"); err != nil {
			b.Fatal(err)
		}
	}
}
