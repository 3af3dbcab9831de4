package jwt_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wardengw/warden/internal/auth/jwt"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/policy"
)

// build decodes a policy block the way the config does and builds it
// through the registry.
func build(t *testing.T, typ, block string) (policy.Policy, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	spec := config.PolicySpec{Type: typ, Node: doc.Content[0]}
	return policy.Build(spec.Type, spec.Decode)
}

// TestConfig: the factories accept good blocks and refuse bad ones, every
// problem in one error, without touching the network.
func TestConfig(t *testing.T) {
	k := keys(t)
	ks := newKeyServer(t, k.jwks(t))
	jwksFile := writeFile(t, string(k.jwks(t)))
	secret := writeFile(t, "s3cret")
	iss := "issuers:\n  - issuer: https://idp.example\n    audiences: [api]\n    jwks_file: " + jwksFile + "\n"
	tests := []struct {
		name, typ, block string
		want             []string
	}{
		{"minimal", jwt.Type, iss, nil},
		{"everything", jwt.Type, `
issuers:
  - issuer: https://idp.example
    jwks_url: ` + ks.url + `
    ca_file: ` + ks.caFile + `
    jwks_refresh: 10m
    audiences: [api, https://api.example]
    algorithms: [RS256, PS256, ES256, EdDSA, ES384]
    required_claims: [jti, client_id]
    leeway: 2m
  - issuer: https://other.example
    jwks_file: ` + jwksFile + `
    audiences: [api]
scopes: [orders:read]
claims: {tenant: [acme, globex]}
require_exp: false
max_token_bytes: 16384
require_certificate_binding: true
consumer_claim: client_id
forward: {claims_header: X-Token-Claims, claims: [sub, tenant], strip_authorization: true}
cache: {max_entries: 500}
`, nil},
		{"alg none", jwt.Type, iss + "    algorithms: [none]\n", []string{`algorithms[0]: "none": unsigned tokens can never be allowed`}},
		{"alg None", jwt.Type, iss + "    algorithms: [None]\n", []string{"unsigned tokens"}},
		{"HS256", jwt.Type, iss + "    algorithms: [RS256, HS256]\n", []string{`algorithms[1]: "HS256": HMAC cannot be used`}},
		{"hs512", jwt.Type, iss + "    algorithms: [hs512]\n", []string{"HMAC cannot be used"}},
		{"unknown alg", jwt.Type, iss + "    algorithms: [rs256]\n", []string{`"rs256" is not one of`}},
		{"empty algorithms", jwt.Type, iss + "    algorithms: []\n", []string{"algorithms: an empty list"}},
		{"leeway too long", jwt.Type, iss + "    leeway: 5m\n", []string{"leeway: 5m0s is more than 2m0s"}},
		{"no issuers", jwt.Type, "scopes: [a]\n", []string{"issuers: required"}},
		{"no audiences", jwt.Type, "issuers: [{issuer: x, jwks_file: " + jwksFile + "}]\n", []string{"audiences: required"}},
		{"no keys", jwt.Type, "issuers: [{issuer: x, audiences: [a]}]\n", []string{"jwks_url or jwks_file: required"}},
		{"both key sources", jwt.Type, "issuers: [{issuer: x, audiences: [a], jwks_url: 'https://a/', jwks_file: " + jwksFile + "}]\n", []string{"give one, not both"}},
		{"http jwks_url", jwt.Type, "issuers: [{issuer: x, audiences: [a], jwks_url: 'http://idp.example/jwks'}]\n", []string{"is not an https URL"}},
		{"missing jwks_file", jwt.Type, "issuers: [{issuer: x, audiences: [a], jwks_file: /nonexistent}]\n", []string{"jwks_file:"}},
		{"HMAC-only key set", jwt.Type, "issuers: [{issuer: x, audiences: [a], jwks_file: " + writeFile(t, `{"keys":[{"kty":"oct","k":"AAAA"}]}`) + "}]\n", []string{"no usable public signature key"}},
		{"duplicate issuer", jwt.Type, iss + "  - issuer: https://idp.example\n    audiences: [a]\n    jwks_file: " + jwksFile + "\n", []string{"configured twice"}},
		{"unknown key", jwt.Type, iss + "scope: [a]\n", []string{`unknown key "scope"`}},
		{"bad scope", jwt.Type, iss + "scopes: ['a b']\n", []string{"scopes[0]"}},
		{"reserved claims header", jwt.Type, iss + "forward: {claims_header: Authorization}\n", []string{"forward.claims_header"}},
		{"claims without header", jwt.Type, iss + "forward: {claims: [sub]}\n", []string{"forward.claims: only used with forward.claims_header"}},
		{"token size", jwt.Type, iss + "max_token_bytes: 10\n", []string{"max_token_bytes: 10"}},
		{"every error at once", jwt.Type, "issuers: [{issuer: '', algorithms: [none]}]\nmax_token_bytes: 1\ncache: {max_entries: -1}\n",
			[]string{"issuer: required", "audiences: required", "unsigned", "max_token_bytes", "cache.max_entries"}},

		{"introspection", jwt.TypeIntrospection, "endpoint: https://as.example/introspect\nclient_id: gw\nclient_secret_file: " + secret +
			"\ncache_max: 100\ncache_ttl: 30s\nscopes: [a]\nforward: {claims_header: X-Token-Claims}\n", nil},
		{"introspection http", jwt.TypeIntrospection, "endpoint: http://as.example/introspect\nclient_id: gw\nclient_secret_file: " + secret + "\n", []string{"not an https URL"}},
		{"introspection missing", jwt.TypeIntrospection, "cache_ttl: 1h\n", []string{"endpoint: required", "client_id: required", "client_secret_file: required", "cache_ttl"}},
		{"introspection empty secret", jwt.TypeIntrospection, "endpoint: https://as.example/i\nclient_id: gw\nclient_secret_file: " + writeFile(t, " \n") + "\n", []string{"is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := build(t, tt.typ, tt.block)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				if pol == nil {
					t.Fatal("nil policy")
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
	if n := ks.hits.Load(); n != 0 {
		t.Errorf("building policies fetched a key set %d times", n)
	}
}

// TestAccessors: what the gateway reads from a built policy; String never
// shows the secret.
func TestAccessors(t *testing.T) {
	jwksFile := writeFile(t, string(keys(t).jwks(t)))
	p, err := jwt.New(jwt.Config{Issuers: []jwt.Issuer{{Issuer: "x", Audiences: []string{"a"}, JWKSFile: policy.FilePath(jwksFile)}},
		Forward: jwt.Forward{ClaimsHeader: "x-token-claims"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ClaimsHeader() != "X-Token-Claims" || len(p.Files()) != 1 || p.Files()[0] != jwksFile || !strings.Contains(p.String(), "require_exp true") {
		t.Errorf("ClaimsHeader %q Files %v String %q", p.ClaimsHeader(), p.Files(), p)
	}
	ip, err := jwt.NewIntrospection(jwt.IntrospectionConfig{Endpoint: "https://as.example/i", ClientID: "gw", ClientSecretFile: policy.FilePath(writeFile(t, "hunter2"))})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ip.String(), "hunter2") {
		t.Error("String shows the client secret")
	}
}
