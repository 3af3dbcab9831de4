package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/expiry"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/store"
)

// runCerts runs `warden certs args…` in process at time now and returns
// its output and exit status.
func runCerts(t *testing.T, now time.Time, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	stdout, stderr, err := runCommand(certsCommand(at(now)), args...)
	return stdout, stderr, exitCode(t, err)
}

// writeYAML writes a config as warden.yaml in dir and returns its path.
func writeYAML(t *testing.T, dir, cfg string) string {
	t.Helper()
	p := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
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
	return writeYAML(t, dir, cfg)
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

// managedCertsConfig writes a config whose server certificates are all
// managed by the gateway: one internal_ca entry (its CA made with ca.Init)
// and one acme entry with two names. Nothing is obtained yet.
func managedCertsConfig(t *testing.T) (cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(filepath.Join(dir, "ca"), ca.InitOptions{Name: "Certs Internal"}); err != nil {
		t.Fatal(err)
	}
	cfg := `server:
  https:
    address: 127.0.0.1:8443
  http:
    address: 127.0.0.1:8080
ca:
  dir: ca
  publish_url: https://gw.example.com/.well-known/warden/pki
acme:
  directory_url: https://acme.example/dir
  email: ops@example.org
  agree_terms: true
tls:
  certificates:
    - internal_ca:
        names: [api.example.com, 127.0.0.1]
    - acme:
        names: [www.example.com, app.example.com]
upstreams:
  - name: up
    url: https://up.internal
routes:
  - name: all
    upstream: up
`
	return writeYAML(t, dir, cfg)
}

// persistInternalCACert has the internal CA issue a server certificate for
// the config's internal_ca entry (recorded in the store, as the gateway
// has it done) and persists key and chain where the gateway keeps them.
func persistInternalCACert(t *testing.T, cfgPath string, now time.Time) *x509.Certificate {
	t.Helper()
	cfg, _, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	records, err := store.Open(cfg.PathOf(cfg.Store.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer records.Close()
	authority, err := ca.Load(cfg.PathOf(cfg.CA.Dir), nil, ca.Config{Records: records, PublishURL: cfg.CA.PublishURL, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "api.example.com"}, DNSNames: []string{"api.example.com"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, key)
	if err != nil {
		t.Fatal(err)
	}
	spec := *cfg.TLS.Certificates[0].InternalCA
	leaf, err := authority.Issue(context.Background(), ca.IssueRequest{CSR: csr, Profile: ca.ProfileServer, Lifetime: spec.Lifetime})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	data = append(data, pkitest.CertPEM(leaf, authority.Intermediate)...)
	path := cfg.InternalCACertPath(authority.IssuerID, spec)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// storeACMECert writes a certificate for name into the acme storage as
// certmagic stores it (certmagic.StorageKeys under the issuer's key).
func storeACMECert(t *testing.T, cfgPath, name string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	cfg, _, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pkitest.NewRootCA(t, "ACME Test CA", pkitest.Options{}).Issue(t, pkitest.Options{DNSNames: []string{name}, NotAfter: notAfter})
	fs := &certmagic.FileStorage{Path: cfg.PathOf(cfg.ACME.Storage)}
	issuerKey := (&certmagic.ACMEIssuer{CA: cfg.ACME.DirectoryURL}).IssuerKey()
	ctx := context.Background()
	if err := fs.Store(ctx, certmagic.StorageKeys.SiteCert(issuerKey, name), leaf.CertPEM()); err != nil {
		t.Fatal(err)
	}
	if err := fs.Store(ctx, certmagic.StorageKeys.SitePrivateKey(issuerKey, name), leaf.KeyPEM(t)); err != nil {
		t.Fatal(err)
	}
	return leaf.Cert
}

// TestCertsManaged: `warden certs` lists the certificates the gateway
// obtains itself, as persisted (internal_ca in managed-certs/, acme in
// certmagic's storage), with their state; one not obtained yet is listed
// as not_obtained and is no error; an unreadable persisted file is.
func TestCertsManaged(t *testing.T) {
	now := time.Now()
	cfg := managedCertsConfig(t)

	// Nothing obtained yet: listed, exit 0, and nothing is created.
	out, errOut, code := runCerts(t, now, "-c", cfg)
	if code != certsExitOK {
		t.Fatalf("nothing obtained: exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"internal_ca api.example.com,127.0.0.1", "acme www.example.com", "acme app.example.com", "not_obtained"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "managed-certs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("warden certs created the managed-certs folder: %v", err)
	}

	// The internal CA's certificate as persisted, and one ACME certificate
	// expiring in 20 days: exit 1.
	ica := persistInternalCACert(t, cfg, now)
	www := storeACMECert(t, cfg, "www.example.com", now.Add(20*24*time.Hour))
	out, errOut, code = runCerts(t, now, "-c", cfg, "--json")
	if code != certsExitWarning {
		t.Fatalf("an acme certificate expiring: exit %d: %s\n%s", code, errOut, out)
	}
	var rep expiry.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	got := map[string]expiry.Entry{}
	for _, e := range rep.Entries {
		got[e.Source+" "+e.Use+" "+e.Name] = e
	}
	want := map[string]struct{ state, serial string }{
		"internal_ca server api.example.com,127.0.0.1":              {expiry.StateOK, ica.SerialNumber.Text(16)},
		"internal_ca server_intermediate api.example.com,127.0.0.1": {expiry.StateOK, ""},
		"acme server www.example.com":                               {expiry.StateExpiring, www.SerialNumber.Text(16)},
		"acme server app.example.com":                               {expiry.StateNotObtained, ""},
	}
	if len(got) != len(want) {
		t.Errorf("%d entries, want %d: %s", len(got), len(want), out)
	}
	for k, w := range want {
		e, ok := got[k]
		if !ok || e.State != w.state || (w.serial != "" && e.Serial != w.serial) {
			t.Errorf("%s: %+v, want state %s serial %s", k, e, w.state, w.serial)
		}
	}

	// A hundred days on the internal CA's certificate (90 days) has
	// expired: exit 2.
	if out, _, code = runCerts(t, now.Add(100*24*time.Hour), "-c", cfg); code != certsExitCritical || !strings.Contains(out, "expired") {
		t.Fatalf("100 days on: exit %d\n%s", code, out)
	}

	// A persisted file that cannot be read: exit 3.
	for _, e := range rep.Entries {
		if e.Source == expiry.SourceInternalCA && e.Use == expiry.UseServer {
			if err := os.WriteFile(e.File, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, errOut, code = runCerts(t, now, "-c", cfg); code != certsExitUnknown || !strings.Contains(errOut, "internal_ca certificate for api.example.com") {
		t.Fatalf("a damaged persisted file: exit %d: %s", code, errOut)
	}
}
