package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/testkit"
)

// forwardPath is one way a request reaches the upstream. Each types the
// upstream's failures in its own code: the lean transport (pconn) on the
// first two, net/http's transport (stdTransport) on the third.
type forwardPath struct {
	name string
	// h2Client: the client speaks HTTP/2, so the request takes
	// httputil.ReverseProxy (leanEligible), which sends it with the lean
	// transport unless http2Hop.
	h2Client bool
	// http2Hop: UpstreamConfig.HTTP2, so every request goes through
	// net/http's transport; the raw upstreams here do not offer h2, and
	// the hop is HTTP/1.1.
	http2Hop bool
}

var forwardPaths = []forwardPath{
	{name: "lean"},
	{name: "reverse proxy", h2Client: true},
	{name: "net/http transport", h2Client: true, http2Hop: true},
}

// upstream returns the path's proxy to target, verified with p's root.
func (fp forwardPath) upstream(t *testing.T, p *testPKI, target *url.URL, headerTimeout time.Duration) *Upstream {
	t.Helper()
	u := mustNew(t, UpstreamConfig{Name: "api", URL: target, ServerName: upstreamName, RootCAs: p.root.Pool(),
		HTTP2: fp.http2Hop, ResponseHeaderTimeout: headerTimeout})
	u.proxy.ErrorLog = log.New(io.Discard, "", 0) // ReverseProxy logs the body failures tested here
	if (u.h1 != nil) == fp.http2Hop {
		t.Fatalf("%s: lean transport in use: %v", fp.name, u.h1 != nil)
	}
	return u
}

// serve sends one request through u on the path and returns what the
// client got.
func (fp forwardPath) serve(u *Upstream, e *env, method, path, body string) *recorder {
	r := e.request(method, "https://gw.example"+path, "192.0.2.1:1234")
	if fp.h2Client {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	}
	if body != "" {
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	}
	rec := &recorder{ResponseRecorder: httptest.NewRecorder()}
	u.ServeHTTP(rec, r)
	return rec
}

// recorder is an httptest.ResponseRecorder that counts informational
// responses rather than taking the first for the final one, as a server
// would.
type recorder struct {
	*httptest.ResponseRecorder
	interim int
}

func (r *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		r.interim++
		return
	}
	r.ResponseRecorder.WriteHeader(code)
}

// rawUpstream is an HTTP/1.1 upstream over TLS (with the test PKI's good
// certificate) that answers a request with the bytes it is given, as they
// are: a broken server, or someone tampering with the hop. A request for
// /next gets a valid answer, "fine", on any connection.
type rawUpstream struct {
	url    *url.URL
	served atomic.Int64 // requests answered with the raw bytes
}

// After writing the raw answer, a rawUpstream keeps the connection open
// until the test ends (hold), closes it (close), or resets it (reset).
const (
	hold = iota
	closeConn
	resetConn
)

func newRawUpstream(t *testing.T, p *testPKI, raw string, then int) *rawUpstream {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.good.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	ru := &rawUpstream{url: &url.URL{Scheme: "https", Host: ln.Addr().String()}}
	done := make(chan struct{})
	testkit.Serve(t, ln, func(c net.Conn) { ru.serveConn(c.(*tls.Conn), raw, then, done) })
	t.Cleanup(func() { close(done) })
	return ru
}

func (ru *rawUpstream) serveConn(c *tls.Conn, raw string, then int, done <-chan struct{}) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if req.URL.Path == "/next" {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
			continue
		}
		ru.served.Add(1)
		_, _ = io.WriteString(c, raw)
		switch then {
		case closeConn:
			return
		case resetConn:
			// Under TLS: no close_notify, the TCP connection reset.
			tc := c.NetConn().(*net.TCPConn)
			_ = tc.SetLinger(0)
			_ = tc.Close()
			return
		default:
			select { // open: only its bytes may decide
			case <-done:
			case <-time.After(30 * time.Second):
			}
			return
		}
	}
}

// wantFailure asserts the client got status with reason as problem+json,
// and that the one audit event, of the reason's type, has a cause
// containing cause, and that the metric counted it once.
func wantFailure(t *testing.T, e *env, rec *recorder, status int, reason, cause string) {
	t.Helper()
	wantProblem(t, rec.ResponseRecorder, status, reason)
	ev := e.onlyEvent(t, reason)
	if got, _ := ev.Fields["cause"].(string); ev.Reason != reason || ev.Status != status || got == "" || !strings.Contains(got, cause) {
		t.Fatalf("audit event %+v, want reason %s, status %d, a cause with %q", ev, reason, status, cause)
	}
	line, err := json.Marshal(ev) // as the audit file has it
	if err != nil || !strings.Contains(string(line), `"reason":"`+reason+`"`) || !strings.Contains(string(line), `"cause":`) {
		t.Fatalf("audit line %s (%v)", line, err)
	}
	if n := e.upstreamErrors(t, "api", reason); n != 1 {
		t.Fatalf("warden_upstream_errors_total{reason=%q} = %v, want 1", reason, n)
	}
}

// smuggled is what an upstream appends to a malformed answer to get a
// second response of its making onto the connection.
const smuggled = "HTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nContent-Length: 8\r\n\r\nsmuggled"

// TestUpstreamProtocolError: on every forward path, a response that
// cannot be parsed or violates HTTP framing is refused with 502
// upstream_protocol_error, its cause in the audit event, counted in
// warden_upstream_errors_total; nothing of it reaches the client (no
// field, no byte: the smuggled answer behind it neither), the connection
// is not reused, and the next request gets a clean answer.
func TestUpstreamProtocolError(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		name, raw, cause string
	}{
		{name: "bad status line", raw: "HTTP/1.1 2OO OK\r\nX-Leak: upstream\r\nContent-Length: 4\r\n\r\nevil", cause: "malformed HTTP status code"},
		{name: "not HTTP", raw: "SSH-2.0-OpenSSH_9.6\r\n\r\n", cause: "malformed HTTP response"},
		{name: "bad version", raw: "HTTP/1.x 200 OK\r\nContent-Length: 4\r\n\r\nevil", cause: "malformed HTTP version"},
		{name: "NUL in a field", raw: "HTTP/1.1 200 OK\r\nX-Leak: a\x00b\r\nContent-Length: 4\r\n\r\nevil", cause: "malformed MIME header line"},
		{name: "field without colon", raw: "HTTP/1.1 200 OK\r\nX-Leak\r\nContent-Length: 4\r\n\r\nevil", cause: "malformed MIME header"},
		{name: "oversized header section", raw: "HTTP/1.1 200 OK\r\nX-Leak: " + strings.Repeat("a", maxResponseHeaderBytes) + "\r\nContent-Length: 4\r\n\r\nevil", cause: "exceed"},
		{name: "two different lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 12\r\n\r\nevil", cause: "multiple Content-Length"},
		{name: "negative length", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nevil", cause: "bad Content-Length"},
		{name: "unsupported transfer coding", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n", cause: "unsupported transfer encoding"},
		{name: "chunked twice", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n", cause: "transfer encoding"},
		{name: "status above 599", raw: "HTTP/1.1 600 Odd\r\nX-Leak: upstream\r\nContent-Length: 4\r\n\r\nevil", cause: "outside 100-599"},
		{name: "status below 100", raw: "HTTP/1.1 099 Odd\r\nX-Leak: upstream\r\nContent-Length: 4\r\n\r\nevil", cause: "outside 100-599"},
		{name: "switch without an upgrade request", raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n", cause: "switch"},
		{name: "bare switch without an upgrade request", raw: "HTTP/1.1 101 Switching Protocols\r\n\r\n", cause: "switch"},
		{name: "interim response flood", raw: strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", max1xxResponses+1) + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil", cause: "too many 1xx"},
	} {
		for _, fp := range forwardPaths {
			t.Run(tt.name+"/"+fp.name, func(t *testing.T) {
				ru := newRawUpstream(t, p, tt.raw+smuggled, hold)
				u := fp.upstream(t, p, ru.url, 0)
				e := newEnv()
				rec := fp.serve(u, e, "GET", "/evil", "")
				wantFailure(t, e, rec, http.StatusBadGateway, ReasonProtocolError, tt.cause)
				if h := rec.Header(); h.Get("X-Leak") != "" || h.Get("X-Smuggled") != "" || h.Get("Upgrade") != "" ||
					strings.Contains(rec.Body.String(), "evil") || strings.Contains(rec.Body.String(), "smuggled") {
					t.Fatalf("the upstream's answer reached the client: %v %q", h, rec.Body)
				}
				if rec.interim > max1xxResponses {
					t.Fatalf("%d interim responses passed on", rec.interim)
				}
				next := fp.serve(u, newEnv(), "GET", "/next", "")
				if next.Code != http.StatusOK || next.Body.String() != "fine" || next.Header().Get("X-Smuggled") != "" {
					t.Fatalf("next request: %d %q %v", next.Code, next.Body, next.Header())
				}
				if u.h1 != nil {
					wantDials(t, u, 2)
				}
			})
		}
	}
}

// TestInterimResponsesBounded: every forward path passes on up to
// max1xxResponses interim (1xx) responses before the final one, and
// refuses the exchange at the next (upstream_protocol_error), over an
// HTTP/1.1 hop and an HTTP/2 one: an upstream, or someone on the hop,
// cannot keep a client busy with an endless stream of them.
func TestInterimResponsesBounded(t *testing.T) {
	p := newPKI(t)
	exact := strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", max1xxResponses) +
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine"
	for _, fp := range forwardPaths {
		t.Run("HTTP/1.1 hop, the most allowed/"+fp.name, func(t *testing.T) {
			ru := newRawUpstream(t, p, exact, hold)
			rec := fp.serve(fp.upstream(t, p, ru.url, 0), newEnv(), "GET", "/x", "")
			if rec.Code != http.StatusOK || rec.Body.String() != "fine" || rec.interim != max1xxResponses {
				t.Fatalf("status %d, body %q, %d interim responses passed on; want 200, fine, %d", rec.Code, rec.Body, rec.interim, max1xxResponses)
			}
		})
	}
	for _, n := range []int{max1xxResponses, max1xxResponses + 1, 50} {
		t.Run(fmt.Sprintf("HTTP/2 hop, %d interim", n), func(t *testing.T) {
			b := newBackend(t, p.good.TLS(), func(s *httptest.Server) { s.EnableHTTP2 = true }, func(w http.ResponseWriter, r *http.Request) {
				// Set once: net/http's HTTP/2 server encodes a 1xx's
				// fields from this map on another goroutine.
				w.Header().Set("Link", "</a.css>; rel=preload")
				for range n {
					w.WriteHeader(http.StatusEarlyHints)
				}
				_, _ = io.WriteString(w, "fine")
			})
			cfg := p.config(t, b)
			cfg.HTTP2 = true
			u := mustNew(t, cfg)
			e := newEnv()
			rec := forwardPaths[2].serve(u, e, "GET", "/x", "")
			if _, _, proto := b.last(); proto != 2 {
				t.Fatalf("the hop was HTTP/%d", proto)
			}
			if n <= max1xxResponses {
				if rec.Code != http.StatusOK || rec.Body.String() != "fine" || rec.interim != n {
					t.Fatalf("status %d, body %q, %d interim responses passed on", rec.Code, rec.Body, rec.interim)
				}
				return
			}
			wantFailure(t, e, rec, http.StatusBadGateway, ReasonProtocolError, "too many 1xx")
			if rec.interim != max1xxResponses || strings.Contains(rec.Body.String(), "fine") {
				t.Fatalf("%d interim responses passed on, body %q", rec.interim, rec.Body)
			}
		})
	}
}

// TestUpgradeToOtherProtocol: an upstream that answers a WebSocket
// upgrade by switching to another protocol (h2c) is refused with 502
// upstream_protocol_error: the client asked for one protocol and would be
// handed a stream of another (ReverseProxy's own check, typed).
func TestUpgradeToOtherProtocol(t *testing.T) {
	p := newPKI(t)
	ru := newRawUpstream(t, p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", hold)
	u := forwardPaths[0].upstream(t, p, ru.url, 0)
	e := newEnv()
	r := e.request("GET", "https://gw.example/ws", "192.0.2.1:1234")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	rec := &recorder{ResponseRecorder: httptest.NewRecorder()}
	u.ServeHTTP(rec, r)
	wantFailure(t, e, rec, http.StatusBadGateway, ReasonProtocolError, `switched to protocol "h2c" when "websocket" was requested`)
	if rec.Header().Get("Upgrade") != "" {
		t.Fatalf("the switch reached the client: %v", rec.Header())
	}
}

// TestStdFailureTyping: net/http's transport's failures that only their
// text identifies are typed as the lean transport types its own: a pooled
// connection the upstream closed while idle (a request net/http will not
// resend) and a GOAWAY in the middle of a body are the upstream closing,
// a stream it reset too; another HTTP/2 stream error is a protocol error.
func TestStdFailureTyping(t *testing.T) {
	u := &Upstream{name: "api", now: time.Now}
	for _, tt := range []struct {
		name       string
		err        error
		responding bool
		want       string
	}{
		{"closed idle conn", errors.New("http: server closed idle connection"), false, ReasonConnectionClosed},
		{"GOAWAY mid-body", errors.New("http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=\"\""), true, ReasonConnectionClosed},
		{"stream reset by the peer", h2StreamError{StreamID: 1, Code: 8, Cause: errors.New("received from peer")}, true, ReasonConnectionClosed},
		{"malformed HTTP/2 response", h2StreamError{StreamID: 1, Code: 1, Cause: errors.New("malformed response from server: missing status pseudo header")}, true, ReasonProtocolError},
		{"something else", errors.New("net/http: something new"), false, ReasonUnavailable},
	} {
		x := &stdExchange{}
		x.connected.Store(true)
		x.responding.Store(tt.responding)
		if got := u.classify(x.failure(tt.err)).Reason; got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestUpstreamConnectionClosed: on every forward path, an upstream that
// closes or resets an established connection before its answer is
// complete is upstream_connection_closed, not upstream_unavailable (which
// is for a connection that could not be made): the request may have
// reached it. Nothing it sent reaches the client.
func TestUpstreamConnectionClosed(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		name, raw string
		then      int
		cause     string
	}{
		{"closed before answering", "", closeConn, "EOF"},
		{"reset before answering", "", resetConn, "reset"},
		{"closed in the status line", "HTTP/1.1 200 OK", closeConn, "EOF"},
		{"closed in the header section", "HTTP/1.1 200 OK\r\nX-Leak: upstream\r\n", closeConn, "EOF"},
		{"reset in the header section", "HTTP/1.1 200 OK\r\nX-Leak: upstream\r\n", resetConn, "reset"},
	} {
		for _, fp := range forwardPaths {
			t.Run(tt.name+"/"+fp.name, func(t *testing.T) {
				ru := newRawUpstream(t, p, tt.raw, tt.then)
				u := fp.upstream(t, p, ru.url, 0)
				e := newEnv()
				rec := fp.serve(u, e, "GET", "/x", "")
				wantFailure(t, e, rec, http.StatusBadGateway, ReasonConnectionClosed, tt.cause)
				if rec.Header().Get("X-Leak") != "" {
					t.Fatalf("the upstream's fields reached the client: %v", rec.Header())
				}
				if n := ru.served.Load(); n != 1 {
					t.Fatalf("the upstream got the request %d times, want 1", n) // a fresh connection: never resent
				}
			})
		}
	}
}

// TestUpstreamBodyFailure: on every forward path, a failure after the
// status line went to the client (a malformed chunk, a body cut short)
// cannot become a 502: the response is cut off (the client never gets
// its end) and the failure is audited, with "phase": "body" and the
// status sent, and counted, under the same reasons.
func TestUpstreamBodyFailure(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		name, raw string
		then      int
		reason    string
	}{
		{"malformed chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n", hold, ReasonProtocolError},
		{"chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX5\r\nworld\r\n0\r\n\r\n", hold, ReasonProtocolError},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", closeConn, ReasonConnectionClosed},
		{"chunked body cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", closeConn, ReasonConnectionClosed},
	} {
		for _, fp := range forwardPaths {
			t.Run(tt.name+"/"+fp.name, func(t *testing.T) {
				ru := newRawUpstream(t, p, tt.raw, tt.then)
				u := fp.upstream(t, p, ru.url, 0)
				e := newEnv()
				rec := fp.serve(u, e, "GET", "/x", "")
				// The recorder has no server to abort: what it holds is
				// what went out before the cut.
				if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "world") {
					t.Fatalf("got %d %q", rec.Code, rec.Body)
				}
				ev := e.onlyEvent(t, tt.reason)
				if cause, _ := ev.Fields["cause"].(string); ev.Fields["phase"] != "body" || ev.Status != http.StatusOK ||
					cause == "" || ev.Fields["path"] != "/x" || ev.Fields["upstream"] != "api" || ev.RequestID != "req-1" {
					t.Fatalf("audit event %+v", ev)
				}
				if n := e.upstreamErrors(t, "api", tt.reason); n != 1 {
					t.Fatalf("metric = %v, want 1", n)
				}
			})
		}
	}
}

// TestReverseProxyLogsThroughSlog: what httputil.ReverseProxy logs (here
// a response body the upstream cut short) goes to the upstream's slog
// logger at debug level, not to stderr through the log package.
func TestReverseProxyLogsThroughSlog(t *testing.T) {
	p := newPKI(t)
	ru := newRawUpstream(t, p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", closeConn)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	u := mustNew(t, UpstreamConfig{Name: "api", URL: ru.url, ServerName: upstreamName, RootCAs: p.root.Pool(), Log: logger})
	fp := forwardPaths[1] // reverse proxy
	fp.serve(u, newEnv(), "GET", "/x", "")
	var rec struct{ Level, Msg string }
	first, _, _ := bytes.Cut(buf.Bytes(), []byte("\n"))
	if err := json.Unmarshal(first, &rec); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if rec.Level != "DEBUG" || !strings.Contains(rec.Msg, "ReverseProxy read error during body copy") {
		t.Fatalf("log record %+v", rec)
	}
}

// TestUpstreamFailuresKeepTheirReasons: on every forward path, an
// upstream nobody listens for, or one that drops the TLS handshake, is
// still upstream_unavailable (no connection: the request never left), and
// one that does not answer in time still 504 upstream_timeout.
func TestUpstreamFailuresKeepTheirReasons(t *testing.T) {
	p := newPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := &url.URL{Scheme: "https", Host: ln.Addr().String()}
	ln.Close()

	// Accepts the connection, reads the ClientHello and closes.
	drop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, drop, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 1024))
		c.Close()
	})
	dropped := &url.URL{Scheme: "https", Host: drop.Addr().String()}

	silent := newRawUpstream(t, p, "", hold)
	for _, tt := range []struct {
		name   string
		target *url.URL
		status int
		reason string
	}{
		{"connection refused", refused, http.StatusBadGateway, ReasonUnavailable},
		{"handshake dropped", dropped, http.StatusBadGateway, ReasonUnavailable},
		{"no answer", silent.url, http.StatusGatewayTimeout, ReasonTimeout},
	} {
		for _, fp := range forwardPaths {
			t.Run(tt.name+"/"+fp.name, func(t *testing.T) {
				u := fp.upstream(t, p, tt.target, 200*time.Millisecond)
				e := newEnv()
				wantFailure(t, e, fp.serve(u, e, "GET", "/x", ""), tt.status, tt.reason, "")
			})
		}
	}
}

// TestClosedPooledConnection: on every forward path, a pooled connection
// the upstream closes as the next request arrives is retried on a new
// one, unseen by the client, for a request that is safe to resend; a POST,
// whose bytes may have reached the upstream, is never resent: the client
// gets upstream_connection_closed, and the upstream saw it once.
func TestClosedPooledConnection(t *testing.T) {
	for _, fp := range forwardPaths {
		t.Run(fp.name, func(t *testing.T) {
			p := newPKI(t)
			var dropped atomic.Int64
			b := newBackend(t, p.good.TLS(), countPerConn, dropSecond(&dropped))
			u := fp.upstream(t, p, b.url(t), 0)
			e := newEnv()
			if rec := fp.serve(u, e, "GET", "/1", ""); rec.Code != http.StatusOK {
				t.Fatalf("first GET: %d %q", rec.Code, rec.Body)
			}
			if rec := fp.serve(u, e, "GET", "/2", ""); rec.Code != http.StatusOK || dropped.Load() != 1 || b.hits.Load() != 3 {
				t.Fatalf("GET on the closed conn: %d %q; dropped %d, upstream hits %d; want 200, 1, 3", rec.Code, rec.Body, dropped.Load(), b.hits.Load())
			}
			e = newEnv()
			rec := fp.serve(u, e, "POST", "/3", "once")
			wantFailure(t, e, rec, http.StatusBadGateway, ReasonConnectionClosed, "")
			if dropped.Load() != 2 || b.hits.Load() != 4 {
				t.Fatalf("dropped %d, upstream hits %d; want 2 and 4: the POST was resent", dropped.Load(), b.hits.Load())
			}
		})
	}
}

// newRawH2Upstream is an HTTP/2 upstream over TLS that answers the first
// request of each connection with answer(framer, stream ID, header
// encoder): a broken server, frame by frame. A nil answer closes the
// connection instead.
func newRawH2Upstream(t *testing.T, p *testPKI, answer func(fr *http2.Framer, id uint32, hdr func(...string) []byte)) *url.URL {
	return rawH2Upstream(t, p, answer, false)
}

// rawH2Upstream is newRawH2Upstream, closing the connection right after
// answer when closeAfter is set.
func rawH2Upstream(t *testing.T, p *testPKI, answer func(fr *http2.Framer, id uint32, hdr func(...string) []byte), closeAfter bool) *url.URL {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.good.TLS()}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	testkit.Serve(t, ln, func(c net.Conn) {
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		if fr.WriteSettings() != nil {
			return
		}
		var id uint32
		for id == 0 {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				id = h.StreamID
			}
		}
		if answer == nil {
			return
		}
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		answer(fr, id, func(fields ...string) []byte {
			buf.Reset()
			for i := 0; i+1 < len(fields); i += 2 {
				_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
			}
			return bytes.Clone(buf.Bytes())
		})
		if closeAfter {
			return
		}
		select { // open unless answer closed it: only its frames may decide
		case <-done:
		case <-time.After(30 * time.Second):
		}
	})
	t.Cleanup(func() { close(done) })
	return &url.URL{Scheme: "https", Host: ln.Addr().String()}
}

// TestHTTP2UpstreamGoAwayInBody: an HTTP/2 upstream that sends GOAWAY
// and closes the connection in the middle of a response body (a restart
// not done gracefully enough) has closed the connection: the cut-off
// response is recorded as upstream_connection_closed, not as a protocol
// error, which would read as tampering.
func TestHTTP2UpstreamGoAwayInBody(t *testing.T) {
	p := newPKI(t)
	target := rawH2Upstream(t, p, func(fr *http2.Framer, id uint32, hdr func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hdr(":status", "200", "content-length", "10"), EndHeaders: true})
		_ = fr.WriteData(id, false, []byte("hello"))
		_ = fr.WriteGoAway(id, http2.ErrCodeNo, nil)
	}, true)
	u := forwardPaths[2].upstream(t, p, target, 0)
	e := newEnv()
	rec := forwardPaths[2].serve(u, e, "GET", "/x", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ev := e.onlyEvent(t, ReasonConnectionClosed); ev.Fields["phase"] != "body" {
		t.Fatalf("audit event %+v", ev)
	}
}

// TestHTTP2UpstreamFailures: with an HTTP/2 hop (net/http's HTTP/2
// client), a response it refuses is upstream_protocol_error too, and an
// upstream that closes the connection or resets the stream before
// answering upstream_connection_closed.
func TestHTTP2UpstreamFailures(t *testing.T) {
	p := newPKI(t)
	headers := func(fr *http2.Framer, id uint32, block []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true, EndStream: true})
	}
	for _, tt := range []struct {
		name   string
		answer func(fr *http2.Framer, id uint32, hdr func(...string) []byte)
		reason string
		cause  string
	}{
		{"non-numeric status", func(fr *http2.Framer, id uint32, hdr func(...string) []byte) {
			headers(fr, id, hdr(":status", "2OO", "x-leak", "upstream"))
		}, ReasonProtocolError, "malformed non-numeric status"},
		{"no status", func(fr *http2.Framer, id uint32, hdr func(...string) []byte) {
			headers(fr, id, hdr("x-leak", "upstream"))
		}, ReasonProtocolError, "missing status"},
		{"upper-case field name", func(fr *http2.Framer, id uint32, hdr func(...string) []byte) {
			headers(fr, id, hdr(":status", "200", "X-Leak", "upstream"))
		}, ReasonProtocolError, "invalid header field name"},
		{"status above 599", func(fr *http2.Framer, id uint32, hdr func(...string) []byte) {
			headers(fr, id, hdr(":status", "600", "x-leak", "upstream"))
		}, ReasonProtocolError, "outside 100-599"},
		{"stream reset", func(fr *http2.Framer, id uint32, _ func(...string) []byte) {
			_ = fr.WriteRSTStream(id, http2.ErrCodeInternal)
		}, ReasonConnectionClosed, "INTERNAL_ERROR"},
		{"closed before answering", nil, ReasonConnectionClosed, "EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := newRawH2Upstream(t, p, tt.answer)
			u := forwardPaths[2].upstream(t, p, target, 0)
			e := newEnv()
			rec := forwardPaths[2].serve(u, e, "GET", "/x", "")
			wantFailure(t, e, rec, http.StatusBadGateway, tt.reason, tt.cause)
			if rec.Header().Get("X-Leak") != "" {
				t.Fatalf("the upstream's fields reached the client: %v", rec.Header())
			}
		})
	}
}

// FuzzResponseFailureTyped: whatever bytes an upstream answers with and
// however the connection ends, a lean exchange that fails on the
// established connection, in the header section or in the body, fails
// with an error classify calls upstream_protocol_error or
// upstream_connection_closed: never untyped (upstream_unavailable is for
// connections that could not be made), never a panic.
func FuzzResponseFailureTyped(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nuntil the close",
		"HTTP/1.1 2OO OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 600 X\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
		strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6),
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nX-A: b",
		"",
	} {
		f.Add([]byte(s))
	}
	u := &Upstream{name: "fuzz", now: time.Now}
	f.Fuzz(func(t *testing.T, raw []byte) {
		conn, up := net.Pipe()
		go func() { // the upstream: reads the request, answers raw, closes
			defer up.Close()
			if _, err := http.ReadRequest(bufio.NewReader(up)); err == nil {
				_, _ = up.Write(raw)
			}
		}()
		pc := &pconn{t: &h1Transport{}, raw: conn, conn: conn} // maxIdle 0: never pooled
		pc.init()
		req, _ := http.NewRequest("GET", "http://up.test/x", nil)
		res, err := pc.roundTrip(req, stdRequest{req: req}, false)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		if err == nil {
			return
		}
		if r := u.classify(err).Reason; r != ReasonProtocolError && r != ReasonConnectionClosed {
			t.Fatalf("answer %q: %v classified %s", raw, err, r)
		}
	})
}

// tamper is what tamperingRelay alters: the nth application-data record
// the upstream sends (a response each), or with toUpstream the nth the
// gateway sends (a request each); a bit of its content (header false),
// which fails the record's integrity check, or its version bytes (header
// true), which fail its header's check.
type tamper struct {
	nth                int
	header, toUpstream bool
}

// tamperingRelay is a man in the middle on the hop without the upstream's
// key: it relays a TLS 1.2 connection record by record, altering the
// record tp names.
func tamperingRelay(t *testing.T, upstream string, tp tamper) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, ln, func(c net.Conn) {
		s, err := net.Dial("tcp", upstream)
		if err != nil {
			c.Close()
			return
		}
		up := make(chan struct{})
		go func() { // gateway to upstream
			defer close(up)
			relayRecords(s, c, tp, tp.toUpstream)
			s.Close()
		}()
		defer func() { c.Close(); <-up }()
		relayRecords(c, s, tp, !tp.toUpstream) // upstream to gateway
	})
	return &url.URL{Scheme: "https", Host: ln.Addr().String()}
}

// relayRecords copies TLS records from src to dst until either fails,
// altering the one tp names if alter.
func relayRecords(dst, src net.Conn, tp tamper, alter bool) {
	seen := 0
	for {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		rec := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(src, rec); err != nil {
			return
		}
		if alter && hdr[0] == 23 && len(rec) > 0 { // TLS 1.2: application data only after the handshake
			if seen++; seen == tp.nth && tp.header {
				hdr[1], hdr[2] = 0x03, 0x01 // TLS 1.0's version
			} else if seen == tp.nth {
				rec[len(rec)-1] ^= 1
			}
		}
		if _, err := dst.Write(append(hdr, rec...)); err != nil {
			return
		}
	}
}

// TestTamperedRecord: on every forward path, a response record altered
// on the wire fails TLS's integrity check: upstream_protocol_error, with
// the alert as the cause, for whoever looks for tampering on the hop.
func TestTamperedRecord(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		name   string
		header bool
		cause  string
	}{{"content", false, "bad record MAC"}, {"record header", true, "record with version"}} {
		for _, fp := range forwardPaths {
			t.Run(tt.name+"/"+fp.name, func(t *testing.T) {
				b := newBackend(t, p.good.TLS(), func(s *httptest.Server) { s.TLS.MaxVersion = tls.VersionTLS12 }, nil)
				u := fp.upstream(t, p, tamperingRelay(t, b.srv.Listener.Addr().String(), tamper{nth: 1, header: tt.header}), 0)
				e := newEnv()
				rec := fp.serve(u, e, "GET", "/x", "")
				wantFailure(t, e, rec, http.StatusBadGateway, ReasonProtocolError, tt.cause)
				if strings.Contains(rec.Body.String(), "hello") {
					t.Fatalf("the tampered response reached the client: %q", rec.Body)
				}
			})
		}
	}
}

// TestTamperedRequestRecord: on every forward path, a request record
// altered on the wire towards the upstream makes the upstream refuse it
// with an alert (bad_record_mac, or for a record header it cannot parse
// none, it just closes): upstream_protocol_error with the alert as the
// cause, not a failed handshake, and nothing reaches the upstream's
// handler.
func TestTamperedRequestRecord(t *testing.T) {
	p := newPKI(t)
	for _, fp := range forwardPaths {
		t.Run(fp.name, func(t *testing.T) {
			b := newBackend(t, p.good.TLS(), func(s *httptest.Server) { s.TLS.MaxVersion = tls.VersionTLS12 }, nil)
			u := fp.upstream(t, p, tamperingRelay(t, b.srv.Listener.Addr().String(), tamper{nth: 1, toUpstream: true}), 0)
			e := newEnv()
			rec := fp.serve(u, e, "GET", "/x", "")
			wantFailure(t, e, rec, http.StatusBadGateway, ReasonProtocolError, "bad record MAC")
			if n := b.hits.Load(); n != 0 {
				t.Fatalf("the upstream's handler got %d requests", n)
			}
		})
	}
}

// TestTamperedRecordOnPooledConn: tampering with the response on a
// pooled connection is reported too, and the request is not sent again
// on a new connection (which would hide the tampering). The lean
// transport only: net/http's resends a replayable request whose
// response's first byte it could not read, and stdTransport cannot stop
// it (see docs/configuration.md).
func TestTamperedRecordOnPooledConn(t *testing.T) {
	p := newPKI(t)
	for _, header := range []bool{false, true} {
		for _, fp := range forwardPaths[:2] {
			t.Run(fmt.Sprintf("header %v/%s", header, fp.name), func(t *testing.T) {
				b := newBackend(t, p.good.TLS(), func(s *httptest.Server) { s.TLS.MaxVersion = tls.VersionTLS12 }, nil)
				u := fp.upstream(t, p, tamperingRelay(t, b.srv.Listener.Addr().String(), tamper{nth: 2, header: header}), 0)
				if rec := fp.serve(u, newEnv(), "GET", "/first", ""); rec.Code != http.StatusOK {
					t.Fatalf("first request: %d", rec.Code)
				}
				e := newEnv()
				rec := fp.serve(u, e, "GET", "/x", "")
				wantFailure(t, e, rec, http.StatusBadGateway, ReasonProtocolError, "")
				if n := b.hits.Load(); n != 2 {
					t.Fatalf("the upstream got %d requests, want 2 (no resend)", n)
				}
			})
		}
	}
}

// cancelOnWrite is a client that goes away once the first bytes of the
// response have reached it.
type cancelOnWrite struct {
	*recorder
	cancel context.CancelFunc
}

func (c cancelOnWrite) Write(b []byte) (int, error) {
	n, err := c.recorder.Write(b)
	c.cancel()
	return n, err
}

// TestClientFailuresNotBlamedOnUpstream: on net/http's transport, which
// streams, the client's own failures are not recorded as the upstream's:
// a request body that fails while being sent is not
// upstream_connection_closed, and a client that goes away in the middle
// of the response leaves no upstream_* event (body phase).
func TestClientFailuresNotBlamedOnUpstream(t *testing.T) {
	p := newPKI(t)
	fp := forwardPaths[2]
	t.Run("request body fails", func(t *testing.T) {
		b := newBackend(t, p.good.TLS(), nil, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
		u := fp.upstream(t, p, b.url(t), 0)
		e := newEnv()
		r := e.request("POST", "https://gw.example/x", "192.0.2.1:1234")
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader("part"), iotest.ErrReader(io.ErrUnexpectedEOF)))
		r.ContentLength = -1
		rec := &recorder{ResponseRecorder: httptest.NewRecorder()}
		u.ServeHTTP(rec, r)
		for _, ev := range e.sink.Events() {
			if ev.Reason == ReasonConnectionClosed || ev.Reason == ReasonProtocolError {
				t.Fatalf("the client's body failure blamed on the upstream: %+v", ev)
			}
		}
	})
	t.Run("client gone mid-response", func(t *testing.T) {
		b := newBackend(t, p.good.TLS(), nil, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		u := fp.upstream(t, p, b.url(t), 0)
		e := newEnv()
		ctx, cancel := context.WithCancel(context.Background())
		r := e.request("GET", "https://gw.example/x", "192.0.2.1:1234")
		r = r.WithContext(policy.WithExchange(ctx, policy.ExchangeOf(r)))
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		rec := &recorder{ResponseRecorder: httptest.NewRecorder()}
		u.ServeHTTP(cancelOnWrite{rec, cancel}, r)
		if rec.Body.String() != "hello" {
			t.Fatalf("body %q", rec.Body)
		}
		if evs := e.sink.Events(); len(evs) != 0 {
			t.Fatalf("a client gone mid-response recorded as %+v", evs)
		}
	})
}
