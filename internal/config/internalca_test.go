package config

import (
	"strings"
	"testing"
	"time"
)

// internalCAConfig is base with its certificate entry replaced by entry
// (items of tls.certificates, indented by four spaces) and, with ca, the
// ca block of testDir's internal CA (constrained to example.com).
func internalCAConfig(entry string, withCA bool) string {
	const first = "tls:\n  certificates:\n    - cert_file: certs/server.pem\n      key_file: certs/server-key.pem\n"
	y := "tls:\n  certificates:\n" + entry + strings.TrimPrefix(base, first)
	if withCA {
		y += "ca:\n  dir: ca\n  publish_url: http://gw.example.com/.well-known/warden/pki\n"
	}
	return y
}

func TestInternalCACertificateConfig(t *testing.T) {
	dir := testDir(t)
	c, _, err := parseIn(t, dir, internalCAConfig("    - internal_ca:\n        names: [api.example.com, \"*.svc.example.com\"]\n", true))
	if err != nil {
		t.Fatal(err)
	}
	ic := c.TLS.Certificates[0].InternalCA
	if ic == nil || ic.KeyType != "ecdsa-p256" || ic.Lifetime != 90*24*time.Hour || len(ic.Names) != 2 {
		t.Fatalf("internal_ca entry and its defaults: %+v", ic)
	}
	if _, _, err := parseIn(t, dir, internalCAConfig("    - internal_ca:\n        names: [api.example.com]\n        key_type: rsa-3072\n        lifetime: 720h\n"+
		"    - cert_file: certs/server.pem\n      key_file: certs/server-key.pem\n", true)); err != nil {
		t.Fatalf("an internal_ca entry next to a file one: %v", err)
	}
}

// TestInternalCACertificateErrors: each bad internal_ca entry is refused
// at validate time, with its position and reason.
func TestInternalCACertificateErrors(t *testing.T) {
	dir := testDir(t)
	tests := []struct {
		name   string
		entry  string
		withCA bool
		want   []string
	}{
		{"no ca block", "    - internal_ca:\n        names: [api.example.com]\n", false,
			[]string{"warden.yaml:4:9: tls.certificates[0].internal_ca: internal_ca needs the ca block"}},
		{"no names", "    - internal_ca:\n        names: []\n", true,
			[]string{"warden.yaml:4:16: tls.certificates[0].internal_ca.names: at least one DNS name or IP address is required"}},
		{"names missing", "    - internal_ca:\n        key_type: ed25519\n", true,
			[]string{"tls.certificates[0].internal_ca.names: at least one"}},
		{"name outside the CA's constraints", "    - internal_ca:\n        names: [api.example.com, api.evil.test]\n", true,
			[]string{"warden.yaml:4:34: tls.certificates[0].internal_ca.names[1]: name dns:api.evil.test refused: outside the CA's permitted DNS domains"}},
		{"an IP from a CA constrained to DNS names", "    - internal_ca:\n        names: [127.0.0.1]\n", true,
			[]string{"tls.certificates[0].internal_ca.names[0]: name ip:127.0.0.1 refused"}},
		{"bad DNS syntax", "    - internal_ca:\n        names: [bad_name.example.com]\n", true,
			[]string{"tls.certificates[0].internal_ca.names[0]: name dns:bad_name.example.com refused: character '_' not allowed"}},
		{"duplicate name", "    - internal_ca:\n        names: [api.example.com, API.example.com]\n", true,
			[]string{"tls.certificates[0].internal_ca.names[1]: \"API.example.com\" is listed twice"}},
		{"files and internal_ca in one entry", "    - cert_file: certs/server.pem\n      key_file: certs/server-key.pem\n      internal_ca:\n        names: [api.example.com]\n", true,
			[]string{"warden.yaml:3:7: tls.certificates[0]: cert_file/key_file and internal_ca are exclusive: set exactly one certificate source"}},
		{"a key file and internal_ca", "    - key_file: certs/server-key.pem\n      internal_ca:\n        names: [api.example.com]\n", true,
			[]string{"tls.certificates[0]: cert_file/key_file and internal_ca are exclusive"}},
		{"no source", "    - internal_ca: null\n", true,
			[]string{"tls.certificates[0]: no certificate source: set cert_file and key_file, internal_ca or acme"}},
		{"unknown key type", "    - internal_ca:\n        names: [api.example.com]\n        key_type: rsa-1024\n", true,
			[]string{"warden.yaml:5:19: tls.certificates[0].internal_ca.key_type: key type \"rsa-1024\" is not one of ecdsa-p256, ed25519, rsa-3072"}},
		{"lifetime too short", "    - internal_ca:\n        names: [api.example.com]\n        lifetime: 10m\n", true,
			[]string{"warden.yaml:5:19: tls.certificates[0].internal_ca.lifetime: must be from 1h0m0s to 9528h0m0s"}},
		{"lifetime too long", "    - internal_ca:\n        names: [api.example.com]\n        lifetime: 9600h\n", true,
			[]string{"tls.certificates[0].internal_ca.lifetime: must be from"}},
		{"unknown key", "    - internal_ca:\n        names: [api.example.com]\n        acme: {}\n", true,
			[]string{`tls.certificates[0].internal_ca.acme: unknown key "acme"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseIn(t, dir, internalCAConfig(tt.entry, tt.withCA))
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

// TestAdminMayNotTrustTheInternalCA: the internal CA certifies any client
// with an enrollment token, so an admin bundle holding its root or its
// intermediate is refused; a separate operator CA is accepted.
func TestAdminMayNotTrustTheInternalCA(t *testing.T) {
	dir := testDir(t)
	for _, f := range []string{"ca/root.pem", "ca/intermediate.pem"} {
		y := "server:\n  admin:\n    address: 127.0.0.1:9443\n    client_ca_files: [certs/internal-ca.pem, " + f + "]\n" +
			internalCAConfig("    - cert_file: certs/server.pem\n      key_file: certs/server-key.pem\n", true)
		_, _, err := parseIn(t, dir, y)
		if err == nil || !strings.Contains(err.Error(), "server.admin.client_ca_files[1]: "+f+" holds the internal CA's certificate") {
			t.Fatalf("%s in the admin bundle: %v", f, err)
		}
	}
	y := "server:\n  admin:\n    address: 127.0.0.1:9443\n    client_ca_files: [certs/internal-ca.pem]\n" +
		internalCAConfig("    - cert_file: certs/server.pem\n      key_file: certs/server-key.pem\n", true)
	if _, _, err := parseIn(t, dir, y); err != nil {
		t.Fatalf("a separate operator CA: %v", err)
	}
}
