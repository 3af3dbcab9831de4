package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
)

// env is a running gateway in front of a TLS upstream, all on loopback,
// with a PKI generated for the test.
type env struct {
	t            testing.TB
	dir          string
	ca           *pkitest.CA
	clientCert   *pkitest.Leaf // a client certificate from ca
	upstream     *httptest.Server
	upstreamCert *pkitest.Leaf
	hits         atomic.Int64 // requests the upstream received
	sink         *audit.MemorySink
	auditFile    string // the audit events as JSON lines, written before sink gets them
	g            *Gateway
	cfgPath      string
	vars         map[string]any
	clock        atomic.Pointer[time.Time] // when set, the gateway's clock
	ctTicks      chan time.Time            // drives the CT monitor's polls (Options.CTTicks)
}

func (e *env) now() time.Time {
	if t := e.clock.Load(); t != nil {
		return *t
	}
	return time.Now()
}

// upstreamEcho answers JSON with what it received.
type upstreamEcho struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Header  http.Header `json:"header"`
	BodyLen int         `json:"body_len"`
}

const cfgTmpl = `server:
  https:
    address: 127.0.0.1:0
    read_header_timeout: {{or .ReadHeaderTimeout "5s"}}
{{- if .IdleTimeout}}
    idle_timeout: {{.IdleTimeout}}
{{- end}}
{{- if .ReadTimeout}}
    read_timeout: {{.ReadTimeout}}
{{- end}}
    max_body_bytes: 1MiB
    max_header_bytes: 16KiB
  http:
    address: 127.0.0.1:0
  admin:
    address: 127.0.0.1:0
{{- if .AdminCA}}
    client_ca_files: [ca.pem]
{{- end}}
  shutdown_timeout: 5s
tls:
  certificates:
{{- if .ServerCerts}}
{{.ServerCerts}}
{{- else}}
    - cert_file: server.pem
      key_file: server-key.pem
{{- end}}
  client_auth:
    mode: {{or .ClientAuthMode "optional"}}
    ca_files: [ca.pem]
upstreams:
  - name: up
    url: {{.UpstreamURL}}
    ca_file: ca.pem
{{- if .Pins}}
    pins: {{.Pins}}
{{- end}}
{{- with .ForwardHeaders}}
    forward_headers: {{.}}
{{- end}}
routes:
  - name: public
    path_prefix: /public/
    upstream: up
    policies:
      - type: headers
        request:
          set:
            X-Policy: {{or .PolicyValue "one"}}
        response:
          remove: [X-Upstream-Secret]
  - name: secure
    path_prefix: /secure/
    upstream: up
    policies:
      - type: mtls
        ca_files: [ca.pem]
        revocation: {{or .Revocation "off"}}
{{- with .MaxConnectionAge}}
        max_connection_age: {{.}}
{{- end}}
        consumers:
          - name: client-a
            match:
              subject: {cn: client-a}
        forward:
          identity_header: X-Client-Identity
{{- if .Legacy}}
  - name: partner
    path_prefix: /partner/
    upstream: up
    policies:
      - type: mtls
        ca_files: [ca.pem]
        revocation: "off"
    legacy:
      policies:
        - type: headers
          request:
            set:
              X-Legacy: "yes"
      rate_limit:
        requests_per_second: 1
        burst: 3
      deprecation: 2026-01-01
      sunset: 2027-01-01T00:00:00Z
      link: https://docs.example.com/partners/mtls
{{- end}}
{{- if .JWT}}
  - name: token
    path_prefix: /token/
    upstream: up
    policies:
      - type: jwt
        issuers:
          - issuer: https://idp.test
            jwks_file: jwks.json
            audiences: [warden-test]
        forward:
          claims_header: X-Token-Claims
  - name: bound
    path_prefix: /bound/
    upstream: up
    policies:
      - type: jwt
        issuers:
          - issuer: https://idp.test
            jwks_file: jwks.json
            audiences: [warden-test]
      - type: dpop
{{- end}}
{{- if .APIKey}}
  - name: keyed
    path_prefix: /keyed/
    upstream: up
    policies:
      - type: api_key
  - name: critical
    path_prefix: /critical/
    upstream: up
    policies:
      - type: api_key
      - type: stepup
        methods: [POST]
      - type: identity
        header: X-Warden-Identity
{{- end}}
{{- if .CA}}
  - name: internal
    path_prefix: /internal/
    upstream: up
    policies:
      - type: mtls
        ca_files: [ca/root.pem]
        revocation: {{or .CARevocation "hard_fail"}}
{{- end}}
  - name: readonly
    path_prefix: /ro/
    methods: [GET]
    upstream: up
{{- if .APIKey}}
brute_force:
  delay_after: 10 # the progressive delay is tested in internal/auth/lockout
{{- end}}
{{- if .CA}}
ca:
  dir: ca
  publish_url: http://localhost/.well-known/warden/pki
{{- end}}
{{- if .CRL}}
revocation:
  crl_files: [crl.pem]
  ocsp: false
  crl_distribution_points: false
{{- end}}
{{- with .ExtraYAML}}
{{.}}
{{- end}}
`

func newEnv(t testing.TB, vars map[string]any) *env {
	t.Helper()
	return newEnvWith(t, vars, nil)
}

// newEnvWith is newEnv with a hook that can write files into the env's
// folder before the config is loaded.
func newEnvWith(t testing.TB, vars map[string]any, prepare func(e *env)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), sink: audit.NewMemorySink(), vars: map[string]any{}, ctTicks: make(chan time.Time)}
	for k, v := range vars {
		e.vars[k] = v
	}
	e.ca = pkitest.NewRootCA(t, "Gateway Test CA", pkitest.Options{})
	e.ca.WriteCert(t, e.dir, "ca.pem")
	e.ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}).WriteFiles(t, e.dir, "server")
	e.clientCert = e.ca.Issue(t, pkitest.Options{CommonName: "client-a", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	upCert := e.ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	e.upstream = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Strict-Transport-Security", "max-age=0")
		w.Header().Set("X-Upstream-Secret", "leak")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/public/slow" {
			<-r.Context().Done()
			return
		}
		_ = json.NewEncoder(w).Encode(upstreamEcho{Method: r.Method, Path: r.URL.Path, Header: r.Header, BodyLen: int(n)})
	}))
	e.upstream.TLS = &tls.Config{Certificates: []tls.Certificate{upCert.TLS()}}
	e.upstream.StartTLS()
	e.upstreamCert = upCert
	t.Cleanup(e.upstream.Close)
	e.vars["UpstreamURL"] = e.upstream.URL

	if prepare != nil {
		prepare(e)
	}
	e.cfgPath = filepath.Join(e.dir, "warden.yaml")
	e.writeConfig(nil)
	c, warns, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	e.auditFile = filepath.Join(e.dir, "audit.jsonl")
	af, err := os.Create(e.auditFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { af.Close() })
	o := Options{Audit: audit.New(audit.NewJSONSink(af), e.sink), Log: log, Now: e.now, CTTicks: e.ctTicks}
	o.NetHTTPServer, _ = vars["NetHTTPServer"].(bool)
	o.ReverseProxyOnly, _ = vars["ReverseProxyOnly"].(bool)
	e.g, err = New(c, warns, o)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if err := e.g.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.g.Shutdown(ctx)
	})
	return e
}

// writeConfig renders the config with extra template vars, atomically.
// holdUpstream makes the upstream hold the first request for path until
// release is called (at the latest at the test's cleanup, so that a failing
// test does not leave the handler waiting); arrived is closed when it
// arrives. Other requests are served as usual.
func (e *env) holdUpstream(t testing.TB, path string) (arrived <-chan struct{}, release func()) {
	rel, arr := make(chan struct{}), make(chan struct{})
	var relOnce, arrOnce sync.Once
	release = func() { relOnce.Do(func() { close(rel) }) }
	t.Cleanup(release)
	up := e.upstream.Config.Handler
	e.upstream.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			held := false
			arrOnce.Do(func() { held = true; close(arr) })
			if held {
				<-rel
			}
		}
		up.ServeHTTP(w, r)
	})
	return arr, release
}

func (e *env) writeConfig(extra map[string]any) {
	e.t.Helper()
	for k, v := range extra {
		e.vars[k] = v
	}
	var b strings.Builder
	if err := template.Must(template.New("c").Parse(cfgTmpl)).Execute(&b, e.vars); err != nil {
		e.t.Fatal(err)
	}
	writeAtomic(e.t, e.cfgPath, b.String())
}

func writeAtomic(t testing.TB, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (e *env) httpsURL(path string) string {
	a, _, _ := e.g.Addrs()
	return "https://" + a.String() + path
}

// client returns an HTTPS client trusting the test CA; with cert, it
// presents the client certificate; h2 selects HTTP/2.
func (e *env) clientWith(cert *pkitest.Leaf, h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}
	if cert != nil {
		c := cert.TLS()
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) client() *http.Client { return e.clientWith(nil, false) }

// waitEvent waits for an audit event matching match.
func (e *env) waitEvent(match func(audit.Event) bool) audit.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := e.sink.Wait(ctx, match)
	if err != nil {
		e.t.Fatalf("audit event not seen: %v; events: %+v", err, e.sink.Events())
	}
	return ev
}

// problem decodes a problem+json response.
type problem struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
}

func readProblem(t *testing.T, resp *http.Response) problem {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("content type %q, body %s", ct, b)
	}
	var p problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Type != policy.ProblemType(p.Reason) || p.Status != resp.StatusCode || p.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("inconsistent problem %+v for status %d", p, resp.StatusCode)
	}
	return p
}

// adminClientFor returns a client presenting the env's client certificate,
// which the admin API accepts when the env has AdminCA set.
func adminClientFor(t *testing.T, e *env) *http.Client {
	t.Helper()
	return e.clientWith(e.clientCert, false)
}
