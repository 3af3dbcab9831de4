package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/mtls"
	pkica "github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
)

// testDir writes a server certificate, a CA and an upstream CA into a temp
// folder and returns it.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := pkitest.NewRootCA(t, "Test CA", pkitest.Options{})
	ca.WriteCert(t, filepath.Join(dir, "certs"), "internal-ca.pem")
	ca.WriteCert(t, filepath.Join(dir, "certs"), "partners-ca.pem")
	ca.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}}).WriteFiles(t, filepath.Join(dir, "certs"), "server")
	ca.Issue(t, pkitest.Options{DNSNames: []string{"api.example.com"}, KeyType: pkitest.RSA2048}).WriteFiles(t, filepath.Join(dir, "certs"), "server-rsa")
	ca.Issue(t, pkitest.Options{CommonName: "gateway"}).WriteFiles(t, filepath.Join(dir, "certs"), "gateway-client")
	ca.Issue(t, pkitest.Options{DNSNames: []string{"weak.example.com"}, KeyType: pkitest.RSA1024}).WriteFiles(t, filepath.Join(dir, "certs"), "weak")
	// An internal CA constrained to example.com (for internal_ca entries).
	if err := pkica.Init(filepath.Join(dir, "ca"), pkica.InitOptions{Name: "Test Internal", PermittedDNSDomains: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

const base = `tls:
  certificates:
    - cert_file: certs/server.pem
      key_file: certs/server-key.pem
upstreams:
  - name: api
    url: https://api.internal:8443
routes:
  - name: api
    upstream: api
`

func parseIn(t *testing.T, dir, yaml string) (*Config, []Warning, error) {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestExamplesValidate(t *testing.T) {
	dir := testDir(t)
	for _, name := range []string{"minimal.yaml", "full.yaml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
			if err != nil {
				t.Fatal(err)
			}
			c, warns, err := parseIn(t, dir, string(data))
			if err != nil {
				t.Fatalf("example %s does not validate:\n%v", name, err)
			}
			if len(c.Routes) == 0 {
				t.Fatal("no routes decoded")
			}
			if name == "full.yaml" {
				// The full example has a plaintext upstream on purpose.
				if !hasWarning(warns, "plain-HTTP upstream") {
					t.Errorf("full.yaml: want a plaintext-upstream warning, got %v", warns)
				}
				if c.Server.HTTPS.MaxHeaderBytes != 32<<10 || c.Upstreams[0].DialTimeout != 2*time.Second {
					t.Errorf("values not decoded: %+v", c.Server.HTTPS)
				}
			}
		})
	}
}

func hasWarning(ws []Warning, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w.String(), sub) {
			return true
		}
	}
	return false
}

func TestDefaultsAreSafe(t *testing.T) {
	c, warns, err := parseIn(t, testDir(t), base)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("base config warns: %v", warns)
	}
	if c.TLS.Profile != "intermediate" || c.TLS.ClientAuth.Mode != "none" || !*c.TLS.HSTS.IncludeSubdomains ||
		c.TLS.HSTS.MaxAge != 2*365*24*time.Hour || c.Server.HTTPS.Address != "127.0.0.1:8443" ||
		c.Server.HTTP != nil || c.Server.Admin != nil || c.Routes[0].PathPrefix != "/" {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

// TestGCHeapFloor checks that a missing gc_heap_floor takes the default
// and that 0 (off) is kept.
func TestGCHeapFloor(t *testing.T) {
	dir := testDir(t)
	for _, tt := range []struct {
		name, yaml string
		want       ByteSize
	}{
		{"missing: default", "", DefaultGCHeapFloor},
		{"0: off", "server:\n  gc_heap_floor: 0\n", 0},
		{"set", "server:\n  gc_heap_floor: 64MiB\n", 64 << 20},
		{"the maximum", "server:\n  gc_heap_floor: 16GiB\n", MaxGCHeapFloor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := parseIn(t, dir, tt.yaml+base)
			if err != nil {
				t.Fatal(err)
			}
			if c.Server.GCHeapFloor != tt.want {
				t.Errorf("gc_heap_floor = %d, want %d", c.Server.GCHeapFloor, tt.want)
			}
		})
	}
}

// TestErrors checks that each bad config is refused with the right
// position and reason.
func TestErrors(t *testing.T) {
	dir := testDir(t)
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error, as file:line:col: path: msg
	}{
		{"unknown key with suggestion", base + "    insecure_plaintext_upstrem: true\n",
			[]string{`warden.yaml:11:5: routes[0].insecure_plaintext_upstrem: unknown key "insecure_plaintext_upstrem" (did you mean "insecure_plaintext_upstream"?)`}},
		{"unknown top-level key", "tsl:\n  profile: modern\n" + base, []string{`warden.yaml:1:1: tsl: unknown key "tsl" (did you mean "tls"?)`}},
		{"duplicate key", base + "    upstream: api\n", []string{`warden.yaml:11:5: routes[0].upstream: duplicate key "upstream"`}},
		{"ill-typed bool", base + "    insecure_plaintext_upstream: maybe\n", []string{`warden.yaml:11:34: routes[0].insecure_plaintext_upstream: expected true or false, found "maybe"`}},
		{"number where a string is expected", strings.Replace(base, "name: api\n    url", "name: 12\n    url", 1),
			[]string{`warden.yaml:6:11: upstreams[0].name: expected a string, found int "12" (quote it)`}},
		{"bad duration", "server:\n  https:\n    read_timeout: 10\n" + base, []string{`warden.yaml:3:19: server.https.read_timeout: expected a duration`}},
		{"TLS 1.0 via CBC suite", "tls:\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n" + strings.TrimPrefix(base, "tls:\n"),
			[]string{"warden.yaml:2:19: tls.cipher_suites[0]:", "CBC"}},
		{"static RSA key exchange", "tls:\n  cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]\n" + strings.TrimPrefix(base, "tls:\n"),
			[]string{"tls.cipher_suites[0]:", "forward secrecy"}},
		{"unknown profile", "tls:\n  profile: old\n" + strings.TrimPrefix(base, "tls:\n"), []string{"warden.yaml:2:12: tls.profile:"}},
		{"weak RSA key", strings.Replace(base, "certs/server.pem\n      key_file: certs/server-key.pem", "certs/weak.pem\n      key_file: certs/weak-key.pem", 1),
			[]string{"tls.certificates[0].cert_file:", "2048"}},
		{"plaintext upstream", strings.Replace(base, "https://api.internal:8443", "http://api.internal:8080", 1),
			[]string{"warden.yaml:10:15: routes[0].upstream:", "insecure_plaintext_upstream"}},
		{"bad pin", base + "", nil},
		{"missing upstream", strings.Replace(base, "upstream: api", "upstream: nope", 1), []string{`routes[0].upstream: no upstream named "nope"`}},
		{"non-loopback admin", "server:\n  admin:\n    address: 0.0.0.0:9443\n" + base, []string{"server.admin.address:", "insecure_non_loopback"}},
		{"mtls route without client auth", base + "    policies:\n      - type: mtls\n        ca_files: [certs/internal-ca.pem]\n", []string{"routes[0].policies: an mtls policy needs tls.client_auth.mode"}},
		{"mtls policy with an empty allow list", "tls:\n  client_auth:\n    mode: optional\n    ca_files: [certs/internal-ca.pem]\n" + strings.TrimPrefix(base, "tls:\n") + "    policies:\n      - type: mtls\n        ca_files: [certs/internal-ca.pem]\n        allow: []\n",
			[]string{"routes[0].policies[0]"}},
		{"mtls ca file missing", "tls:\n  client_auth:\n    mode: optional\n    ca_files: [certs/internal-ca.pem]\n" + strings.TrimPrefix(base, "tls:\n") + "    policies:\n      - type: mtls\n        ca_files: [nope.pem]\n",
			[]string{"nope.pem"}},
		{"bad header policy", base + "    policies:\n      - type: headers\n        request:\n          set:\n            Host: evil\n",
			[]string{"routes[0].policies[0]:", "Host is managed by the gateway"}},
		{"unknown policy key", base + "    policies:\n      - type: headers\n        reqest: {}\n",
			[]string{`warden.yaml:13:9: routes[0].policies[0].reqest: unknown key "reqest" (did you mean "request"?)`}},
		{"unknown policy type", base + "    policies:\n      - type: magic\n", []string{`unknown policy type "magic"`}},
		{"route under the PKI path", base + "    path_prefix: /.well-known/warden/pki/x\n",
			[]string{"routes[0].path_prefix:", "never be reached"}},
		{"any-method route next to a methods route", base + "    path_prefix: /a/\n  - name: a-get\n    upstream: api\n    path_prefix: /a/\n    methods: [GET]\n",
			[]string{`routes[1].methods: route "a-get" and route "api" share host and path prefix`}},
		{"gc_heap_floor too large", "server:\n  gc_heap_floor: 17GiB\n" + base,
			[]string{"warden.yaml:2:18: server.gc_heap_floor: must be from 0 (off) to 16GiB"}},
		{"negative gc_heap_floor", "server:\n  gc_heap_floor: -1MiB\n" + base,
			[]string{"warden.yaml:2:18: server.gc_heap_floor: expected a size"}},
		{"unknown forwarding header", strings.Replace(base, "url: https://api.internal:8443\n", "url: https://api.internal:8443\n    forward_headers: [forwarded, x-real-ip]\n", 1),
			[]string{`warden.yaml:8:34: upstreams[0].forward_headers[1]: unknown forwarding header "x-real-ip"`}},
		{"forwarding header twice", strings.Replace(base, "url: https://api.internal:8443\n", "url: https://api.internal:8443\n    forward_headers: [forwarded, forwarded]\n", 1),
			[]string{`warden.yaml:8:34: upstreams[0].forward_headers[1]: forwarding header "forwarded" is listed twice`}},
		{"forward_headers left empty", strings.Replace(base, "url: https://api.internal:8443\n", "url: https://api.internal:8443\n    forward_headers:\n", 1),
			[]string{`upstreams[0].forward_headers: expected a list: [] sends none`}},
		{"forward_headers not a list", strings.Replace(base, "url: https://api.internal:8443\n", "url: https://api.internal:8443\n    forward_headers: forwarded\n", 1),
			[]string{`warden.yaml:8:22: upstreams[0].forward_headers: expected a list`}},
		{"not yaml", "tls: [\n", []string{"warden.yaml"}},
		{"empty", "", []string{"the file is empty"}},
	}
	for _, tt := range tests {
		if tt.want == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseIn(t, dir, tt.yaml)
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

func TestEveryErrorReportedInOnePass(t *testing.T) {
	y := `server:
  https:
    adress: 127.0.0.1:1
tls:
  profile: ancient
  certificates:
    - cert_file: certs/missing.pem
      key_file: certs/missing-key.pem
upstreams:
  - name: api
    url: ftp://x
    pins: ["sha1/abc"]
routes:
  - name: api
    upstream: api
    methods: [BREW]
`
	_, _, err := parseIn(t, testDir(t), y)
	if err == nil {
		t.Fatal("accepted")
	}
	// Decoding errors stop before semantic checks, so fix the typo and check again.
	if !strings.Contains(err.Error(), `unknown key "adress"`) {
		t.Fatalf("got %v", err)
	}
	y = strings.Replace(y, "adress", "address", 1)
	_, _, err = parseIn(t, testDir(t), y)
	msg := err.Error()
	for _, w := range []string{"tls.profile", "tls.certificates[0].cert_file", "upstreams[0].url", "upstreams[0].pins[0]", "routes[0].methods[0]"} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing error for %s in:\n%s", w, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n < 5 {
		t.Errorf("want at least 5 errors, got %d:\n%s", n, msg)
	}
}

func TestLegacyWithoutAuthenticationWarns(t *testing.T) {
	y := "tls:\n  client_auth:\n    mode: optional\n    ca_files: [certs/internal-ca.pem]\n" + strings.TrimPrefix(base, "tls:\n") +
		"    legacy:\n      policies:\n        - type: headers\n          request: {set: {X-A: b}}\n      deprecation: 2026-01-01\n      sunset: 2027-01-01\n      link: https://docs.example.com/m\n"
	_, warns, err := parseIn(t, testDir(t), y)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(warns, "no authentication policy") {
		t.Fatalf("want a warning, got %v", warns)
	}
}

// TestForwardHeadersAbsentOrEmpty: an absent forward_headers (all five
// fields) and an empty list (none) are told apart.
func TestForwardHeadersAbsentOrEmpty(t *testing.T) {
	dir := testDir(t)
	for _, tt := range []struct {
		line string
		want ForwardHeaders
	}{
		{"", nil},
		{"    forward_headers: []\n", ForwardHeaders{}},
		{"    forward_headers: [forwarded]\n", ForwardHeaders{"forwarded"}},
	} {
		c, _, err := parseIn(t, dir, strings.Replace(base, "url: https://api.internal:8443\n", "url: https://api.internal:8443\n"+tt.line, 1))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Upstreams[0].ForwardHeaders; (got == nil) != (tt.want == nil) || !reflect.DeepEqual([]string(got), []string(tt.want)) && len(got)+len(tt.want) > 0 {
			t.Errorf("%q: forward_headers = %#v, want %#v", tt.line, got, tt.want)
		}
	}
}

func TestSingleUpstreamPinWarns(t *testing.T) {
	y := base + "" // add one pin to the upstream
	y = strings.Replace(y, "url: https://api.internal:8443", "url: https://api.internal:8443\n    pins: [\"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]", 1)
	_, warns, err := parseIn(t, testDir(t), y)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(warns, "no backup pin") {
		t.Errorf("want a backup-pin warning, got %v", warns)
	}
}

// TestDocsCoverSchema keeps docs/configuration.md in step with the schema:
// every key of the config structs is documented, and every documented key
// exists.
func TestDocsCoverSchema(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	collectKeys(reflect.TypeFor[Config](), "", keys)
	// Each policy type's keys, under routes[].policies[].
	types := policy.ConfigTypes()
	if len(types) != len(policy.Types()) {
		t.Errorf("%d policy types but %d config types: register every policy with policy.RegisterConfig", len(policy.Types()), len(types))
	}
	for _, t := range types {
		collectKeys(t, "routes[].policies[]", keys)
	}
	// The mtls matcher is documented once, as match.<key>.
	collectKeys(reflect.TypeFor[mtls.Match](), "match", keys)
	for k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", k)
		}
	}
	documented := regexp.MustCompile("\\| `([a-z_\\[\\]]+\\.[a-z0-9_\\[\\].]+)` \\|").FindAllStringSubmatch(string(doc), -1)
	inTable := map[string]bool{}
	for _, m := range documented {
		inTable[m[1]] = true
	}
	for k := range keys {
		if !inTable[k] {
			t.Errorf("`%s` has no row of its own in a table of docs/configuration.md", k)
		}
	}
	for _, m := range documented {
		if !keys[m[1]] {
			t.Errorf("docs/configuration.md documents `%s`, which the schema does not have", m[1])
		}
	}
}

func collectKeys(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == reflect.TypeFor[mtls.Match]() || ft.Kind() == reflect.Slice && ft.Elem() == reflect.TypeFor[mtls.Match]():
			out[key] = true // a matcher: its keys are documented once
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[PolicySpec]():
			collectKeys(ft.Elem(), key+"[]", out)
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
			collectKeys(ft, key, out)
		default:
			out[key] = true
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{base, "tls: [", "routes:\n  - policies:\n    - type: headers\n      request: {set: {A: b}}\n",
		"server:\n  https:\n    max_header_bytes: 1GiB\n", "a: &x [*x]\n", "tls:\n  hsts:\n    max_age: -1s\n",
		base + "ct:\n  logs:\n    - url: https://ct.example.net/x\n      key_file: log.pem\n  domains: [api.example.com]\n  poll_interval: 1m\n"} {
		f.Add(s)
	}
	for _, fh := range []string{"~", "[]", "[forwarded, {a: b}]", "[x-request-id, x-request-id]", "&a [*a]"} {
		f.Add(strings.Replace(base, "url: https://api.internal:8443\n", "url: https://api.internal:8443\n    forward_headers: "+fh+"\n", 1))
	}
	for _, name := range []string{"minimal.yaml", "full.yaml"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "examples", name)); err == nil {
			f.Add(string(data))
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, _, err := Parse("fuzz.yaml", []byte(s))
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}
