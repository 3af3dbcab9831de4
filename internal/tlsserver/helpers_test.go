package tlsserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/telemetry"
	"github.com/wardengw/warden/internal/tlsserver"
)

// testPKI is a root CA with leaves for a.example (ECDSA and RSA) and
// b.example (ECDSA).
type testPKI struct {
	root           *pkitest.CA
	ecdsaA, rsaA   *pkitest.Leaf
	ecdsaB, ecdsa2 *pkitest.Leaf // ecdsa2: a second a.example leaf, for reloads
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	root := pkitest.NewRootCA(t, "Warden Test Root", pkitest.Options{})
	inter := root.NewIntermediate(t, "Warden Test Intermediate", pkitest.Options{})
	return &testPKI{
		root:   root,
		ecdsaA: inter.Issue(t, pkitest.Options{DNSNames: []string{"a.example"}}),
		rsaA:   inter.Issue(t, pkitest.Options{DNSNames: []string{"a.example"}, KeyType: pkitest.RSA2048}),
		ecdsaB: inter.Issue(t, pkitest.Options{DNSNames: []string{"b.example"}}),
		ecdsa2: inter.Issue(t, pkitest.Options{DNSNames: []string{"a.example"}}),
	}
}

// clientConfig trusts the test root and names a.example.
func (p *testPKI) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.root.Pool(), ServerName: "a.example"}
}

// harness is a Server behind a real Listener on 127.0.0.1 with an echo
// handler.
type harness struct {
	srv     *tlsserver.Server
	ln      net.Listener
	sink    *audit.MemorySink
	metrics *telemetry.Metrics
	addr    string
	// accepted receives every connection Accept returns, after the echo
	// goroutine has started on it.
	accepted chan *tls.Conn
}

func start(t testing.TB, s tlsserver.Settings, opts tlsserver.ListenerOptions) *harness {
	t.Helper()
	srv, err := tlsserver.NewServer(s)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, sink: audit.NewMemorySink(), metrics: telemetry.New(), accepted: make(chan *tls.Conn, 100)}
	opts.Audit = audit.New(h.sink)
	opts.Metrics = h.metrics
	if opts.Name == "" {
		opts.Name = "test"
	}
	h.ln = tlsserver.NewListener(inner, srv, opts)
	h.addr = h.ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := h.ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			go func() { _, _ = io.Copy(tc, tc); _ = tc.Close() }()
			select {
			case h.accepted <- tc:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = h.ln.Close()
		<-done
		_ = srv.Close()
	})
	return h
}

// dial connects, handshakes and does one echo round trip, so that errors
// the server reports after the client's handshake (TLS 1.3 client
// certificates) and TLS 1.3 session tickets are seen.
func dial(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if err := roundTrip(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func roundTrip(c *tls.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return errors.New("echo mismatch")
	}
	return nil
}

// waitFailure waits for the handshake-failure event of the client whose
// local address is local.
func (h *harness) waitFailure(t testing.TB, local string) audit.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := h.sink.Wait(ctx, func(e audit.Event) bool {
		return e.Type == tlsserver.EventHandshakeFailed && e.Remote == local
	})
	if err != nil {
		t.Fatalf("no %s event for %s: %v (events: %+v)", tlsserver.EventHandshakeFailed, local, err, h.sink.Events())
	}
	return e
}

// counter returns the value of warden_tls_handshakes_total{labels}.
func counter(t testing.TB, m *telemetry.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mt := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range mt.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metric
				}
			}
			if mt.GetCounter() != nil {
				sum += mt.GetCounter().GetValue()
			}
			if mt.GetGauge() != nil {
				sum += mt.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// dialLocal handshakes and does one round trip, returning the client's local
// address so that a failure can be matched with its audit event.
func dialLocal(t testing.TB, addr string, cfg *tls.Config) (local string, err error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	local = raw.LocalAddr().String()
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		return local, err
	}
	return local, roundTrip(c)
}

func serialOf(c *tls.Conn) string {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func certs(leaves ...*pkitest.Leaf) []tls.Certificate {
	out := make([]tls.Certificate, len(leaves))
	for i, l := range leaves {
		out[i] = l.TLS()
	}
	return out
}
