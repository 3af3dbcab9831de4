// Package acmetest runs Pebble, Let's Encrypt's ACME test server, in
// process on 127.0.0.1, with a DNS server that resolves every name under
// Domain to 127.0.0.1, so that Pebble's validation authority really
// connects to the test's listeners (http-01 and tls-alpn-01 are checked,
// never skipped). Only tests import it.
package acmetest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
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
)

// Domain is served by the test DNS server: every name under it is
// 127.0.0.1.
const Domain = "warden.test"

// Pebble is an in-process ACME CA. Its directory answers once Validate has
// told it the ports to validate challenges on.
type Pebble struct {
	srv    *httptest.Server
	ca     *ca.CAImpl
	db     *db.MemoryStore
	orders atomic.Int64 // newOrder requests
	roots  []byte       // PEM of the directory's TLS certificate

	t        testing.TB
	logger   *log.Logger
	dns      string
	ready    chan struct{}
	handler  atomic.Pointer[http.Handler]
	validate sync.Once
}

// New starts Pebble's directory on 127.0.0.1, issuing certificates valid
// for validity (0: Pebble's default). Random nonce rejections and
// authorization reuse are off, so every order is validated afresh and
// tests are deterministic. Requests wait until Validate is called.
func New(t testing.TB, validity time.Duration) *Pebble {
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
	p := &Pebble{db: db.NewMemoryStore(), t: t, logger: log.New(logs, "pebble ", log.Lmicroseconds),
		dns: startDNS(t), ready: make(chan struct{})}
	p.ca = ca.New(p.logger, p.db, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: uint64(validity.Seconds())},
	})
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-p.ready:
		case <-r.Context().Done():
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		(*p.handler.Load()).ServeHTTP(rw, r)
	}))
	p.srv.Config.ErrorLog = log.New(logs, "pebble http ", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.roots = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	return p
}

// Start is New then Validate.
func Start(t testing.TB, httpPort, tlsPort int, validity time.Duration) *Pebble {
	p := New(t, validity)
	p.Validate(httpPort, tlsPort)
	return p
}

// Validate makes Pebble validate http-01 on httpPort and tls-alpn-01 on
// tlsPort of 127.0.0.1, and opens its directory. Only the first call
// counts.
func (p *Pebble) Validate(httpPort, tlsPort int) {
	p.validate.Do(func() {
		v := va.New(p.logger, httpPort, tlsPort, false, p.dns, p.db)
		w := wfe.New(p.logger, p.db, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
		h := w.Handler()
		p.handler.Store(&h)
		close(p.ready)
	})
}

// Directory is the ACME directory URL.
func (p *Pebble) Directory() string { return p.srv.URL + wfe.DirectoryPath }

// DirectoryRoots is the PEM certificate that verifies the directory's TLS.
func (p *Pebble) DirectoryRoots() []byte { return p.roots }

// IssuingRoots is the pool of Pebble's issuing root.
func (p *Pebble) IssuingRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

// Orders is the number of newOrder requests received.
func (p *Pebble) Orders() int64 { return p.orders.Load() }

// Block makes Pebble refuse orders for name ("forbidden by policy").
func (p *Pebble) Block(name string) { _ = p.db.AddBlockedDomain(name) }

// Stop stops the directory: later ACME requests fail to connect.
func (p *Pebble) Stop() { p.srv.Close() }

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

// startDNS serves A 127.0.0.1 for every name under Domain (and nothing
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
			if q.Qtype == dns.TypeA && strings.HasSuffix(q.Name, "."+Domain+".") {
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
