package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/detect/ct"
	"github.com/wardengw/warden/internal/detect/ct/cttest"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// runCT runs `warden ct args…` in process against logs trusted by log.
func runCT(t *testing.T, log *cttest.Log, args ...string) (events []audit.Event, stderr string, code int) {
	t.Helper()
	stdout, stderr, err := runCommand(ctCommand(log.Client(), time.Now), args...)
	code = exitCode(t, err)
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout is not JSON lines: %q", sc.Text())
		}
		events = append(events, ev)
	}
	if err != nil {
		stderr += err.Error()
	}
	return events, stderr, code
}

func TestCTWatchOnce(t *testing.T) {
	dir := t.TempDir()
	log := cttest.New(t)
	keyFile := filepath.Join(dir, "log.pem")
	if err := os.WriteFile(keyFile, log.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := pkitest.NewRootCA(t, "CT CLI Root", pkitest.Options{})
	mine := ca.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}})
	state := filepath.Join(dir, "state.json")
	auditFile := filepath.Join(dir, "audit.jsonl")
	args := []string{"watch", "--once", "--log", log.URL(), "--log-key", keyFile, "--log-name", "local",
		"--domain", "example.com", "--known-pin", pki.SPKIPin(mine.Cert).String(), "--state", state, "--audit", auditFile}

	if evs, errOut, code := runCT(t, log, args...); code != 0 || len(evs) != 0 {
		t.Fatalf("first run: %d %v\n%s", code, evs, errOut)
	}
	log.AddCert(mine.Cert)
	log.AddCert(ca.Issue(t, pkitest.Options{DNSNames: []string{"elsewhere.test"}}).Cert)
	evs, errOut, code := runCT(t, log, args...)
	if code != 0 || len(evs) != 1 || evs[0].Type != ct.EventKnownCertificate {
		t.Fatalf("known key: %d %+v\n%s", code, evs, errOut)
	}
	rogue := ca.Issue(t, pkitest.Options{DNSNames: []string{"www.example.com"}})
	log.AddCert(rogue.Cert)
	evs, errOut, code = runCT(t, log, args...)
	if code != 2 || len(evs) != 1 || evs[0].Type != ct.EventUnknownKey || evs[0].Fields["pin"] != pki.SPKIPin(rogue.Cert).String() {
		t.Fatalf("rogue: %d %+v\n%s", code, evs, errOut)
	}
	if b, err := os.ReadFile(auditFile); err != nil || !strings.Contains(string(b), ct.EventUnknownKey) {
		t.Fatalf("audit file: %v\n%s", err, b)
	}
	// Already reported: quiet now.
	if evs, _, code := runCT(t, log, args...); code != 0 || len(evs) != 0 {
		t.Fatalf("rerun: %d %+v", code, evs)
	}
}

func TestCTWatchConfigFile(t *testing.T) {
	dir := t.TempDir()
	log := cttest.New(t)
	if err := os.WriteFile(filepath.Join(dir, "log.pem"), log.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := pkitest.NewRootCA(t, "CT CLI Root", pkitest.Options{})
	mine := ca.Issue(t, pkitest.Options{DNSNames: []string{"example.com"}})
	// The known certificate's file also holds its key, as a cert_file may.
	if err := os.WriteFile(filepath.Join(dir, "server.pem"), append(mine.CertPEM(), mine.KeyPEM(t)...), 0o600); err != nil {
		t.Fatal(err)
	}
	log.AddCert(mine.Cert)
	log.AddCert(ca.Issue(t, pkitest.Options{DNSNames: []string{"example.com"}}).Cert)
	cfgFile := filepath.Join(dir, "ct.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
logs:
  - url: `+log.URL()+`
    key_file: log.pem
    name: local
domains: [example.com]
known_cert_files: [server.pem]
poll_interval: 1m
batch_size: 10
state_file: state.json
backfill: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, errOut, code := runCT(t, log, "watch", "--config", cfgFile, "--once")
	if code != 2 || len(evs) != 2 || evs[0].Type != ct.EventKnownCertificate || evs[1].Type != ct.EventUnknownKey {
		t.Fatalf("%d %+v\n%s", code, evs, errOut)
	}
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file next to the config: %v", err)
	}
}

func TestCTWatchErrors(t *testing.T) {
	log := cttest.New(t)
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"nothing":      {nil, []string{"no logs", "no domains"}},
		"unpaired key": {[]string{"--log", log.URL(), "--domain", "example.com"}, []string{"one --log-key"}},
		"bad pin":      {[]string{"--known-pin", "sha1/abc", "--domain", "example.com"}, []string{`must start with "sha256/"`}},
		"bad interval": {[]string{"--interval", "soon"}, []string{"poll interval"}},
		"unknown yaml": {[]string{"--config", ctWriteTemp(t, dir, "bad.yaml", "logz: []\n")}, []string{"logz"}},
		// A known-certificate file may hold its key, never another block.
		"csr in a known-cert file": {[]string{"--domain", "example.com", "--known-cert", ctWriteTemp(t, dir, "odd.pem",
			"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")}, []string{"CERTIFICATE REQUEST"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := runCT(t, log, append([]string{"watch", "--once", "--state", filepath.Join(dir, "s.json")}, tc.args...)...)
			if code != 1 {
				t.Fatalf("exit %d", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func ctWriteTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
