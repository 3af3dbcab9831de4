// Package demo is what `warden demo` runs besides the gateway: an echo
// upstream served over TLS with a certificate from the development PKI,
// and the config file that ties the two together.
package demo

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/wardengw/warden/internal/pki"
)

// Echo is the demo upstream's response: what it received.
type Echo struct {
	Upstream string              `json:"upstream"`
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	Query    string              `json:"query,omitempty"`
	Headers  map[string][]string `json:"headers"`
	TLS      string              `json:"tls"`
}

// EchoHandler answers JSON describing the request it received.
func EchoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := Echo{Upstream: "warden-demo-upstream", Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: map[string][]string{}}
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.Headers[k] = r.Header[k]
		}
		if r.TLS != nil {
			e.TLS = tls.VersionName(r.TLS.Version) + " " + tls.CipherSuiteName(r.TLS.CipherSuite)
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
}

// StartUpstream serves the echo handler over TLS 1.3 on a free loopback
// port with the dev PKI's upstream certificate.
func StartUpstream(p *pki.DevPKI, log *slog.Logger) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo upstream: %w", err)
	}
	srv := &http.Server{
		Handler:           EchoHandler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{p.Upstream}, MinVersion: tls.VersionTLS13},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return srv, ln.Addr(), nil
}

// Addresses are the gateway's listen addresses.
type Addresses struct {
	HTTPS, HTTP, Admin, Upstream string
}

var configTmpl = template.Must(template.New("cfg").Parse(`# Written by "warden demo": the development gateway's configuration.
# File names are relative to this folder. The upstream address changes
# at every run of the demo.
server:
  https:
    address: "{{.HTTPS}}"
  http:
    address: "{{.HTTP}}"
  admin:
    address: "{{.Admin}}"
tls:
  profile: intermediate
  certificates:
    - cert_file: server.pem
      key_file: server-key.pem
  client_auth:
    mode: optional
    ca_files: [ca.pem]
upstreams:
  - name: demo
    url: "https://{{.Upstream}}"
    ca_file: ca.pem
    server_name: localhost
    pins:
      - "{{.Pin}}"         # the demo upstream's key
      - "{{.BackupPin}}"   # a spare key, for rotation
routes:
  - name: public
    path_prefix: /public/
    upstream: demo
    policies:
      - type: headers
        request:
          set:
            X-Warden-Route: public
  - name: secure
    path_prefix: /secure/
    upstream: demo
    policies:
      - type: mtls
        ca_files: [ca.pem]
        # The demo CA publishes no CRL or OCSP responder, so there is
        # nothing to check; with a real CA keep the default, hard_fail.
        revocation: "off"
        consumers:
          - name: demo-client
            match:
              spiffe_id: spiffe://warden.demo/client/demo
        forward:
          identity_header: X-Client-Identity
      - type: headers
        request:
          set:
            X-Warden-Route: secure
audit:
  file: "-"
`))

// WriteConfig writes dir/warden.yaml for the given addresses and returns
// its path.
func WriteConfig(p *pki.DevPKI, a Addresses) (string, error) {
	var b strings.Builder
	err := configTmpl.Execute(&b, map[string]string{
		"HTTPS": a.HTTPS, "HTTP": a.HTTP, "Admin": a.Admin, "Upstream": a.Upstream,
		"Pin": pki.SPKIPin(p.Upstream.Leaf).String(), "BackupPin": p.BackupPin.String(),
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(p.Dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write demo config: %w", err)
	}
	return path, nil
}
