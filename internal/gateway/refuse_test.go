package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/testkit"
)

// refusalCase is a raw request the gateway refuses before any route, and
// what the refusal must be.
type refusalCase struct {
	name, raw   string
	method      string // the method the client sent, for reading the answer ("" GET)
	status      int
	reason      string
	event       string // audit event type
	http10      bool   // the answer's status line is HTTP/1.0 (to an HTTP/1.0 request)
	path        string // the audit event's path field: "" when the request did not parse
	lineDetails string // the audit event's detail, if set
}

// TestLeanServerRefusalsThroughDenyPath: the requests the lean HTTP/1.x
// server refuses itself, before the gateway's handler runs (it cannot
// parse them, or net/http's checks, the version or Expect fail), get what
// every refusal gets: problem+json with the reason and the request ID
// (header and body), HSTS, Connection: close and the connection closed,
// an audit event (a JSON line) with the reason and the client's address,
// warden_denies_total and warden_requests_total under the no-route
// labels. The smuggling shapes (bare LF, obs-fold, space before the
// colon, NUL, a transfer coding other than chunked, oversized headers)
// never reach the lean server: the framing guard refuses them first, as
// ambiguous_framing or headers_too_large, through the same path, which
// the same assertions check.
func TestLeanServerRefusalsThroughDenyPath(t *testing.T) {
	e := newEnv(t, nil)
	const guard, denied = "request_smuggling_refused", "request_denied"
	tests := []refusalCase{
		// The lean server's own refusals (http.ReadRequest's errors).
		{name: "no version", raw: "GET /public/x\r\n\r\n", status: 400, reason: "malformed_request", event: denied, lineDetails: "malformed request line"},
		{name: "junk after the version", raw: "GET /public/x HTTP/1.1 extra\r\nHost: localhost\r\n\r\n", status: 400, reason: "malformed_request", event: denied, lineDetails: "malformed HTTP version"},
		{name: "lower-case version", raw: "GET /public/x http/1.1\r\nHost: localhost\r\n\r\n", status: 400, reason: "malformed_request", event: denied},
		{name: "method not a token", raw: "G(T /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n", status: 400, reason: "malformed_request", event: denied, lineDetails: "invalid method"},
		{name: "target not a path", raw: "GET public/x HTTP/1.1\r\nHost: localhost\r\n\r\n", status: 400, reason: "malformed_request", event: denied, lineDetails: "invalid request target"},
		// checkRequest's (the request parsed: its method and path are known).
		{name: "space in Host", raw: "GET /public/x HTTP/1.1\r\nHost: local host\r\n\r\n", status: 400, reason: "malformed_request", event: denied, path: "/public/x", lineDetails: "malformed Host header"},
		{name: "quote in Host", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\"@evil\r\n\r\n", status: 400, reason: "malformed_request", event: denied, path: "/public/x"},
		{name: "HTTP/1.0 with a bad Host", raw: "GET /public/x HTTP/1.0\r\nHost: a b\r\n\r\n", status: 400, reason: "malformed_request", event: denied, path: "/public/x", http10: true},
		{name: "h2 preface over HTTP/1.1", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 400, reason: "malformed_request", event: denied, lineDetails: "missing required Host header"},
		{name: "HEAD with a bad Host", raw: "HEAD /public/x HTTP/1.1\r\nHost: a b\r\n\r\n", method: "HEAD", status: 400, reason: "malformed_request", event: denied, path: "/public/x"},
		// Version and Expect.
		{name: "HTTP/2.0 request line", raw: "GET /public/x HTTP/2.0\r\nHost: localhost\r\n\r\n", status: 505, reason: "http_version_not_supported", event: denied, path: "/public/x"},
		{name: "HTTP/3.0 with a body", method: "POST", raw: "POST /public/x HTTP/3.0\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc", status: 505, reason: "http_version_not_supported", event: denied, path: "/public/x"},
		{name: "unknown Expect", method: "POST", raw: "POST /public/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nExpect: magic\r\n\r\nabc", status: 417, reason: "expectation_failed", event: denied, path: "/public/x"},
		// The framing guard's, before the lean server.
		{name: "bare LF", raw: "GET /public/x HTTP/1.1\nHost: localhost\n\n", status: 400, reason: "ambiguous_framing", event: guard},
		{name: "obs-fold", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n", status: 400, reason: "ambiguous_framing", event: guard},
		{name: "obs-fold into Host", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\r\n X: y\r\n\r\n", status: 400, reason: "ambiguous_framing", event: guard},
		{name: "space before colon", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A : b\r\n\r\n", status: 400, reason: "ambiguous_framing", event: guard},
		{name: "NUL in a value", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n", status: 400, reason: "ambiguous_framing", event: guard},
		{name: "gzip transfer coding", raw: "POST /public/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", status: 400, reason: "ambiguous_framing", event: guard},
		{name: "oversized headers", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", status: 431, reason: "headers_too_large", event: denied},
	}
	a, _, _ := e.g.Addrs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefusal(t, e, a.String(), tt)
		})
	}
	if n := e.hits.Load(); n != 0 {
		t.Fatalf("the upstream saw %d requests", n)
	}
}

// TestLeanServerBackstopRefusals: a transfer coding other than chunked
// (501) and a header block over the lean server's own limit (431) are
// refused by the framing guard first; the lean server's refusals of them,
// with the gateway's hook, are checked on a listener without the guard
// (TLS still): the 431 recorded as the guard's is.
func TestLeanServerBackstopRefusals(t *testing.T) {
	e := newEnv(t, nil)
	leaf := e.ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := e.g.newH1Server(e.g.Config().Server.HTTPS)
	testkit.Serve(t, ln, func(c net.Conn) {
		if c.(*tls.Conn).Handshake() != nil {
			c.Close()
			return
		}
		_ = srv.ServeConn(c)
	})
	t.Cleanup(func() { srv.Close() })
	for _, tt := range []refusalCase{
		{name: "gzip transfer coding", raw: "POST /public/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501, reason: "unsupported_transfer_encoding", event: "request_denied"},
		{name: "chunked, then gzip", raw: "POST /public/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 501, reason: "unsupported_transfer_encoding", event: "request_denied"},
		{name: "oversized headers", raw: "GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", status: 431, reason: "headers_too_large", event: "request_denied", lineDetails: "the request headers exceed the limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkRefusal(t, e, ln.Addr().String(), tt)
		})
	}
}

// checkRefusal sends tt.raw on a new TLS conn to addr and checks the
// refusal, its audit event and its metrics.
func checkRefusal(t *testing.T, e *env, addr string, tt refusalCase) {
	t.Helper()
	code := strconv.Itoa(tt.status)
	requestsBefore := counter(t, e, "requests", "-", code)
	deniesBefore := counter(t, e, "denies", "-", tt.reason)

	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	client := conn.LocalAddr().String()
	if _, err := io.WriteString(conn, tt.raw); err != nil {
		t.Fatal(err)
	}
	// Everything up to the gateway's close: a timeout here is a conn left
	// open.
	b, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection was not closed after %q", b)
	}
	out := string(b)
	method := tt.method
	if method == "" {
		method = "GET"
	}
	br := bufio.NewReader(strings.NewReader(out))
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("no response: %v (%q)", err, out)
	}
	if res.StatusCode != tt.status {
		t.Fatalf("status %d, want %d: %q", res.StatusCode, tt.status, out)
	}
	if wantProto := map[bool]string{false: "HTTP/1.1 ", true: "HTTP/1.0 "}[tt.http10]; !strings.HasPrefix(out, wantProto) {
		t.Errorf("status line %q, want %s", strings.SplitN(out, "\r\n", 2)[0], wantProto)
	}
	if got := res.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != e.g.rt.Load().hsts {
		t.Errorf("HSTS %q", got)
	}
	if !strings.Contains(out, "\r\nConnection: close\r\n") {
		t.Errorf("no Connection: close in %q", out)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	id := res.Header.Get("X-Request-Id")
	if len(id) != 24 {
		t.Fatalf("X-Request-Id %q", id)
	}
	if method == "HEAD" {
		if rest, _ := io.ReadAll(res.Body); len(rest) != 0 || res.ContentLength <= 0 {
			t.Fatalf("HEAD: Content-Length %d, body %q", res.ContentLength, rest)
		}
		if tail, _ := io.ReadAll(br); len(tail) != 0 {
			t.Fatalf("bytes after the HEAD answer: %q", tail)
		}
	} else {
		p := readProblem(t, res) // checks the body's request_id against the header
		if p.Reason != tt.reason || p.RequestID != id {
			t.Fatalf("problem %+v, want reason %s and request ID %s", p, tt.reason, id)
		}
		if tail, _ := io.ReadAll(br); len(tail) != 0 {
			t.Fatalf("a second answer: %q", tail)
		}
	}

	ev := e.waitEvent(func(ev audit.Event) bool { return ev.RequestID == id })
	if ev.Type != tt.event || ev.Reason != tt.reason || ev.Status != tt.status || ev.Remote != client {
		t.Errorf("audit event %+v, want %s %s %d from %s", ev, tt.event, tt.reason, tt.status, client)
	}
	if tt.lineDetails != "" && ev.Detail != tt.lineDetails {
		t.Errorf("audit detail %q, want %q", ev.Detail, tt.lineDetails)
	}
	if tt.path != "" && (ev.Fields["path"] != tt.path || ev.Fields["method"] != method) {
		t.Errorf("audit fields %v, want %s %s", ev.Fields, method, tt.path)
	}
	if line := auditLine(t, e, id); line["reason"] != tt.reason || line["remote"] != client || line["type"] != tt.event {
		t.Errorf("audit line %v", line)
	}
	if got := counter(t, e, "requests", "-", code); got != requestsBefore+1 {
		t.Errorf(`warden_requests_total{route="-",code=%q} went from %v to %v`, code, requestsBefore, got)
	}
	if got := counter(t, e, "denies", "-", tt.reason); got != deniesBefore+1 {
		t.Errorf(`warden_denies_total{route="-",reason=%q} went from %v to %v`, tt.reason, deniesBefore, got)
	}
}

// auditLine returns the audit file's JSON line of the request id.
func auditLine(t *testing.T, e *env, id string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(e.auditFile)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		var m map[string]any
		if line == "" || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["request_id"] == id {
			return m
		}
	}
	t.Fatalf("no audit line for %s in\n%s", id, b)
	return nil
}

// counter reads warden_requests_total{route,code} ("requests") or
// warden_denies_total{route,reason} ("denies").
func counter(t *testing.T, e *env, which, route, label string) float64 {
	t.Helper()
	vec := e.g.metrics.Requests
	if which == "denies" {
		vec = e.g.metrics.Denies
	}
	var d dto.Metric
	if err := vec.WithLabelValues(route, label).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// TestShutdownClosesSilentConns: an HTTP/1.x connection that never sends
// a byte does not hold Shutdown for read_header_timeout: the lean server
// closes it when its 5 s grace ends (the test waits for it); a kept-alive
// one is closed at once; a request in flight is still answered.
func TestShutdownClosesSilentConns(t *testing.T) {
	e := newEnv(t, map[string]any{"ReadHeaderTimeout": "1h", "IdleTimeout": "1h"})
	arrived, free := e.holdUpstream(t, "/public/wait")
	_, silentBr := e.dialTLS(t)  // handshaken, never sends a byte
	kept, keptBr := e.dialTLS(t) // one request, then idle
	io.WriteString(kept, "GET /public/1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if res, _ := readEcho(t, keptBr); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	busy, busyBr := e.dialTLS(t)
	io.WriteString(busy, "GET /public/wait HTTP/1.1\r\nHost: localhost\r\n\r\n")
	<-arrived

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- e.g.Shutdown(ctx)
	}()
	for name, br := range map[string]*bufio.Reader{"silent": silentBr, "kept-alive": keptBr} {
		if b, err := io.ReadAll(br); err != nil && !errors.Is(err, io.EOF) || len(b) != 0 {
			t.Fatalf("%s conn: %q, %v (want closed without an answer)", name, b, err)
		}
	}
	free()
	res, echo := readEcho(t, busyBr)
	if res.StatusCode != 200 || echo.Path != "/public/wait" || !res.Close {
		t.Fatalf("in-flight request: %d %+v close=%v", res.StatusCode, echo, res.Close)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits")
	}
}
