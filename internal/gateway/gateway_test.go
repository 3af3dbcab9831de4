package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
)

func TestProxiesOverHTTP1AndHTTP2(t *testing.T) {
	e := newEnv(t, nil)
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.httpsURL("/public/hello?x=1"), nil)
			req.Header.Set("X-Forwarded-For", "6.6.6.6") // an untrusted peer's claim
			req.Header.Set("Forwarded", "for=6.6.6.6")
			resp, err := e.clientWith(nil, h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if want := 2; h2 && resp.ProtoMajor != want || !h2 && resp.ProtoMajor != 1 {
				t.Fatalf("protocol %s", resp.Proto)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
				t.Errorf("HSTS = %q (the upstream's max-age=0 must not pass)", got)
			}
			if resp.Header.Get("X-Upstream-Secret") != "" {
				t.Error("response header policy did not remove X-Upstream-Secret")
			}
			var echo upstreamEcho
			if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
				t.Fatal(err)
			}
			if echo.Path != "/public/hello" || echo.Header.Get("X-Policy") != "one" {
				t.Errorf("upstream saw %+v", echo)
			}
			if xff := echo.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For reaching upstream = %q, want only the real peer", xff)
			}
			if fwd := echo.Header.Get("Forwarded"); strings.Contains(fwd, "6.6.6.6") || !strings.Contains(fwd, "for=127.0.0.1") {
				t.Errorf("Forwarded reaching upstream = %q", fwd)
			}
			if echo.Header.Get("X-Forwarded-Proto") != "https" || echo.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") {
				t.Errorf("forwarding headers: %v", echo.Header)
			}
		})
	}
}

// TestForwardHeadersConfig: an upstream's forward_headers choose the
// forwarding fields it receives, over HTTP/1.1 and HTTP/2 and on both
// forward paths; a client's own field of an omitted name never gets
// through; a reload that drops the setting sends them all again.
func TestForwardHeadersConfig(t *testing.T) {
	fields := []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Request-Id"}
	for _, std := range []bool{false, true} {
		t.Run(fmt.Sprintf("reverseproxy=%v", std), func(t *testing.T) {
			e := newEnv(t, map[string]any{"ForwardHeaders": "[forwarded, x-request-id]", "ReverseProxyOnly": std})
			received := func(h2 bool) http.Header {
				t.Helper()
				req, _ := http.NewRequest("GET", e.httpsURL("/public/f"), nil)
				for _, k := range fields {
					req.Header.Set(k, "client-chosen")
				}
				resp, err := e.clientWith(nil, h2).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var echo upstreamEcho
				if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil || resp.StatusCode != 200 {
					t.Fatalf("status %d, %v", resp.StatusCode, err)
				}
				if got, want := echo.Header.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"); want != "" && got != "" && got != want {
					t.Errorf("upstream's X-Request-Id %q, the client's %q", got, want)
				}
				return echo.Header
			}
			for _, h2 := range []bool{false, true} {
				h := received(h2)
				for _, k := range fields {
					v := h.Get(k)
					switch k {
					case "Forwarded":
						if !strings.HasPrefix(v, "for=127.0.0.1;proto=https;host=") {
							t.Errorf("h2=%v: Forwarded = %q", h2, v)
						}
					case "X-Request-Id":
						if v == "" || v == "client-chosen" {
							t.Errorf("h2=%v: X-Request-Id = %q", h2, v)
						}
					default:
						if v != "" {
							t.Errorf("h2=%v: %s = %q, want it left out", h2, k, v)
						}
					}
				}
			}

			e.writeConfig(map[string]any{"ForwardHeaders": ""})
			if err := e.g.Reload("test"); err != nil {
				t.Fatal(err)
			}
			h := received(false)
			for _, k := range fields {
				if v := h.Get(k); v == "" || v == "client-chosen" {
					t.Errorf("after reload: %s = %q", k, v)
				}
			}

			e.writeConfig(map[string]any{"ForwardHeaders": "[]"})
			if err := e.g.Reload("test"); err != nil {
				t.Fatal(err)
			}
			h = received(true)
			for _, k := range fields {
				if v := h.Get(k); v != "" {
					t.Errorf("forward_headers []: %s = %q", k, v)
				}
			}
		})
	}
}

func TestDeniesCarryHSTSAndProblemJSON(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, method, path string
		status             int
		reason             string
	}{
		{"no route", "GET", "/nowhere", 404, "no_route"},
		{"wrong method", "POST", "/ro/x", 405, "method_not_allowed"},
		{"client certificate required", "GET", "/secure/x", 401, "client_certificate_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.httpsURL(tt.path), nil)
			resp, err := e.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("Strict-Transport-Security") == "" {
				t.Error("deny without HSTS")
			}
			p := readProblem(t, resp)
			if resp.StatusCode != tt.status || p.Reason != tt.reason {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, p.Reason, tt.status, tt.reason)
			}
			ev := e.waitEvent(func(ev audit.Event) bool { return ev.RequestID == p.RequestID })
			if ev.Reason != tt.reason || ev.Status != tt.status {
				t.Errorf("audit event %+v", ev)
			}
		})
	}
	if e.hits.Load() != 0 {
		t.Fatalf("upstream reached %d times by denied requests", e.hits.Load())
	}
}

func TestClientCertificateRoute(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.clientWith(e.clientCert, false).Get(e.httpsURL("/secure/data"))
	if err != nil {
		t.Fatal(err)
	}
	var echo upstreamEcho
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with a valid client certificate: %d", resp.StatusCode)
	}
	if id := echo.Header.Get("X-Client-Identity"); !strings.Contains(id, `"consumer":"client-a"`) || echo.Header.Get("Client-Cert") == "" {
		t.Errorf("identity did not reach the upstream: %v", echo.Header)
	}
	// A certificate from another CA gets a precise 401, not a TLS alert.
	other := newEnv(t, nil).clientCert
	resp, err = e.clientWith(other, false).Get(e.httpsURL("/secure/data"))
	if err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "unknown_ca" {
		t.Fatalf("unknown CA: %d %s", resp.StatusCode, p.Reason)
	}
	ev := e.waitEvent(audit.OfType("client_cert_rejected"))
	if ev.Reason != "unknown_ca" || ev.Fields["subject"] == nil {
		t.Errorf("event %+v", ev)
	}

	// A client cannot make the proxy drop the gateway's own identity
	// header by naming it in Connection.
	req, _ := http.NewRequest("GET", e.httpsURL("/secure/data"), nil)
	req.Header.Set("Connection", "X-Client-Identity, Client-Cert")
	resp, err = e.clientWith(e.clientCert, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	echo = upstreamEcho{}
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if !strings.Contains(echo.Header.Get("X-Client-Identity"), `"consumer":"client-a"`) || echo.Header.Get("Client-Cert") == "" {
		t.Fatalf("Connection removed the gateway's identity headers: %v", echo.Header)
	}

	// Identity headers sent by a client never reach an upstream, on any
	// route, also spelled with underscores (CGI upstreams read them alike).
	req, _ = http.NewRequest("GET", e.httpsURL("/public/x"), nil)
	req.Header.Set("Client-Cert", ":Zm9yZ2Vk:")
	req.Header.Set("X-Client-Identity", `{"consumer":"admin"}`)
	req.Header["X_Client_Identity"] = []string{`{"consumer":"admin"}`}
	req.Header["Client_Cert"] = []string{":Zm9yZ2Vk:"}
	resp, err = e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	echo = upstreamEcho{}
	_ = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if echo.Header.Get("Client-Cert") != "" || echo.Header.Get("X-Client-Identity") != "" ||
		len(echo.Header["X_Client_Identity"]) > 0 || len(echo.Header["Client_Cert"]) > 0 {
		t.Fatalf("forged identity headers reached the upstream: %v", echo.Header)
	}
}

// rawRequest sends raw bytes over TLS and returns the response(s) text.
func (e *env) rawRequest(t *testing.T, raw string) string {
	t.Helper()
	a, _, _ := e.g.Addrs()
	conn, err := tls.Dial("tcp", a.String(), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn) // the gateway closes the connection after a deny
	return string(b)
}

func TestSmugglingAndTraversalRefused(t *testing.T) {
	e := newEnv(t, nil)
	smuggled := "GET /public/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
	tests := []struct {
		name, raw, reason string
	}{
		{"CL and TE", "POST /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, "ambiguous_framing"},
		{"duplicate CL", "POST /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + smuggled, "ambiguous_framing"},
		{"obfuscated TE", "POST /public/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n" + smuggled, "ambiguous_framing"},
		{"space before colon", "GET /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length : 0\r\n\r\n" + smuggled, "ambiguous_framing"},
		{"two Hosts", "GET /public/a HTTP/1.1\r\nHost: localhost\r\nHost: internal.example\r\n\r\n" + smuggled, "ambiguous_framing"},
		{"absolute-form without Host", "GET https://localhost/public/a HTTP/1.1\r\n\r\n" + smuggled, "ambiguous_framing"},
		{"dot segments", "GET /public/../secure/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "path_not_normalized"},
		{"encoded dot segments", "GET /public/%2e%2e/secure/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "path_not_normalized"},
		{"double slash", "GET /public//secure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "path_not_normalized"},
		{"backslash", "GET /public/..%5csecure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "path_not_normalized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.rawRequest(t, tt.raw)
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
			if err != nil {
				t.Fatalf("no response: %v (%q)", err, out)
			}
			if resp.StatusCode != 400 || resp.Header.Get("Strict-Transport-Security") == "" {
				t.Fatalf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
			}
			if p := readProblem(t, resp); p.Reason != tt.reason {
				t.Fatalf("reason %s, want %s", p.Reason, tt.reason)
			}
			if strings.Count(out, "HTTP/1.1 ") > 1 {
				t.Fatalf("more than one response: the smuggled request was served:\n%s", out)
			}
		})
	}
	if n := e.hits.Load(); n != 0 {
		t.Fatalf("upstream saw %d requests", n)
	}
}

func TestRedirectListenerNeverProxies(t *testing.T) {
	e := newEnv(t, nil)
	_, plain, _ := e.g.Addrs()
	httpsAddr, _, _ := e.g.Addrs()
	port := httpsAddr.(*net.TCPAddr).Port
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{"GET", "POST", "DELETE"} {
		req, _ := http.NewRequest(method, "http://"+plain.String()+"/public/x?a=1&b=2", strings.NewReader("body"))
		req.Host = "localhost"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf("https://localhost:%d/public/x?a=1&b=2", port)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("%s: %d Location %q, want 308 %q", method, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// A Host the gateway has no certificate for is not redirected to: the
	// listener must not be an open redirector for forged Host headers.
	req, _ := http.NewRequest("GET", "http://"+plain.String()+"/public/x", nil)
	req.Host = "evil.example.net"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("forged host: %d Location %q, want 421 without Location", resp.StatusCode, resp.Header.Get("Location"))
	}
	if e.hits.Load() != 0 {
		t.Fatal("the plain-HTTP listener forwarded a request")
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t, map[string]any{"ReadHeaderTimeout": "300ms"})
	t.Run("body too large", func(t *testing.T) {
		resp, err := e.client().Post(e.httpsURL("/public/upload"), "application/octet-stream", strings.NewReader(strings.Repeat("x", 2<<20)))
		if err != nil {
			t.Fatal(err)
		}
		if p := readProblem(t, resp); resp.StatusCode != 413 || p.Reason != "body_too_large" {
			t.Fatalf("%d %s", resp.StatusCode, p.Reason)
		}
	})
	t.Run("chunked body too large", func(t *testing.T) {
		resp, err := e.client().Post(e.httpsURL("/public/upload"), "application/octet-stream", io.LimitReader(zeros{}, 2<<20))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("headers too large", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.httpsURL("/public/x"), nil)
		req.Header.Set("X-Big", strings.Repeat("a", 17<<10)) // the limit is 16KiB
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if p := readProblem(t, resp); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || p.Reason != "headers_too_large" ||
			resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatalf("status %d reason %s", resp.StatusCode, p.Reason)
		}
	})
	t.Run("slow headers cut off", func(t *testing.T) {
		a, _, _ := e.g.Addrs()
		conn, err := tls.Dial("tcp", a.String(), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /public/x HTTP/1.1\r\nHost: localhost\r\n") // and never finish
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(conn)
		if err != nil {
			t.Fatalf("server did not close the connection: %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("slow client held the connection %v", time.Since(start))
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestMetricsOnAdminListener(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.client().Get(e.httpsURL("/public/m"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, _, admin := e.g.Addrs()
	resp, err = e.client().Get("https://" + admin.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("admin response without HSTS")
	}
	for _, want := range []string{
		`warden_requests_total{code="200",route="public"} 1`,
		`warden_request_duration_seconds_bucket{route="public"`,
		`warden_tls_handshakes_total{cipher="TLS_AES_128_GCM_SHA256",result="ok",version="TLS 1.3"}`,
		`warden_certificate_expiry_seconds{name="localhost",serial=`,
		`warden_certificate_expiry_seconds{name="Gateway Test CA",serial=`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	e := newEnv(t, nil)
	// A request in flight: the upstream answers only once released.
	arrived, release := e.holdUpstream(t, "/public/wait")
	got := make(chan int, 1)
	go func() {
		resp, err := e.client().Get(e.httpsURL("/public/wait"))
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	select { // wait until the request is at the upstream
	case <-arrived:
	case code := <-got:
		t.Fatalf("request ended early: %d", code)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.g.Shutdown(ctx)
	}()
	release()
	if code := <-got; code != 200 {
		t.Fatalf("in-flight request got %d during shutdown", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	a, _, _ := e.g.Addrs()
	if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after shutdown")
	}
}

// TestMalformedChunkRefused: a chunked body with a malformed chunk (the
// shape of a smuggling attempt hidden in a body) is refused as the
// client's fault, 400 ambiguous_framing with a request_smuggling_refused
// event, not reported as a failing upstream (502); the request behind it
// is never served. Through the lean server and through net/http's.
func TestMalformedChunkRefused(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		e := newEnv(t, map[string]any{"NetHTTPServer": netHTTP})
		var smuggledSeen atomic.Bool
		up := e.upstream.Config.Handler
		e.upstream.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/public/smuggled" {
				smuggledSeen.Store(true)
			}
			up.ServeHTTP(w, r)
		})
		out := e.rawRequest(t, "POST /public/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"3\r\nabcXX\r\n0\r\n\r\nGET /public/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("net/http %v: no response: %v (%q)", netHTTP, err, out)
		}
		if p := readProblem(t, resp); resp.StatusCode != 400 || p.Reason != "ambiguous_framing" {
			t.Fatalf("net/http %v: %d %s, want 400 ambiguous_framing", netHTTP, resp.StatusCode, p.Reason)
		}
		e.waitEvent(func(ev audit.Event) bool { return ev.Type == "request_smuggling_refused" })
		if strings.Count(out, "HTTP/1.1 ") > 1 || smuggledSeen.Load() {
			t.Fatalf("net/http %v: the request behind the bad chunk was served:\n%s", netHTTP, out)
		}
		if m := e.metrics(); strings.Contains(m, "\nwarden_upstream_errors_total{") {
			t.Fatalf("net/http %v: counted as an upstream failure:\n%s", netHTTP, m)
		}
	}
}

// TestTimeoutsThroughGateway: through the whole gateway (TLS, framing
// guard, lean server), a kept-alive connection left idle is closed at
// idle_timeout, and a client that stops sending its body is cut off at
// read_timeout without the upstream getting a request.
func TestTimeoutsThroughGateway(t *testing.T) {
	e := newEnv(t, map[string]any{"IdleTimeout": "300ms", "ReadTimeout": "600ms"})
	t.Run("idle", func(t *testing.T) {
		c, br := e.dialTLS(t)
		io.WriteString(c, "GET /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if res, _ := readEcho(t, br); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		start := time.Now()
		_, err := io.Copy(io.Discard, br) // the client's deadline is 10 s
		if took := time.Since(start); errors.Is(err, os.ErrDeadlineExceeded) || took < 300*time.Millisecond {
			t.Fatalf("idle conn: %v after %v, want closed after the 300ms idle timeout", err, took)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		before := e.hits.Load()
		c, br := e.dialTLS(t)
		io.WriteString(c, "POST /public/up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nab") // and no more
		_, err := io.Copy(io.Discard, br)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("a client that stopped sending its body was not cut off")
		}
		if e.hits.Load() != before {
			t.Fatal("the upstream got the incomplete request")
		}
	})
}
