package acme_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/acme"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/tlsserver"
)

// testDomain is served by the test DNS server: every name under it is
// 127.0.0.1, so Pebble's VA really connects to the test's listeners.
const testDomain = "warden.test"

// lockedBuffer collects Pebble's log, shown when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDNS serves A 127.0.0.1 for every name under testDomain (and nothing
// else) over TCP on loopback, for Pebble's VA.
func startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA && strings.HasSuffix(q.Name, "."+testDomain+".") {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// pebble is Let's Encrypt's ACME test server, in process, on loopback.
type pebble struct {
	srv    *httptest.Server
	ca     *ca.CAImpl
	db     *db.MemoryStore
	orders atomic.Int64 // newOrder requests
	roots  []byte       // PEM of the directory's TLS certificate
}

// startPebble starts Pebble whose VA validates http-01 on httpPort and
// tls-alpn-01 on tlsPort of 127.0.0.1, with certificates valid for
// validity (0: Pebble's default). Random nonce rejections and
// authorization reuse are off, so every order is validated afresh and the
// tests are deterministic.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs)
		}
	})
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	p := &pebble{db: db.NewMemoryStore()}
	p.ca = ca.New(logger, p.db, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: uint64(validity.Seconds())},
	})
	v := va.New(logger, httpPort, tlsPort, false, startDNS(t), p.db)
	w := wfe.New(logger, p.db, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := w.Handler()
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		h.ServeHTTP(rw, r)
	}))
	p.srv.Config.ErrorLog = log.New(logs, "pebble http ", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.roots = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	return p
}

func (p *pebble) directory() string { return p.srv.URL + wfe.DirectoryPath }

// issuingRoots is the pool of Pebble's issuing root.
func (p *pebble) issuingRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

// gateway is what the gateway does with a Manager, on real listeners: a
// plain-HTTP listener serving Manager.HTTPHandler around a redirect, and a
// tlsserver listener with the Manager's certificates and tls-alpn-01 hook,
// re-applied on every change. Its HTTPS handler answers "ok".
type gateway struct {
	httpLn, tlsLn net.Listener
	srv           *tlsserver.Server
	metrics       *telemetry.Metrics
	m             *acme.Manager
	sink          *audit.MemorySink

	challenges sync.Map // http-01 requests: path -> status

	changes chan string // names, one per OnChange
}

// listen opens the two listeners; serve starts serving them once the
// Manager exists (its addresses are in the Manager's config).
func listen(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{metrics: telemetry.New(), sink: audit.NewMemorySink(), changes: make(chan string, 100)}
	var err error
	if g.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if g.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.httpLn.Close(); _ = g.tlsLn.Close() })
	return g
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// config is a Manager config for p with the gateway's addresses.
func (g *gateway) config(t *testing.T, p *pebble, names ...string) acme.Config {
	return acme.Config{
		DirectoryURL: p.directory(),
		Email:        "ops@example.org",
		AgreeTerms:   true,
		CARoots:      p.roots,
		StorageDir:   t.TempDir(),
		Names:        names,
		HTTPAddress:  g.httpLn.Addr().String(),
		TLSAddress:   g.tlsLn.Addr().String(),
		Audit:        audit.New(g.sink),
		OnChange: func(name string, _ *tls.Certificate) {
			if err := g.apply(); err != nil {
				t.Errorf("applying TLS settings: %v", err)
			}
			g.changes <- name
		},
	}
}

func (g *gateway) settings() tlsserver.Settings {
	return tlsserver.Settings{Certificates: g.m.Certificates(), ACMEChallenge: g.m.TLSALPNChallenge}
}

func (g *gateway) apply() error { return g.srv.Update(g.settings()) }

// serve creates the Manager from cfg and serves both listeners with it.
func (g *gateway) serve(t *testing.T, cfg acme.Config) {
	t.Helper()
	m, err := acme.New(cfg)
	if err != nil {
		t.Fatalf("acme.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	g.m = m
	if g.srv, err = tlsserver.NewServer(g.settings()); err != nil {
		t.Fatalf("tlsserver.NewServer: %v", err)
	}
	t.Cleanup(func() { _ = g.srv.Close() })

	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	acmeHandler := m.HTTPHandler(redirect)
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		acmeHandler.ServeHTTP(rec, r)
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			g.challenges.Store(r.Host+r.URL.Path, rec.status)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = plain.Serve(g.httpLn) }()
	t.Cleanup(func() { _ = plain.Close() })

	tl := tlsserver.NewListener(g.tlsLn, g.srv, tlsserver.ListenerOptions{Name: "https", Metrics: g.metrics})
	https := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second, TLSConfig: g.srv.TLSConfig()}
	go func() { _ = https.Serve(tl) }()
	t.Cleanup(func() { _ = https.Close() })
}

// http01Served counts http-01 requests answered 200.
func (g *gateway) http01Served() int {
	n := 0
	g.challenges.Range(func(_, v any) bool {
		if v.(int) == http.StatusOK {
			n++
		}
		return true
	})
	return n
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// handshake connects to the HTTPS listener naming serverName and returns
// the verified leaf, verifying against roots.
func (g *gateway) handshake(t *testing.T, serverName string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.tlsLn.Addr().String(),
		&tls.Config{ServerName: serverName, RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake for %s: %v", serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// startCtx bounds Start in the tests.
func startCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
