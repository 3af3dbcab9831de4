package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const acmeBase = `server:
  http:
    address: 127.0.0.1:8080
acme:
  directory_url: https://acme.example/dir
  email: ops@example.org
  agree_terms: true
tls:
  certificates:
    - acme:
        names: [api.example.com, www.example.com]
upstreams:
  - name: api
    url: https://api.internal:8443
routes:
  - name: api
    upstream: api
`

func TestACMEConfig(t *testing.T) {
	dir := testDir(t)
	c, warns, err := parseIn(t, dir, acmeBase)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if !slices.Equal(c.ACME.Challenges, []string{"http-01", "tls-alpn-01"}) {
		t.Errorf("default challenges = %v", c.ACME.Challenges)
	}
	if c.ACME.Storage != "acme" || c.PathOf(c.ACME.Storage) != filepath.Join(dir, "acme") {
		t.Errorf("default storage = %q", c.ACME.Storage)
	}
	if got := c.TLS.Certificates[0].ACME.Names; !slices.Equal(got, []string{"api.example.com", "www.example.com"}) {
		t.Errorf("names = %v", got)
	}

	noHTTP := strings.Replace(acmeBase, "server:\n  http:\n    address: 127.0.0.1:8080\n", "", 1)
	c, _, err = parseIn(t, dir, noHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ACME.Challenges, []string{"tls-alpn-01"}) {
		t.Errorf("default challenges without server.http = %v", c.ACME.Challenges)
	}
}

func TestACMEErrors(t *testing.T) {
	dir := testDir(t)
	noHTTP := strings.Replace(acmeBase, "server:\n  http:\n    address: 127.0.0.1:8080\n", "", 1)
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"http directory", strings.Replace(acmeBase, "https://acme.example/dir", "http://acme.example/dir", 1),
			[]string{"warden.yaml:5:18: acme.directory_url:", "https://"}},
		{"terms not agreed", strings.Replace(acmeBase, "agree_terms: true", "agree_terms: false", 1),
			[]string{"warden.yaml:7:16: acme.agree_terms: must be true"}},
		{"no email", strings.Replace(acmeBase, "  email: ops@example.org\n", "", 1), []string{"acme.email: the account's contact address is required"}},
		{"bad email", strings.Replace(acmeBase, "ops@example.org", "not-an-address", 1), []string{"warden.yaml:6:10: acme.email:"}},
		{"missing ca_file", strings.Replace(acmeBase, "agree_terms: true", "agree_terms: true\n  ca_file: nope.pem", 1), []string{"acme.ca_file:", "nope.pem"}},
		{"http-01 without server.http", strings.Replace(noHTTP, "agree_terms: true", "agree_terms: true\n  challenges: [http-01]", 1),
			[]string{"warden.yaml:5:16: acme.challenges[0]: http-01 is answered on the plain-HTTP listener"}},
		{"both challenges on listeners of different hosts", strings.Replace(acmeBase, "address: 127.0.0.1:8080", "address: 127.0.0.2:8080", 1),
			[]string{"acme.challenges:", "must share a host"}},
		{"dns-01", strings.Replace(acmeBase, "agree_terms: true", "agree_terms: true\n  challenges: [dns-01]", 1),
			[]string{"acme.challenges[0]:", "dns-01 is not supported"}},
		{"wildcard", strings.Replace(acmeBase, "www.example.com", "'*.example.com'", 1),
			[]string{"warden.yaml:11:34: tls.certificates[0].acme.names[1]:", "dns-01"}},
		{"IP address", strings.Replace(acmeBase, "www.example.com", "192.0.2.1", 1), []string{"tls.certificates[0].acme.names[1]:", "IP addresses"}},
		{"upper case", strings.Replace(acmeBase, "www.example.com", "WWW.example.com", 1), []string{"tls.certificates[0].acme.names[1]:", "lowercase"}},
		{"no names", strings.Replace(acmeBase, "names: [api.example.com, www.example.com]", "names: []", 1), []string{"tls.certificates[0].acme.names: at least one name"}},
		{"files and acme", strings.Replace(acmeBase, "    - acme:", "    - cert_file: certs/server.pem\n      key_file: certs/server-key.pem\n      acme:", 1),
			[]string{"warden.yaml:10:7: tls.certificates[0]: cert_file/key_file and acme are exclusive"}},
		{"acme entry without acme block", strings.Replace(acmeBase, "acme:\n  directory_url: https://acme.example/dir\n  email: ops@example.org\n  agree_terms: true\n", "", 1),
			[]string{"tls.certificates[0].acme: needs the top-level acme block"}},
		{"name twice", strings.Replace(acmeBase, "www.example.com]", "www.example.com]\n    - acme:\n        names: [www.example.com]", 1),
			[]string{"tls.certificates[1].acme.names[0]: www.example.com is already requested by tls.certificates[0]"}},
	}
	for _, tt := range tests {
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

func TestACMEUnusedWarns(t *testing.T) {
	y := strings.Replace(base, "tls:", "acme:\n  directory_url: https://acme.example/dir\n  email: ops@example.org\n  agree_terms: true\n  challenges: [tls-alpn-01]\ntls:", 1)
	_, warns, err := parseIn(t, testDir(t), y)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(warns, "no tls.certificates entry uses acme") {
		t.Fatalf("want a warning, got %v", warns)
	}
}
