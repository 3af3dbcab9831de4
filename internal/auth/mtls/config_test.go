package mtls_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
)

// build decodes a policy block the way the config does and builds it
// through the registry.
func build(t *testing.T, block string) (policy.Policy, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	spec := config.PolicySpec{Type: mtls.Type, Node: doc.Content[0]}
	return policy.Build(spec.Type, spec.Decode)
}

// TestConfig: the factory accepts good blocks and refuses bad ones,
// every problem in one error.
func TestConfig(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	weakRoot := pkitest.NewRootCA(t, "Weak Root", pkitest.Options{KeyType: pkitest.RSA1024})
	weak := weakRoot.WriteCert(t, dir, "weak.pem")
	keyFile := filepath.Join(dir, "with-key.pem")
	leaf := p.client(t, pkitest.Options{})
	if err := os.WriteFile(keyFile, append(p.root.PEM(), leaf.KeyPEM(t)...), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := "ca_files: [" + p.bundle + "]\n"
	tests := []struct {
		name  string
		block string
		want  []string // substrings of the error; none means valid
	}{
		{"minimal", ca, nil},
		{"everything", ca + `
type: mtls
max_chain_depth: 3
min_rsa_bits: 3072
revocation: soft_fail
max_connection_age: 1h
consumers:
  - name: billing
    match: {spiffe_id: "spiffe://acme.example/billing/**"}
  - name: ops.team
    match: {subject: {cn: "ops-*", o: "Acme", ou: "SRE"}, dns: "*.ops.acme.example"}
allow:
  - consumer: billing
  - email: "*@acme.example"
  - uri: "https://acme.example/client"
  - spki_sha256: "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
  - serial: "0a:1B"
forward:
  client_cert_headers: false
  identity_header: X-Client-Identity
`, nil},
		{"unknown key", ca + "allow_list: []\n", []string{`unknown key "allow_list"`}},
		{"empty allow", ca + "allow: []\n", []string{"allow: an empty list would deny everything"}},
		{"no ca_files", "revocation: off\n", []string{"ca_files: required"}},
		{"missing file", "ca_files: [/nonexistent/ca.pem]\n", []string{"ca_files[0]: read certificates"}},
		{"weak anchor", "ca_files: [" + weak + "]\n", []string{"RSA key of 1024 bits"}},
		{"private key in bundle", "ca_files: [" + keyFile + "]\n", []string{`unexpected PEM block "PRIVATE KEY"`}},
		{"bad revocation", ca + "revocation: maybe\n", []string{`"maybe" is not one of hard_fail, soft_fail, off`}},
		{"weak min_rsa_bits", ca + "min_rsa_bits: 1024\n", []string{"min_rsa_bits: 1024 is not between 2048"}},
		{"depth", ca + "max_chain_depth: 40\n", []string{"max_chain_depth: 40"}},
		{"empty match", ca + "allow: [{}]\n", []string{"allow[0]: a match needs at least one key"}},
		{"consumer in consumers", ca + "consumers: [{name: a, match: {consumer: b}}]\n", []string{"consumers[0].match.consumer: a consumer can only be matched in allow rules"}},
		{"bad consumer name", ca + "consumers: [{name: 'a b', match: {dns: a.example}}]\n", []string{`consumers[0].name: "a b"`}},
		{"wildcard trust domain", ca + "allow: [{spiffe_id: 'spiffe://*.acme.example/x'}]\n", []string{"allow[0].spiffe_id", "no wildcards"}},
		{"** not last", ca + "allow: [{spiffe_id: 'spiffe://acme.example/**/x'}]\n", []string{`"**" may only be the last segment`}},
		{"partial segment glob", ca + "allow: [{spiffe_id: 'spiffe://acme.example/svc-*'}]\n", []string{"allow[0].spiffe_id", "whole"}},
		{"not spiffe", ca + "allow: [{spiffe_id: 'https://acme.example/x'}]\n", []string{"does not start with spiffe://"}},
		{"dns wildcard inside", ca + "allow: [{dns: 'api.*.acme.example'}]\n", []string{"allow[0].dns"}},
		{"email wildcard domain", ca + "allow: [{email: 'a@*.acme.example'}]\n", []string{"allow[0].email"}},
		{"bad spki", ca + "allow: [{spki_sha256: 'abc'}]\n", []string{"allow[0].spki_sha256"}},
		{"bad serial", ca + "allow: [{serial: 'xyz'}]\n", []string{"allow[0].serial"}},
		{"empty subject", ca + "allow: [{subject: {}}]\n", []string{"allow[0].subject: give at least one of cn, o, ou"}},
		{"reserved identity header", ca + "forward: {identity_header: Authorization}\n", []string{"forward.identity_header"}},
		{"every error at once", "revocation: maybe\nallow: []\nforward: {identity_header: 'a b'}\n",
			[]string{"revocation", "allow", "identity_header", "ca_files: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := build(t, tt.block)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				if _, ok := pol.(*mtls.Policy); !ok {
					t.Fatalf("built %T", pol)
				}
				return
			}
			if err == nil {
				t.Fatal("build succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestPolicyAccessors: what the gateway reads from a built policy.
func TestPolicyAccessors(t *testing.T) {
	p := newPKI(t)
	pol, err := mtls.New(mtls.Config{CAFiles: []policy.FilePath{policy.FilePath(p.bundle)}, Forward: mtls.Forward{IdentityHeader: "x-client-identity"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := pol.IdentityHeader(); got != "X-Client-Identity" {
		t.Errorf("IdentityHeader = %q", got)
	}
	if got := pol.Files(); len(got) != 1 || got[0] != p.bundle {
		t.Errorf("Files = %v", got)
	}
	if !strings.Contains(pol.String(), "revocation hard_fail") {
		t.Errorf("String = %q: the default revocation mode should be hard_fail", pol)
	}
}
