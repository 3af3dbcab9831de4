package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/store"
)

// runStepup runs `warden stepup args…` in process, at the given time.
func runStepup(t *testing.T, now time.Time, args ...string) (stdout, stderr string, err error) {
	return runCommand(stepupCommand(at(now)), args...)
}

func TestStepupCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "warden.db")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()

	out, errOut, err := runStepup(t, now, "enroll", "--store", db, "--consumer", "billing")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(errOut, "shown once") {
		t.Fatalf("enroll output: %q %q", out, errOut)
	}
	u, err := url.Parse(lines[0])
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("secret") != lines[1] || u.Query().Get("issuer") != "Warden" {
		t.Fatalf("URI %q: %v", lines[0], err)
	}
	s, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.TOTPEnrollment(ctx, "billing")
	if err != nil || stepup.EncodeSecret(e.Secret) != lines[1] || len(e.Secret) != stepup.SecretSize {
		t.Fatalf("stored enrollment: %v", err)
	}
	if _, _, err := runStepup(t, now, "enroll", "--store", db, "--consumer", "billing"); err == nil || !strings.Contains(err.Error(), "already enrolled") {
		t.Fatalf("re-enroll: %v", err)
	}
	out, _, err = runStepup(t, now, "enroll", "--store", db, "--consumer", "billing", "--force")
	if err != nil || strings.Contains(out, lines[1]) {
		t.Fatalf("--force: %v %q", err, out)
	}

	// Approvals, as the gateway records them.
	mk := func(id string) {
		if err := s.CreateApproval(ctx, store.Approval{ID: id, Consumer: "billing", Route: "payments", Method: "POST",
			Target: "/transfer", Digest: []byte{1}, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	a1, a2 := "apr_"+strings.Repeat("1", 32), "apr_"+strings.Repeat("2", 32)
	mk(a1)
	mk(a2)
	out, _, err = runStepup(t, now, "pending", "--store", db)
	if err != nil || !strings.Contains(out, a1) || !strings.Contains(out, a2) || !strings.Contains(out, "POST /transfer") {
		t.Fatalf("pending: %v\n%s", err, out)
	}
	out, _, err = runStepup(t, now, "approve", a1, "--store", db)
	if err != nil || !strings.Contains(out, "Approved "+a1) {
		t.Fatalf("approve: %v %s", err, out)
	}
	if a, _ := s.Approval(ctx, a1); a.State != store.ApprovalApproved || !strings.HasPrefix(a.DecidedBy, "cli:") {
		t.Fatalf("stored: %+v", a)
	}
	if _, _, err := runStepup(t, now, "deny", a1, "--store", db); err == nil || !strings.Contains(err.Error(), "already approved") {
		t.Fatalf("deny approved: %v", err)
	}
	if _, _, err := runStepup(t, now.Add(5*time.Minute), "deny", a2, "--store", db); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("deny expired: %v", err)
	}
	out, _, _ = runStepup(t, now, "pending", "--store", db)
	if strings.Contains(out, a1) || !strings.Contains(out, a2) {
		t.Fatalf("pending after approve:\n%s", out)
	}
	out, _, _ = runStepup(t, now, "pending", "--all", "--store", db)
	if !strings.Contains(out, a1) || !strings.Contains(out, "approved") {
		t.Fatalf("pending --all:\n%s", out)
	}
	out, _, err = runStepup(t, now, "deny", a2, "--store", db)
	if err != nil || !strings.Contains(out, "Denied "+a2) {
		t.Fatalf("deny: %v %s", err, out)
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enroll", "--store", db}, `"consumer" not set`},
		{[]string{"enroll", "--store", db, "--consumer", "a b"}, "--consumer"},
		{[]string{"approve", "nope", "--store", db}, "not an approval id"},
		{[]string{"approve", "apr_" + strings.Repeat("3", 32), "--store", db}, "no approval with id"},
		{[]string{"pending", "--store", filepath.Join(dir, "none.db")}, "no record store"},
	} {
		out, _, err := runStepup(t, now, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
			t.Errorf("%v: want an error with %q, got %v (%q)", tc.args, tc.want, err, out)
		}
	}
}
