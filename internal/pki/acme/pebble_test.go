package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/acme"
	"github.com/wardengw/warden/internal/pki/acme/acmetest"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/tlsserver"
)

// testDomain resolves to 127.0.0.1 for Pebble's VA.
const testDomain = acmetest.Domain

// pebble is the in-process ACME CA.
type pebble = acmetest.Pebble

// startPebble starts Pebble validating on these ports.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	return acmetest.Start(t, httpPort, tlsPort, validity)
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
		DirectoryURL: p.Directory(),
		Email:        "ops@example.org",
		AgreeTerms:   true,
		CARoots:      p.DirectoryRoots(),
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
