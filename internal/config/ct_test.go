package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeLogKey writes a CT log's public key (PEM) into dir.
func writeLogKey(t *testing.T, dir, name string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCTBlockDefaults(t *testing.T) {
	dir := testDir(t)
	writeLogKey(t, dir, "log.pem")
	c, _, err := parseIn(t, dir, base+"ct:\n  logs:\n    - url: https://ct.example.net/2026h1\n      key_file: log.pem\n  domains: [api.example.com]\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.CT.PollInterval != 5*time.Minute || c.CT.BatchSize != 256 || c.CT.StateFile != "ct-state.json" || c.CT.Backfill {
		t.Errorf("defaults: %+v", c.CT)
	}
	off, _, err := parseIn(t, dir, base)
	if err != nil || off.CT != nil {
		t.Fatalf("ct must be off by default: %+v %v", off.CT, err)
	}
}

// TestCTBlockErrors: each bad ct block is refused at the key's position.
func TestCTBlockErrors(t *testing.T) {
	dir := testDir(t)
	writeLogKey(t, dir, "log.pem")
	if err := os.WriteFile(filepath.Join(dir, "notakey.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := "ct:\n  logs:\n    - url: https://ct.example.net/2026h1\n      key_file: log.pem\n  domains: [api.example.com]\n"
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{"http log", "https://ct.example.net", "http://ct.example.net",
			[]string{"warden.yaml:13:12: ct.logs[0].url:", "want https://"}},
		{"key is not a public key", "key_file: log.pem", "key_file: notakey.pem",
			[]string{"warden.yaml:14:17: ct.logs[0].key_file:", "PUBLIC KEY"}},
		{"missing key file", "key_file: log.pem", "key_file: nope.pem",
			[]string{"warden.yaml:14:17: ct.logs[0].key_file:", "nope.pem"}},
		{"wildcard domain", "[api.example.com]", "[\"*.example.com\"]",
			[]string{"warden.yaml:15:13: ct.domains[0]:", "subdomains are watched"}},
		{"no logs", "  logs:\n    - url: https://ct.example.net/2026h1\n      key_file: log.pem\n", "  logs: []\n",
			[]string{"warden.yaml:12:9: ct.logs: at least one log"}},
		{"bad pin", "  domains:", "  known_pins: [\"sha1/abc\"]\n  domains:",
			[]string{"warden.yaml:15:16: ct.known_pins[0]:"}},
		{"interval too short", "  domains:", "  poll_interval: 5s\n  domains:",
			[]string{"warden.yaml:15:18: ct.poll_interval: must be at least 1m"}},
		{"batch too large", "  domains:", "  batch_size: 5000\n  domains:",
			[]string{"warden.yaml:15:15: ct.batch_size: must be from 1 to 1024"}},
		{"state folder missing", "  domains:", "  state_file: no/such/dir/state.json\n  domains:",
			[]string{"warden.yaml:15:15: ct.state_file:"}},
		{"unknown key", "  domains:", "  domain: [x.example]\n  domains:",
			[]string{`warden.yaml:15:3: ct.domain: unknown key "domain" (did you mean "domains"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := base + strings.Replace(good, tt.from, tt.to, 1)
			if y == base+good {
				t.Fatal("replacement did not apply")
			}
			_, _, err := parseIn(t, dir, y)
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}
