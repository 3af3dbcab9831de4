package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

// TestValidateCTBlock: `warden validate` refuses an invalid ct block with
// file:line:column, every error at once.
func TestValidateCTBlock(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.NewRootCA(t, "CA", pkitest.Options{})
	ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}}).WriteFiles(t, dir, "server")
	y := `tls:
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
upstreams:
  - name: api
    url: https://127.0.0.1:9
routes:
  - name: api
    upstream: api
ct:
  logs:
    - url: http://ct.example.net/2026h1
      key_file: server.pem
  domains: ["*.example.com"]
  poll_interval: 10s
`
	p := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runWarden(t, "validate", "-c", p)
	if code == 0 {
		t.Fatal("invalid ct block: exit 0")
	}
	for _, want := range []string{
		p + ":13:12: ct.logs[0].url:",
		p + ":14:17: ct.logs[0].key_file: PEM block is \"CERTIFICATE\", want PUBLIC KEY",
		p + ":15:13: ct.domains[0]:",
		p + ":16:18: ct.poll_interval: must be at least 1m",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
}
