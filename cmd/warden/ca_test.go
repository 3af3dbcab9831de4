package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCA runs `warden ca args…` in process, at the given time.
func runCA(t *testing.T, now time.Time, args ...string) (stdout, stderr string, err error) {
	return runCommand(caCommand(at(now)), args...)
}

func writeCSR(t *testing.T, dir, name string, tmpl *x509.CertificateRequest) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCACommand(t *testing.T) {
	tmp := t.TempDir()
	dir, db := filepath.Join(tmp, "ca"), filepath.Join(tmp, "warden.db")
	now := time.Now()
	t.Setenv("WARDEN_CA_PASS", "a long enough passphrase")

	_, errOut, err := runCA(t, now, "init", "--dir", dir, "--permit-dns", "example.com", "--permit-uri", "example.com",
		"--passphrase-env", "WARDEN_CA_PASS", "--publish-url", "https://gw.example.com:8443/.well-known/warden/pki")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "Created CA") || strings.Contains(errOut, "NOT encrypted") {
		t.Fatalf("stderr: %s", errOut)
	}
	for _, f := range []string{"root-key.pem", "intermediate-key.pem"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	if _, _, err := runCA(t, now, "init", "--dir", dir); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second init: %v", err)
	}

	csr := writeCSR(t, tmp, "client.csr", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "billing"}})
	if _, _, err := runCA(t, now, "issue", "--dir", dir, "--store", db, "--csr", csr, "--profile", "client"); err == nil ||
		!strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("without passphrase: %v", err)
	}
	passFile := filepath.Join(tmp, "pass")
	_ = os.WriteFile(passFile, []byte("a long enough passphrase\n"), 0o600)
	out := filepath.Join(tmp, "client.pem")
	_, errOut, err = runCA(t, now, "issue", "--dir", dir, "--store", db, "--csr", csr, "--profile", "client",
		"--hours", "2", "--out", out, "--passphrase-file", passFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	p, rest := pem.Decode(b)
	cert, err := x509.ParseCertificate(p.Bytes)
	if err != nil || cert.NotAfter.Sub(now) > 2*time.Hour || cert.Subject.CommonName != "billing" ||
		cert.CRLDistributionPoints[0] != "https://gw.example.com:8443/.well-known/warden/pki/crl" {
		t.Fatalf("%v %v", cert, err)
	}
	if p2, _ := pem.Decode(rest); p2 == nil {
		t.Fatal("no intermediate after the certificate")
	}
	serial := cert.SerialNumber.Text(16)
	if !strings.Contains(errOut, serial) {
		t.Fatalf("stderr lacks the serial: %s", errOut)
	}

	// Outside the constraints: refused, nothing recorded.
	bad := writeCSR(t, tmp, "bad.csr", &x509.CertificateRequest{DNSNames: []string{"www.evil.com"}})
	stdout, _, err := runCA(t, now, "issue", "--dir", dir, "--store", db, "--csr", bad, "--profile", "server", "--passphrase-env", "WARDEN_CA_PASS")
	if err == nil || !strings.Contains(err.Error(), "dns:www.evil.com") || stdout != "" {
		t.Fatalf("outside constraints: %v %q", err, stdout)
	}

	list, _, err := runCA(t, now, "list", "--dir", dir, "--store", db)
	if err != nil || strings.Count(list, "\n") != 2 || !strings.Contains(list, serial) || !strings.Contains(list, "valid") {
		t.Fatalf("list: %v\n%s", err, list)
	}
	if _, _, err := runCA(t, now, "revoke", serial, "--dir", dir, "--store", db, "--reason", "sideways"); err == nil {
		t.Fatal("bad reason accepted")
	}
	if _, _, err := runCA(t, now, "revoke", serial, "--dir", dir, "--store", db, "--reason", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCA(t, now, "revoke", serial, "--dir", dir, "--store", db, "--reason", "keyCompromise"); err == nil ||
		!strings.Contains(err.Error(), "already revoked") {
		t.Fatalf("second revoke: %v", err)
	}
	list, _, _ = runCA(t, now, "list", "--dir", dir, "--store", db)
	if !strings.Contains(list, "revoked") || !strings.Contains(list, "keyCompromise") {
		t.Fatalf("list after revoke:\n%s", list)
	}
}

// TestMissingStoreAdvice: a command that needs an existing record store
// says where that store comes from for that command; only the keys
// commands advise creating a key.
func TestMissingStoreAdvice(t *testing.T) {
	tmp := t.TempDir()
	dir, none := filepath.Join(tmp, "ca"), filepath.Join(tmp, "none.db")
	now := time.Now()
	if _, _, err := runCA(t, now, "init", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	run := map[string]func(...string) (string, string, error){
		"ca":     func(a ...string) (string, string, error) { return runCA(t, now, a...) },
		"stepup": func(a ...string) (string, string, error) { return runStepup(t, now, a...) },
		"keys":   func(a ...string) (string, string, error) { return runKeys(t, now, a...) },
	}
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"ca", []string{"list", "--all", "--store", none}, "store.path"},
		{"ca", []string{"revoke", "01", "--reason", "keyCompromise", "--dir", dir, "--store", none}, "store.path"},
		{"ca", []string{"token", "--consumer", "billing", "--cn", "billing", "--store", none}, "store.path"},
		{"stepup", []string{"pending", "--store", none}, "store.path"},
		{"keys", []string{"list", "--store", none}, "create a key first"},
	} {
		_, _, err := run[tc.cmd](tc.args...)
		if err == nil || !strings.Contains(err.Error(), "no record store") || !strings.Contains(err.Error(), tc.want) ||
			(tc.cmd != "keys" && strings.Contains(err.Error(), "create a key")) {
			t.Errorf("%s %v: %v; want the missing store and %q", tc.cmd, tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(none); err == nil {
		t.Error("a command created the missing store")
	}
}
