package tlsserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/tlsserver"
)

// TestMaxConns: with MaxConns 1, a second client is not handshaken until the
// first connection closes; the gauge follows live connections.
func TestMaxConns(t *testing.T) {
	p := newPKI(t)
	parked := make(chan struct{}, 1)
	opts := tlsserver.WithParkedHook(tlsserver.ListenerOptions{MaxConns: 1}, func() {
		select {
		case parked <- struct{}{}:
		default:
		}
	})
	h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)}, opts)
	open := func() float64 {
		return counter(t, h.metrics, "warden_open_connections", map[string]string{"listener": "test"})
	}
	first, err := dial(t, h.addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	serverSide := <-h.accepted
	// The accept loop is now at the cap, waiting for a slot: it accepts
	// nothing until the first connection closes.
	select {
	case <-parked:
	case <-time.After(5 * time.Second):
		t.Fatal("accept loop did not wait for a slot at the cap")
	}

	// The second client connects (the kernel completes TCP) and sends its
	// ClientHello, then waits for a server that must not answer.
	raw, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	helloSent := make(chan struct{})
	wc := &firstWriteConn{Conn: raw, wrote: helloSent}
	second := make(chan error, 1)
	go func() {
		c := tls.Client(wc, p.clientConfig())
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err := c.Handshake()
		if err == nil {
			err = roundTrip(c)
		}
		c.Close()
		second <- err
	}()
	select {
	case <-helloSent:
	case err := <-second:
		t.Fatalf("second client ended before sending its ClientHello: %v", err)
	}
	select {
	case err := <-second:
		t.Fatalf("connection over the cap was handshaken (err %v)", err)
	case c := <-h.accepted:
		t.Fatalf("connection over the cap was accepted: %v", c.RemoteAddr())
	default:
	}
	if n := open(); n != 1 {
		t.Errorf("open connections = %v, want 1", n)
	}

	serverSide.Close() // frees the slot
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("second connection after a slot freed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second connection still waiting after the first closed")
	}
}

// firstWriteConn closes wrote after its first Write (a TLS client's
// ClientHello) has gone out.
type firstWriteConn struct {
	net.Conn
	wrote chan struct{}
	once  sync.Once
}

func (c *firstWriteConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.once.Do(func() { close(c.wrote) })
	return n, err
}

// TestHandshakeTimeout: a client that sends nothing, or half a record, is
// cut off by the server; meanwhile other clients are served.
func TestHandshakeTimeout(t *testing.T) {
	p := newPKI(t)
	h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)},
		tlsserver.ListenerOptions{HandshakeTimeout: 200 * time.Millisecond})
	for _, tt := range []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"partial record header", []byte{0x16, 0x03}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = raw.Read(make([]byte, 1))
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatal("server did not close the silent connection")
			}
			if err == nil {
				t.Fatal("read data from a connection that never handshook")
			}
			if e := h.waitFailure(t, raw.LocalAddr().String()); e.Reason != tlsserver.ReasonTimeout {
				t.Errorf("reason = %q, want %q", e.Reason, tlsserver.ReasonTimeout)
			}
		})
	}
}

// TestSlowClientDoesNotBlock: with a long timeout, a silent connection does
// not delay a normal client.
func TestSlowClientDoesNotBlock(t *testing.T) {
	p := newPKI(t)
	h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)}, tlsserver.ListenerOptions{})
	for range 3 {
		raw, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
	}
	c, err := dial(t, h.addr, p.clientConfig())
	if err != nil {
		t.Fatalf("blocked behind silent clients: %v", err)
	}
	c.Close()
}

// TestPlainHTTP: HTTP sent to the TLS port gets net/http's 400 and an
// audit event with reason not_tls.
func TestPlainHTTP(t *testing.T) {
	p := newPKI(t)
	h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)}, tlsserver.ListenerOptions{})
	raw, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(raw, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if e := h.waitFailure(t, raw.LocalAddr().String()); e.Reason != tlsserver.ReasonNotTLS {
		t.Errorf("reason = %q, want %q", e.Reason, tlsserver.ReasonNotTLS)
	}
}

// TestAuditRateLimited: a burst of failures is fully counted in metrics,
// while audit events stay within the per-second budget (plus at most one
// window rollover during the burst).
func TestAuditRateLimited(t *testing.T) {
	p := newPKI(t)
	h := start(t, tlsserver.Settings{Certificates: certs(p.ecdsaA)}, tlsserver.ListenerOptions{AuditPerSecond: 2})
	const n = 20
	for range n {
		raw, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(raw, "NOT TLS AT ALL\r\n")
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, raw) // until the server closes
		raw.Close()
	}
	failed := map[string]string{"result": "failed"}
	if got := counter(t, h.metrics, "warden_tls_handshakes_total", failed); got != n {
		t.Errorf("failed handshakes counted = %v, want %d", got, n)
	}
	if got := len(h.sink.Events()); got < 1 || got >= n {
		t.Errorf("audit events = %d, want between 1 and %d", got, n-1)
	}
}

// TestHTTP2 serves net/http through the listener: ALPN picks h2 for an
// HTTP/2 client and HTTP/1.1 otherwise; the handler sees the captured
// ClientHello through ConnContext.
func TestHTTP2(t *testing.T) {
	p := newPKI(t)
	addr := startHTTP(t, p)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		name      string
		h2        bool
		wantProto string
	}{
		{"HTTP/2 client", true, "HTTP/2.0"},
		{"HTTP/1.1-only client", false, "HTTP/1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   p.clientConfig(),
				ForceAttemptHTTP2: tt.h2,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return dialer.DialContext(ctx, network, addr) // a.example is the listener
				},
			}
			if !tt.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://a.example/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.Proto != tt.wantProto || !strings.HasPrefix(string(body), tt.wantProto+" sni=a.example") {
				t.Errorf("client proto %s, server said %q; want %s", resp.Proto, body, tt.wantProto)
			}
		})
	}
}

type ctxKey struct{}

// startHTTP serves HTTP through the listener and returns its address.
func startHTTP(t *testing.T, p *testPKI) string {
	t.Helper()
	srv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: certs(p.ecdsaA)})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsserver.NewListener(inner, srv, tlsserver.ListenerOptions{Name: "https"})
	hs := &http.Server{
		TLSConfig: srv.TLSConfig(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hello, _ := r.Context().Value(ctxKey{}).(tlsserver.ClientHello)
			_, _ = io.WriteString(w, r.Proto+" sni="+hello.ServerName)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if hello, ok := tlsserver.ClientHelloOf(tc); ok {
					return context.WithValue(ctx, ctxKey{}, hello)
				}
			}
			return ctx
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		<-done
		_ = srv.Close()
	})
	return ln.Addr().String()
}

// TestCloseAbortsHandshakes: Close returns promptly with handshakes pending
// and Accept then reports net.ErrClosed.
func TestCloseAbortsHandshakes(t *testing.T) {
	p := newPKI(t)
	srv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: certs(p.ecdsaA)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsserver.NewListener(inner, srv, tlsserver.ListenerOptions{HandshakeTimeout: time.Minute})
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	accepted := make(chan error, 1)
	go func() { _, err := ln.Accept(); accepted <- err }()
	closed := make(chan error, 1)
	go func() { closed <- ln.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a pending handshake")
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Error("pending connection left open after Close")
	}
}
