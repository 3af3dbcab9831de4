package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/apikey"
	"github.com/wardengw/warden/internal/store"
)

// runKeys runs `warden keys args…` in process, at the given time.
func runKeys(t *testing.T, now time.Time, args ...string) (stdout, stderr string, err error) {
	return runCommand(keysCommand(at(now)), args...)
}

// authenticate checks a printed key against the store, as the gateway
// would at time now; it returns the refusal reason or "".
func authenticate(t *testing.T, path, key string, now time.Time) string {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = apikey.Authenticate(context.Background(), s, key, now)
	if e, ok := err.(*apikey.Error); ok {
		return e.Reason
	} else if err != nil {
		t.Fatal(err)
	}
	return ""
}

func TestKeysCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "warden.db")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	out, errOut, err := runKeys(t, now, "create", "--store", db, "--consumer", "billing", "--metadata", "team=payments")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	k, err := apikey.Parse(key)
	if err != nil {
		t.Fatalf("stdout is not just the key: %q", out)
	}
	for _, want := range []string{`Created consumer "billing"`, k.LookupID(), "shown once", "expires 2030-04-01"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if r := authenticate(t, db, key, now); r != "" {
		t.Fatalf("the printed key is refused: %s", r)
	}
	if r := authenticate(t, db, key, now.Add(90*24*time.Hour)); r != apikey.ReasonExpired {
		t.Fatalf("after 90 days: %q", r)
	}
	// The file holds no key.
	for _, name := range []string{db, db + "-wal"} {
		if b, _ := os.ReadFile(name); bytes.Contains(b, []byte(key[17:60])) {
			t.Fatalf("%s holds the key", name)
		}
	}

	// A second key for the same consumer; never expires.
	out, errOut, err = runKeys(t, now, "create", "--store", db, "--consumer", "billing", "--expires", "never")
	if err != nil || strings.Contains(errOut, "Created consumer") || !strings.Contains(errOut, "never expires") {
		t.Fatalf("second key: %v\n%s", err, errOut)
	}
	key2 := strings.TrimSpace(out)

	// Rotate the first: the new key is printed once, the old one works
	// for the overlap.
	out, errOut, err = runKeys(t, now, "rotate", k.LookupID(), "--store", db, "--overlap", "2h")
	if err != nil {
		t.Fatalf("rotate: %v %s", err, errOut)
	}
	next := strings.TrimSpace(out)
	nk, err := apikey.Parse(next)
	if err != nil || !strings.Contains(errOut, "shown once") || !strings.Contains(errOut, "expires 2030-04-01") {
		t.Fatalf("rotate output: %q %s", out, errOut)
	}
	later := now.Add(time.Hour)
	if authenticate(t, db, key, later) != "" || authenticate(t, db, next, later) != "" {
		t.Fatal("both keys must work during the overlap")
	}
	if r := authenticate(t, db, key, now.Add(2*time.Hour)); r != apikey.ReasonExpired {
		t.Fatalf("old key after the overlap: %q", r)
	}

	// Revoke, by lookup id or by a pasted key.
	k2, _ := apikey.Parse(key2)
	out, _, err = runKeys(t, now, "revoke", key2, "--store", db)
	if err != nil || !strings.Contains(out, "Revoked API key "+k2.LookupID()) {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if r := authenticate(t, db, key2, now); r != apikey.ReasonRevoked {
		t.Fatalf("revoked key: %q", r)
	}

	out, _, err = runKeys(t, later, "list", "--store", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", k.LookupID(), nk.LookupID(), k2.LookupID(), "revoked", "replaced by " + nk.LookupID(), "active"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, key[17:60]) || strings.Contains(out, next[17:60]) {
		t.Fatal("list shows a key")
	}
	out, _, _ = runKeys(t, later, "list", "--store", db, "--consumer", "nobody")
	if strings.Count(out, "\n") != 1 {
		t.Errorf("filtered list:\n%s", out)
	}
}

func TestKeysCommandErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "warden.db")
	now := time.Now()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--store", db}, `"consumer" not set`},
		{[]string{"create", "--store", db, "--consumer", "a b"}, "--consumer"},
		{[]string{"create", "--store", db, "--consumer", "a", "--expires", "-1d"}, "--expires"},
		{[]string{"create", "--store", db, "--consumer", "a", "--metadata", "novalue"}, "--metadata"},
		{[]string{"list", "--store", filepath.Join(dir, "none.db")}, "no record store"},
		{[]string{"revoke", "nope", "--store", filepath.Join(dir, "none.db")}, "no record store"},
	} {
		out, _, err := runKeys(t, now, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error with %q, got %v", tc.args, tc.want, err)
		}
		if out != "" {
			t.Errorf("%v: printed %q", tc.args, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("a failed list created a store")
	}
	if _, _, err := runKeys(t, now, "create", "--store", db, "--consumer", "a", "--metadata", "x=1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runKeys(t, now, "create", "--store", db, "--consumer", "a", "--metadata", "x=2"); err == nil {
		t.Error("other metadata for an existing consumer accepted")
	}
	for _, args := range [][]string{{"revoke", "nope"}, {"rotate", "nope"}} {
		if _, _, err := runKeys(t, now, append(args, "--store", db)...); err == nil || !strings.Contains(err.Error(), "no API key with id nope") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// The built binary.
func TestKeysBinary(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "warden.db")
	out, errOut, code := runWarden(t, "keys", "create", "--store", db, "--consumer", "billing")
	if code != 0 || !strings.Contains(errOut, "shown once") {
		t.Fatalf("create: %d %s", code, errOut)
	}
	k, err := apikey.Parse(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	if r := authenticate(t, db, strings.TrimSpace(out), time.Now()); r != "" {
		t.Fatalf("refused: %s", r)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi, err)
	}
	out, _, code = runWarden(t, "keys", "list", "--store", db)
	if code != 0 || !strings.Contains(out, k.LookupID()) {
		t.Fatalf("list: %d %s", code, out)
	}
	if _, errOut, code := runWarden(t, "keys", "revoke", "nope", "--store", db); code == 0 || !strings.Contains(errOut, "no API key") {
		t.Fatalf("revoke unknown: %d %s", code, errOut)
	}
}
