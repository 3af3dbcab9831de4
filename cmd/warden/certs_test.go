package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/expiry"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// runCerts runs `warden certs args…` in process at time now and returns
// its output and exit status.
func runCerts(t *testing.T, now time.Time, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := certsCommand(func() time.Time { return now })
	var o, e bytes.Buffer
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		t.Fatalf("certs: %v", err)
	}
	return o.String(), e.String(), code
}

// certsConfig writes a config with a server certificate expiring in 60
// days and an upstream CA expiring in 100.
func certsConfig(t *testing.T, now time.Time) (cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	days := func(n int) time.Time { return now.Add(time.Duration(n) * 24 * time.Hour) }
	ca := pkitest.NewRootCA(t, "Certs CA", pkitest.Options{NotAfter: days(100)})
	ca.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}, NotAfter: days(60)}).WriteFiles(t, dir, "server")
	ca.WriteCert(t, dir, "up-ca.pem")
	cfg := `server:
  https:
    address: 127.0.0.1:8443
tls:
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
upstreams:
  - name: up
    url: https://up.internal
    ca_file: up-ca.pem
    pins: [` + fmt.Sprintf("%q", pki.SPKIPin(ca.Cert)) + `]
routes:
  - name: all
    upstream: up
`
	cfgPath = filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

func TestCertsCommand(t *testing.T) {
	now := time.Now()
	cfg := certsConfig(t, now)

	out, errOut, code := runCerts(t, now, "-c", cfg)
	if code != certsExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("warden certs:\n%s", out)
	for _, want := range []string{"USE", "STATE", "server", "upstream_ca", "CN=api.example.com", "CN=Certs CA", "ok (pinned)", "59d23h", "up-ca.pem",
		"pins:", "upstream up: a single pin and no backup pin"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Fifty days on, the server certificate is within the 30-day window.
	out, _, code = runCerts(t, now.Add(50*24*time.Hour), "-c", cfg)
	if code != certsExitWarning || !strings.Contains(out, "expiring") {
		t.Fatalf("50 days on: exit %d\n%s", code, out)
	}
	// A narrower window: fine again.
	if _, _, code = runCerts(t, now.Add(50*24*time.Hour), "-c", cfg, "--warn", "7d"); code != certsExitOK {
		t.Fatalf("--warn 7d: exit %d", code)
	}

	// Seventy days on it has expired: critical, in JSON too.
	out, _, code = runCerts(t, now.Add(70*24*time.Hour), "-c", cfg, "--json")
	if code != certsExitCritical {
		t.Fatalf("70 days on: exit %d", code)
	}
	var rep expiry.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	states := map[string]string{}
	for _, e := range rep.Entries {
		states[e.Use] = e.State
	}
	if states["server"] != expiry.StateExpired || states["upstream_ca"] != expiry.StateExpiring || len(rep.Findings) != 1 {
		t.Fatalf("--json report: %s", out)
	}

	// A config that does not load, and a bad window: unknown.
	if _, errOut, code = runCerts(t, now, "-c", filepath.Join(t.TempDir(), "missing.yaml")); code != certsExitUnknown || !strings.Contains(errOut, "read config") {
		t.Fatalf("missing config: exit %d %s", code, errOut)
	}
	if _, _, code = runCerts(t, now, "-c", cfg, "--warn", "soon"); code != certsExitUnknown {
		t.Fatalf("--warn soon: exit %d", code)
	}
}
