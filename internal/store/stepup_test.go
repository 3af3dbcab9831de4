package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/store"
)

func TestTOTPEnrollment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	s, s2 := open(t, path), open(t, path)
	ctx := context.Background()
	e := store.TOTPEnrollment{Consumer: "jwt:alice", Secret: []byte("0123456789abcdefghij"), CreatedAt: t0}
	if err := s.EnrollTOTP(ctx, e, false); err != nil {
		t.Fatal(err)
	}
	if err := s.EnrollTOTP(ctx, e, false); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second enrollment: %v", err)
	}
	got, err := s2.TOTPEnrollment(ctx, "jwt:alice")
	if err != nil || string(got.Secret) != string(e.Secret) || !got.CreatedAt.Equal(store.Round(t0)) || got.LastUsedStep != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.TOTPEnrollment(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.UseTOTPStep(ctx, "jwt:alice", 100); err != nil {
		t.Fatal(err)
	}
	for _, step := range []int64{100, 99} {
		if err := s2.UseTOTPStep(ctx, "jwt:alice", step); !errors.Is(err, store.ErrReplayed) {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	if err := s.UseTOTPStep(ctx, "bob", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	// Concurrent uses of one step from two Stores: exactly one wins.
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			if err := st.UseTOTPStep(ctx, "jwt:alice", 101); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrReplayed) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d wins", wins.Load())
	}
	// Replacing resets the step; deleting removes.
	e.Secret = []byte("another-secret-20byt")
	if err := s.EnrollTOTP(ctx, e, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TOTPEnrollment(ctx, "jwt:alice"); string(got.Secret) != string(e.Secret) || got.LastUsedStep != 0 {
		t.Fatalf("replaced: %+v", got)
	}
	if err := s.DeleteTOTP(ctx, "jwt:alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTOTP(ctx, "jwt:alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	for _, bad := range []store.TOTPEnrollment{{Secret: []byte{1}, CreatedAt: t0}, {Consumer: "a", CreatedAt: t0}, {Consumer: "a", Secret: []byte{1}}} {
		if err := s.EnrollTOTP(ctx, bad, false); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestApprovals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	s, s2 := open(t, path), open(t, path)
	ctx := context.Background()
	ap := func(id string, created time.Time) store.Approval {
		return store.Approval{ID: id, Consumer: "billing", Route: "r", Method: "POST", Target: "/t?x=1", Digest: []byte{0xde, 0xad},
			Remote: "127.0.0.1:1", RequestID: "req", CreatedAt: created, ExpiresAt: created.Add(time.Minute)}
	}
	if err := s.CreateApproval(ctx, ap("a1", t0), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, ap("a1", t0), 2); !errors.Is(err, store.ErrExists) {
		t.Fatalf("dup: %v", err)
	}
	if err := s.CreateApproval(ctx, ap("a2", t0), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, ap("a3", t0), 2); !errors.Is(err, store.ErrTooManyPending) {
		t.Fatalf("limit: %v", err)
	}
	if err := s.CreateApproval(ctx, ap("a3", t0.Add(time.Minute)), 2); err != nil { // the others expired
		t.Fatal(err)
	}
	got, err := s2.Approval(ctx, "a1")
	want := ap("a1", t0)
	want.State, want.CreatedAt, want.ExpiresAt = store.ApprovalPending, store.Round(want.CreatedAt), store.Round(want.ExpiresAt)
	if err != nil || got.ID != want.ID || got.State != want.State || string(got.Digest) != string(want.Digest) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Target != want.Target || got.Remote != want.Remote {
		t.Fatalf("%+v %v", got, err)
	}
	// Pending cannot be used.
	if a, err := s.UseApproval(ctx, "a1", "billing", []byte{0xde, 0xad}, t0); !errors.Is(err, store.ErrNotUsable) || a.State != store.ApprovalPending {
		t.Fatalf("use pending: %+v %v", a, err)
	}
	if _, err := s.DecideApproval(ctx, "a1", true, "ops", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if a, err := s.DecideApproval(ctx, "a1", false, "ops", t0); !errors.Is(err, store.ErrNotPending) || a.State != store.ApprovalApproved {
		t.Fatalf("redecide: %v", err)
	}
	if _, err := s.DecideApproval(ctx, "a2", true, "ops", t0.Add(time.Minute)); !errors.Is(err, store.ErrApprovalExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.DecideApproval(ctx, "nope", true, "ops", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	// Wrong consumer or digest: not usable; then once, concurrently, from two Stores.
	if _, err := s.UseApproval(ctx, "a1", "other", []byte{0xde, 0xad}, t0); !errors.Is(err, store.ErrNotUsable) {
		t.Fatal(err)
	}
	if _, err := s.UseApproval(ctx, "a1", "billing", []byte{0xbe, 0xef}, t0); !errors.Is(err, store.ErrNotUsable) {
		t.Fatal(err)
	}
	if _, err := s.UseApproval(ctx, "a1", "billing", []byte{0xde, 0xad}, t0.Add(time.Minute)); !errors.Is(err, store.ErrNotUsable) {
		t.Fatal("used after expiry")
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			a, err := st.UseApproval(ctx, "a1", "billing", []byte{0xde, 0xad}, t0.Add(2*time.Second))
			if err == nil {
				wins.Add(1)
				if a.State != store.ApprovalUsed || a.UsedAt.IsZero() {
					t.Errorf("%+v", a)
				}
			} else if !errors.Is(err, store.ErrNotUsable) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d uses", wins.Load())
	}
	if _, err := s.UseApproval(ctx, "nope", "billing", []byte{1}, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	all, err := s.ListApprovals(ctx, "", 0)
	if err != nil || len(all) != 3 || all[0].ID != "a3" {
		t.Fatalf("list: %d %v", len(all), err)
	}
	if used, _ := s.ListApprovals(ctx, store.ApprovalUsed, 1); len(used) != 1 || used[0].ID != "a1" {
		t.Fatalf("used: %+v", used)
	}
	for _, bad := range []store.Approval{{}, {ID: "x", Consumer: "c", Digest: []byte{1}, CreatedAt: t0, ExpiresAt: t0}} {
		if err := s.CreateApproval(ctx, bad, 0); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
