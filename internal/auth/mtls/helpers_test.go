package mtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/testkit"
	"github.com/wardengw/warden/internal/tlsserver"
)

// testPKI: a client root with an intermediate that issues the client
// leaves, another root nobody trusts, and the gateway's server certificate.
type testPKI struct {
	root, inter, other *pkitest.CA
	serverRoot         *pkitest.CA
	server             *pkitest.Leaf
	bundle             string // the client root, as a PEM file
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	root := pkitest.NewRootCA(t, "Client Root", pkitest.Options{})
	p := &testPKI{
		root:       root,
		inter:      root.NewIntermediate(t, "Client Intermediate", pkitest.Options{}),
		other:      pkitest.NewRootCA(t, "Other Root", pkitest.Options{}),
		serverRoot: pkitest.NewRootCA(t, "Server Root", pkitest.Options{}),
	}
	p.server = p.serverRoot.Issue(t, pkitest.Options{DNSNames: []string{"gw.example"}})
	p.bundle = root.WriteCert(t, t.TempDir(), "clients.pem")
	return p
}

// client issues a client leaf from the intermediate.
func (p *testPKI) client(t testing.TB, o pkitest.Options) *pkitest.Leaf {
	t.Helper()
	if o.CommonName == "" {
		o.CommonName = "client"
	}
	if o.ExtKeyUsage == nil {
		o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return p.inter.Issue(t, o)
}

// sha1Client is a client leaf the intermediate signs with ECDSA-SHA1:
// x509.CreateCertificate still creates such certificates in Go 1.26, it
// only refuses to verify them.
func (p *testPKI) sha1Client(t testing.TB) *pkitest.Leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x5a1), Subject: pkix.Name{CommonName: "sha1-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		SignatureAlgorithm: x509.ECDSAWithSHA1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter.Cert, key.Public(), p.inter.Key)
	if err != nil {
		t.Fatalf("create SHA-1 certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA1 {
		t.Fatalf("signature algorithm %v, want ECDSA-SHA1", c.SignatureAlgorithm)
	}
	return &pkitest.Leaf{Cert: c, Key: key, Chain: []*x509.Certificate{c, p.inter.Cert}}
}

// fakeChecker is a policy.RevocationChecker whose answer the test sets.
type fakeChecker struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (f *fakeChecker) CheckChain(_ context.Context, chain []*x509.Certificate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.err
}

func (f *fakeChecker) set(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeChecker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// upstreamView is what the echo upstream saw.
type upstreamView struct {
	ClientCert      []string `json:"client_cert"`
	ClientCertChain []string `json:"client_cert_chain"`
	Identity        []string `json:"identity"`
	Consumer        string   `json:"consumer"`
	Methods         []string `json:"methods"`
	LeafSHA256      string   `json:"leaf_sha256"`
}

// echo stands for the upstream: it reports the identity headers and the
// Exchange's identity.
func echo(w http.ResponseWriter, r *http.Request) {
	v := upstreamView{
		ClientCert: r.Header.Values("Client-Cert"), ClientCertChain: r.Header.Values("Client-Cert-Chain"),
		Identity: r.Header.Values("X-Client-Identity"),
	}
	if x := policy.ExchangeOf(r); x != nil {
		v.Consumer, v.Methods = x.Identity.Consumer, x.Identity.Methods
		if c := x.Identity.ClientCert; c != nil {
			v.LeafSHA256 = fingerprint(c)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

type connStartKey struct{}

// world is one gateway stand-in: a tlsserver listener asking for (not
// verifying) client certificates, an Exchange per request the way the
// gateway builds it, the policy, and the echo upstream.
type world struct {
	pki     *testPKI
	sink    *audit.MemorySink
	metrics *telemetry.Metrics
	clock   *testkit.Clock
	rev     *fakeChecker
	env     *policy.Env
	url     string
	policy  *mtls.Policy
}

// start serves cfg (CAFiles defaults to the client root's bundle). With
// noChecker, Env.Revocation is nil.
func start(t testing.TB, p *testPKI, cfg mtls.Config, noChecker bool) *world {
	t.Helper()
	if cfg.CAFiles == nil {
		cfg.CAFiles = []policy.FilePath{policy.FilePath(p.bundle)}
	}
	pol, err := mtls.New(cfg)
	if err != nil {
		t.Fatalf("mtls.New: %v", err)
	}
	return startWith(t, p, pol, noChecker)
}

// startWith serves pol, or echo alone when pol is nil.
func startWith(t testing.TB, p *testPKI, pol *mtls.Policy, noChecker bool) *world {
	t.Helper()
	rev := &fakeChecker{}
	var checker policy.RevocationChecker = rev
	if noChecker {
		checker = nil
	}
	w := startChecker(t, p, pol, testkit.NewClock(time.Now()), checker)
	w.rev = rev
	return w
}

// startChecker serves pol with the given clock and revocation checker.
func startChecker(t testing.TB, p *testPKI, pol *mtls.Policy, clock *testkit.Clock, checker policy.RevocationChecker) *world {
	t.Helper()
	w := &world{pki: p, sink: audit.NewMemorySink(), metrics: telemetry.New(), clock: clock, policy: pol}
	w.env = &policy.Env{Audit: audit.New(w.sink), Metrics: w.metrics, Now: w.clock.Now, Revocation: checker}
	tsrv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: []tls.Certificate{p.server.TLS()}, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatalf("tlsserver.NewServer: %v", err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsserver.NewListener(inner, tsrv, tlsserver.ListenerOptions{Name: "test"})
	var chain http.Handler = http.HandlerFunc(echo)
	if pol != nil {
		chain = pol.Wrap(chain)
	}
	n := 0
	var mu sync.Mutex
	hs := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			id := n
			mu.Unlock()
			start, _ := r.Context().Value(connStartKey{}).(time.Time)
			x := &policy.Exchange{ID: "req-" + strconv.Itoa(id), Route: "test", Remote: r.RemoteAddr, Start: w.clock.Now(), ConnStart: start, Env: w.env}
			chain.ServeHTTP(rw, r.WithContext(policy.WithExchange(r.Context(), x)))
		}),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connStartKey{}, w.clock.Now())
		},
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		_ = tsrv.Close()
	})
	w.url = "https://" + ln.Addr().String()
	return w
}

// client returns an HTTP/1.1 keep-alive client presenting leaf (nothing
// when nil) with exactly the chain the leaf carries.
func (w *world) client(t testing.TB, leaf *pkitest.Leaf) *http.Client {
	t.Helper()
	var cert *tls.Certificate
	if leaf != nil {
		c := leaf.TLS()
		cert = &c
	}
	return w.clientCert(t, cert)
}

func (w *world) clientCert(t testing.TB, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: w.pki.serverRoot.Pool(), ServerName: "gw.example",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// response is a decoded answer.
type response struct {
	status  int
	close   bool
	reused  bool // sent on a kept-alive connection
	view    upstreamView
	problem map[string]any
}

func (w *world) get(t testing.TB, c *http.Client, header http.Header) response {
	t.Helper()
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: resp.StatusCode, close: resp.Close, reused: reused}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &out.view); err != nil {
			t.Fatalf("upstream body %q: %v", body, err)
		}
	} else {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("refusal Content-Type = %q", ct)
		}
		if err := json.Unmarshal(body, &out.problem); err != nil {
			t.Fatalf("problem body %q: %v", body, err)
		}
	}
	return out
}

// waitEvent waits for an audit event of typ with reason about leaf (any
// certificate when nil).
func (w *world) waitEvent(t testing.TB, typ, reason string, leaf *x509.Certificate) audit.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := w.sink.Wait(ctx, func(e audit.Event) bool {
		return e.Type == typ && e.Reason == reason && (leaf == nil || e.Fields["cert_sha256"] == fingerprint(leaf))
	})
	if err != nil {
		var seen []string
		for _, e := range w.sink.Events() {
			seen = append(seen, e.Type+"/"+e.Reason)
		}
		t.Fatalf("no %s event with reason %q (events: %s)", typ, reason, strings.Join(seen, ", "))
	}
	return e
}

func writeBundle(t testing.TB, cas ...*pkitest.CA) string {
	t.Helper()
	var pem []byte
	for _, ca := range cas {
		pem = append(pem, ca.PEM()...)
	}
	path := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveDirect runs the policy in front of echo in process, as if on a
// connection that presented chain, with an Exchange whose consumer an
// earlier policy set.
func serveDirect(pol *mtls.Policy, env *policy.Env, chain []*x509.Certificate, consumer string) *httptest.ResponseRecorder {
	return serveDirectTo(pol, env, chain, consumer, http.HandlerFunc(echo), nil)
}

// serveDirectTo is serveDirect with another next handler and request
// headers.
func serveDirectTo(pol *mtls.Policy, env *policy.Env, chain []*x509.Certificate, consumer string, next http.Handler, h http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://gw.example/x", nil)
	for k, vs := range h {
		r.Header[k] = vs
	}
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, PeerCertificates: chain}
	x := &policy.Exchange{ID: "direct", Route: "test", Env: env, ConnStart: time.Now()}
	x.Identity.Consumer = consumer
	r = r.WithContext(policy.WithExchange(r.Context(), x))
	rec := httptest.NewRecorder()
	pol.Wrap(next).ServeHTTP(rec, r)
	return rec
}

func sha256b64(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// metricSum adds up every series of the named metric.
func metricSum(t testing.TB, w *world, name string) float64 {
	t.Helper()
	mfs, err := w.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
