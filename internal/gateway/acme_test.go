package gateway

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/tlsserver"
)

const acmeYAML = `server:
  http:
    address: 127.0.0.1:0
acme:
  directory_url: https://acme.example/dir
  email: ops@example.org
  agree_terms: true
  ca_file: acme-ca.pem
tls:
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
    - acme:
        names: [api.example.com]
    - acme:
        names: [www.example.com, admin.example.com]
upstreams:
  - name: api
    url: https://api.internal:8443
routes:
  - name: api
    upstream: api
`

// TestACMESource checks the config-to-Manager mapping and the pieces the
// gateway plugs in (no CA is contacted: the Pebble tests are in
// internal/pki/acme).
func TestACMESource(t *testing.T) {
	dir := t.TempDir()
	root := pkitest.NewRootCA(t, "ACME directory CA", pkitest.Options{})
	root.WriteCert(t, dir, "acme-ca.pem")
	fileCert := root.Issue(t, pkitest.Options{DNSNames: []string{"files.example.com"}})
	fileCert.WriteFiles(t, dir, "server")
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(acmeYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := acmeNames(c), []string{"api.example.com", "www.example.com", "admin.example.com"}; !slices.Equal(got, want) {
		t.Fatalf("acmeNames = %v, want %v", got, want)
	}
	httpAddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	tlsAddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
	ac, err := acmeConfig(c, httpAddr, tlsAddr, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ac.StorageDir != filepath.Join(dir, "acme") || ac.HTTPAddress != "127.0.0.1:8080" || ac.TLSAddress != "127.0.0.1:8443" ||
		len(ac.CARoots) == 0 || len(ac.Challenges) != 2 {
		t.Fatalf("acme config = %+v", ac)
	}

	s, err := newACMESource(c, httpAddr, tlsAddr, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	st := s.apply(tlsserver.Settings{Certificates: []tls.Certificate{fileCert.TLS()}})
	if st.ACMEChallenge == nil || len(st.Certificates) != 1 {
		t.Fatalf("apply: hook set %v, %d certificates; want the hook and the file certificate only (nothing obtained yet)",
			st.ACMEChallenge != nil, len(st.Certificates))
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("settings with the ACME hook: %v", err)
	}

	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusPermanentRedirect) })
	for path, want := range map[string]int{"/.well-known/acme-challenge/x": http.StatusNotFound, "/x": http.StatusPermanentRedirect} {
		rec := httptest.NewRecorder()
		s.plain(next).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://api.example.com"+path, nil))
		if rec.Code != want {
			t.Errorf("plain %s = %d, want %d", path, rec.Code, want)
		}
	}

	// Without acme entries there is no source, and its methods change nothing.
	var none *acmeSource
	if got := none.apply(tlsserver.Settings{}); got.ACMEChallenge != nil {
		t.Error("nil source set the hook")
	}
	rec := httptest.NewRecorder()
	none.plain(next).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://x/.well-known/acme-challenge/x", nil))
	if rec.Code != http.StatusPermanentRedirect {
		t.Errorf("nil source intercepted a challenge path: %d", rec.Code)
	}

	changed := *c
	changed.TLS.Certificates = slices.Clone(c.TLS.Certificates[:2])
	if err := sameACME(c, &changed); err == nil {
		t.Error("dropping acme names is not reported as a change needing a restart")
	}
	if err := sameACME(c, c); err != nil {
		t.Errorf("same config: %v", err)
	}
}
