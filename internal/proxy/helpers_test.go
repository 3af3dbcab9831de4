package proxy

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
)

const upstreamName = "upstream.test"

// testPKI is a root, an intermediate and the certificates the tests serve.
type testPKI struct {
	root, inter *pkitest.CA
	good        *pkitest.Leaf
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	root := pkitest.NewRootCA(t, "Warden Test Root", pkitest.Options{})
	inter := root.NewIntermediate(t, "Warden Test Intermediate", pkitest.Options{})
	return &testPKI{root: root, inter: inter, good: inter.Issue(t, pkitest.Options{DNSNames: []string{upstreamName}})}
}

// backend is a real TLS upstream that counts handshakes and requests and
// remembers the last request's headers.
type backend struct {
	srv        *httptest.Server
	hits       atomic.Int64
	handshakes atomic.Int64
	mu         sync.Mutex
	lastHeader http.Header
	lastHost   string
	lastProto  int
}

// newBackend starts an upstream serving cert; configure may adjust its TLS
// server (client auth, HTTP/2); handler, if set, replaces the default reply.
func newBackend(t testing.TB, cert tls.Certificate, configure func(*httptest.Server), handler http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.mu.Lock()
		b.lastHeader, b.lastHost, b.lastProto = r.Header.Clone(), r.Host, r.ProtoMajor
		b.mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("Strict-Transport-Security", "max-age=1")
		w.Header().Set("Alt-Svc", `h3=":443"`)
		w.Header().Set("X-Upstream", "yes")
		_, _ = io.WriteString(w, "hello from "+r.URL.Path)
	}))
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	b.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			b.handshakes.Add(1)
			return nil, nil
		},
	}
	if configure != nil {
		configure(b.srv)
	}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) url(t testing.TB) *url.URL {
	t.Helper()
	u, err := url.Parse(b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *backend) last() (http.Header, string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastHeader, b.lastHost, b.lastProto
}

// config returns an UpstreamConfig for b trusting p's root.
func (p *testPKI) config(t testing.TB, b *backend) UpstreamConfig {
	return UpstreamConfig{Name: "api", URL: b.url(t), ServerName: upstreamName, RootCAs: p.root.Pool()}
}

func mustNew(t testing.TB, cfg UpstreamConfig) *Upstream {
	t.Helper()
	u, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(u.CloseIdleConnections)
	return u
}

// env is the gateway state a request carries.
type env struct {
	sink    *audit.MemorySink
	metrics *telemetry.Metrics
}

func newEnv() *env { return &env{sink: audit.NewMemorySink(), metrics: telemetry.New()} }

// request returns a client request to the gateway carrying an Exchange.
func (e *env) request(method, target, remote string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	x := &policy.Exchange{ID: "req-1", Route: "r1", Start: time.Now(), Remote: r.RemoteAddr,
		Env: &policy.Env{Audit: audit.New(e.sink), Metrics: e.metrics}}
	return r.WithContext(policy.WithExchange(r.Context(), x))
}

func (e *env) upstreamErrors(t testing.TB, upstream, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := e.metrics.UpstreamErrors.WithLabelValues(upstream, reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

type problem struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
}

// wantProblem asserts rec is a problem+json with status and reason.
func wantProblem(t testing.TB, rec *httptest.ResponseRecorder, status int, reason string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if p.Reason != reason || p.Status != status || p.RequestID != "req-1" {
		t.Fatalf("problem = %+v, want reason %q status %d request_id req-1", p, reason, status)
	}
}

// onlyEvent returns the single audit event recorded, of type typ.
func (e *env) onlyEvent(t testing.TB, typ string) audit.Event {
	t.Helper()
	evs := e.sink.Events()
	if len(evs) != 1 || evs[0].Type != typ {
		t.Fatalf("audit events = %+v, want one %q", evs, typ)
	}
	return evs[0]
}

func pinOf(l *pkitest.Leaf) pki.Pin { return pki.SPKIPin(l.Cert) }

// onlyLeaf serves l without its intermediates.
func onlyLeaf(l *pkitest.Leaf) tls.Certificate {
	c := l.TLS()
	c.Certificate = c.Certificate[:1]
	return c
}
