package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/testkit"
)

// dialTLS opens an HTTP/1.1 TLS conn to the gateway.
func (e *env) dialTLS(t testing.TB) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	a, _, _ := e.g.Addrs()
	conn, err := tls.Dial("tcp", a.String(), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

func readEcho(t testing.TB, br *bufio.Reader) (*http.Response, upstreamEcho) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var echo upstreamEcho
	if res.StatusCode == 200 {
		b, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(b, &echo); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
	} else {
		_, _ = io.Copy(io.Discard, res.Body)
	}
	return res, echo
}

// TestHTTP1ServerThroughGateway runs the lean HTTP/1.x server's
// behaviours through the whole gateway (TLS, framing guard, policies,
// upstream), and the same with net/http's server, which they must match:
// pipelined requests answered in order with HSTS on each, Expect:
// 100-continue, a chunked request body, HEAD, and the client going away
// cancelling the upstream request.
func TestHTTP1ServerThroughGateway(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		name := "lean"
		if netHTTP {
			name = "net/http"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, map[string]any{"NetHTTPServer": netHTTP})
			cancelled, arrived := make(chan struct{}), make(chan struct{})
			up := e.upstream.Config.Handler
			e.upstream.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/public/hang" {
					close(arrived)
					<-r.Context().Done() // the gateway cancelled its upstream request
					close(cancelled)
					return
				}
				up.ServeHTTP(w, r)
			})

			t.Run("pipelined", func(t *testing.T) {
				c, br := e.dialTLS(t)
				io.WriteString(c, "GET /public/1 HTTP/1.1\r\nHost: localhost\r\n\r\n"+
					"POST /public/2 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"+
					"GET /public/3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
				for _, want := range []upstreamEcho{{Method: "GET", Path: "/public/1"}, {Method: "POST", Path: "/public/2", BodyLen: 3}, {Method: "GET", Path: "/public/3"}} {
					res, got := readEcho(t, br)
					if res.StatusCode != 200 || got.Method != want.Method || got.Path != want.Path || got.BodyLen != want.BodyLen ||
						res.Header.Get("Strict-Transport-Security") == "" || res.Header.Get("X-Request-Id") == "" {
						t.Fatalf("got %d %+v %v, want %+v", res.StatusCode, got, res.Header, want)
					}
				}
			})
			t.Run("100-continue", func(t *testing.T) {
				c, br := e.dialTLS(t)
				io.WriteString(c, "POST /public/up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
				line, err := br.ReadString('\n')
				if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
					t.Fatalf("got %q %v", line, err)
				}
				// Either the upstream's 100 Continue passed on by the proxy
				// (with the gateway's fields) or the server's own (without),
				// whichever comes first, as with net/http.
				readFields(t, br)
				io.WriteString(c, "data")
				res, got := readEcho(t, br)
				for n := 0; res.StatusCode == http.StatusContinue && n < 2; n++ {
					// net/http's server may send both: its own 100, when the
					// proxy reads the body, and the upstream's, passed on.
					res, got = readEcho(t, br)
				}
				if res.StatusCode != 200 || got.BodyLen != 4 {
					t.Fatalf("got %d %+v", res.StatusCode, got)
				}
			})
			t.Run("chunked body and HEAD", func(t *testing.T) {
				c, br := e.dialTLS(t)
				io.WriteString(c, "POST /public/c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
				if res, got := readEcho(t, br); res.StatusCode != 200 || got.BodyLen != 5 {
					t.Fatalf("got %d %+v", res.StatusCode, got)
				}
				io.WriteString(c, "HEAD /public/h HTTP/1.1\r\nHost: localhost\r\n\r\nGET /public/after HTTP/1.1\r\nHost: localhost\r\n\r\n")
				res, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
				if err != nil || res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") == "" {
					t.Fatalf("HEAD: %v %v", res, err)
				}
				res.Body.Close()
				if res, got := readEcho(t, br); res.StatusCode != 200 || got.Path != "/public/after" {
					t.Fatalf("after HEAD: %d %+v", res.StatusCode, got)
				}
			})
			t.Run("client gone cancels upstream", func(t *testing.T) {
				c, _ := e.dialTLS(t)
				io.WriteString(c, "GET /public/hang HTTP/1.1\r\nHost: localhost\r\n\r\n")
				<-arrived
				c.Close()
				select {
				case <-cancelled:
				case <-time.After(10 * time.Second):
					t.Fatal("the upstream request was not cancelled")
				}
			})
		})
	}
}

// readFields reads field lines up to and including the empty line.
func readFields(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.String()
		}
	}
}

// TestHTTP1ServerErrorsCarryHSTS: a request the server itself refuses
// (here a malformed request line, which the framing guard lets through)
// is answered with HSTS, through the deny path, on the lean path
// (TestLeanServerRefusalsThroughDenyPath checks the rest of it).
func TestHTTP1ServerErrorsCarryHSTS(t *testing.T) {
	e := newEnv(t, nil)
	out := e.rawRequest(t, "GET /public/x HTTP/1.1 extra\r\nHost: localhost\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if res.StatusCode != 400 || res.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("status %d, header %v", res.StatusCode, res.Header)
	}
	if p := readProblem(t, res); p.Reason != "malformed_request" {
		t.Fatalf("reason %s", p.Reason)
	}
	if e.hits.Load() != 0 {
		t.Fatal("the upstream saw the request")
	}
}

// keepAliveVariants are the serving paths the keep-alive benchmarks
// compare in one run: net/http's server with httputil.ReverseProxy
// (before), net/http's server with the lean forward path, and the lean
// server with the lean forward path (the default).
var keepAliveVariants = []struct {
	name             string
	netHTTP, rpxOnly bool
}{{"nethttp+reverseproxy", true, true}, {"nethttp+leanforward", true, false}, {"h1server+leanforward", false, false}}

// keepAliveClient is a minimal HTTP/1.1 client on one kept-alive TLS
// conn: the client's own cost stays small and the same for every variant.
type keepAliveClient struct {
	c   *tls.Conn
	br  *bufio.Reader
	req []byte
}

func (k *keepAliveClient) get(b *testing.B) {
	_ = k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := k.c.Write(k.req); err != nil {
		b.Error(err)
		return
	}
	res, err := http.ReadResponse(k.br, nil)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Errorf("status %d", res.StatusCode)
	}
}

// BenchmarkKeepAlive measures one kept-alive HTTP/1.1 GET at a time
// through the whole gateway (TLS, framing guard, routing, policies, the
// upstream hop): latency-bound.
func BenchmarkKeepAlive(b *testing.B) {
	for _, v := range keepAliveVariants {
		b.Run(v.name, func(b *testing.B) {
			e := newEnv(b, map[string]any{"NetHTTPServer": v.netHTTP, "ReverseProxyOnly": v.rpxOnly})
			c, br := e.dialTLS(b)
			k := &keepAliveClient{c: c, br: br, req: []byte("GET /public/bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n")}
			k.get(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				k.get(b)
			}
		})
	}
}

// BenchmarkKeepAliveParallel is BenchmarkKeepAlive with GOMAXPROCS×4
// kept-alive conns at once: throughput-bound, so ns/op is the CPU cost
// of a request (gateway, client and upstream together).
func BenchmarkKeepAliveParallel(b *testing.B) {
	for _, v := range keepAliveVariants {
		b.Run(v.name, func(b *testing.B) {
			e := newEnv(b, map[string]any{"NetHTTPServer": v.netHTTP, "ReverseProxyOnly": v.rpxOnly})
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, br := e.dialTLS(b)
				k := &keepAliveClient{c: c, br: br, req: []byte("GET /public/bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n")}
				for pb.Next() {
					k.get(b)
				}
			})
		})
	}
}

// rawUpstream is a TLS upstream that answers every bodiless request on
// a kept-alive conn with a fixed 97-byte JSON body, as bench/backend does,
// without net/http: the benchmark's allocations are then the gateway's
// (and the client's ReadResponse).
func rawUpstream(b *testing.B, e *env) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{e.upstreamCert.TLS()}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"ok":true,"service":"bench-backend","message":"hello from the upstream","padding":"xxxxxxxxx"}` + "\n"
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	testkit.Serve(b, ln, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			for { // the request's header block; the benchmark sends no body
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
	return "https://" + ln.Addr().String()
}

// BenchmarkKeepAliveRawUpstream is BenchmarkKeepAlive against rawUpstream:
// allocs/op is close to the gateway's own per-request allocations.
func BenchmarkKeepAliveRawUpstream(b *testing.B) {
	for _, v := range keepAliveVariants {
		b.Run(v.name, func(b *testing.B) {
			e := newEnvWith(b, map[string]any{"NetHTTPServer": v.netHTTP, "ReverseProxyOnly": v.rpxOnly}, func(e *env) {
				e.vars["UpstreamURL"] = rawUpstream(b, e)
			})
			c, br := e.dialTLS(b)
			k := &keepAliveClient{c: c, br: br, req: []byte("GET /ro/bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n")}
			k.get(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				k.get(b)
			}
		})
	}
}

// TestInterimResponsesKeepGatewayFields: an upstream that answers with a
// 103 carrying its own Strict-Transport-Security (max-age=0, which would
// switch HSTS off in browsers) cannot take the gateway's HSTS off the 103
// nor the final response, nor drop the request ID, on HTTP/1.1 (the lean
// forward path) and HTTP/2 (ReverseProxy, which clears the header map
// after each interim response).
func TestInterimResponsesKeepGatewayFields(t *testing.T) {
	e := newEnv(t, nil)
	const hsts = "max-age=63072000; includeSubDomains"
	e.upstream.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=0")
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "ok")
	})
	for _, h2 := range []bool{false, true} {
		var interim []http.Header
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			interim = append(interim, http.Header(h).Clone())
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", e.httpsURL("/public/hints"), nil)
		res, err := e.clientWith(nil, h2).Do(req)
		if err != nil {
			t.Fatalf("h2 %v: %v", h2, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Values("Strict-Transport-Security")[0] != hsts ||
			len(res.Header.Values("Strict-Transport-Security")) != 1 || res.Header.Get("X-Request-Id") == "" {
			t.Errorf("h2 %v: final %d, HSTS %q, request ID %q", h2, res.StatusCode, res.Header.Values("Strict-Transport-Security"), res.Header.Get("X-Request-Id"))
		}
		if len(interim) != 1 {
			t.Fatalf("h2 %v: %d interim responses, want the 103", h2, len(interim))
		}
		if got := interim[0].Values("Strict-Transport-Security"); len(got) != 1 || got[0] != hsts {
			t.Errorf("h2 %v: the 103 carries HSTS %q, want only the gateway's", h2, got)
		}
	}
}
