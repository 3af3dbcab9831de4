package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki"
)

// leanUpstream is a pinned upstream served by the lean HTTP/1.1 path.
func leanUpstream(t *testing.T, handler http.HandlerFunc, configure func(*httptest.Server)) (*Upstream, *backend) {
	t.Helper()
	p := newPKI(t)
	b := newBackend(t, p.good.TLS(), configure, handler)
	cfg := p.config(t, b)
	cfg.Pins = pki.PinSet{pinOf(p.good)}
	u := mustNew(t, cfg)
	if u.h1 == nil {
		t.Fatal("the lean path is not in use")
	}
	return u, b
}

// do sends one request through the proxy and returns the recorder.
func do(t *testing.T, u *Upstream, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	e := newEnv()
	r := e.request(method, "https://gw.example"+path, "192.0.2.1:1234")
	if body != "" {
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, r)
	return rec
}

func wantOK(t *testing.T, rec *httptest.ResponseRecorder, body string) {
	t.Helper()
	if rec.Code != http.StatusOK || rec.Body.String() != body {
		t.Fatalf("got %d %q, want 200 %q", rec.Code, rec.Body, body)
	}
}

func wantDials(t *testing.T, u *Upstream, n int64) {
	t.Helper()
	if got := u.h1.dials.Load(); got != n {
		t.Fatalf("%d connections dialed, want %d", got, n)
	}
}

func TestLeanPoolReuse(t *testing.T) {
	u, b := leanUpstream(t, nil, nil)
	for range 20 {
		wantOK(t, do(t, u, "GET", "/r", ""), "hello from /r")
	}
	wantDials(t, u, 1)
	if h := b.handshakes.Load(); h != 1 {
		t.Fatalf("%d handshakes", h)
	}
	if n := len(u.h1.idle); n != 1 {
		t.Fatalf("%d idle conns, want 1", n)
	}
}

// TestLeanBodies: small bodies of known length take the lean path; HEAD,
// 204 and 304 answers have no body and free the conn at once; chunked
// answers are read to their end and the conn is reused.
func TestLeanBodies(t *testing.T) {
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
		case "/chunked":
			for _, s := range []string{"a", "b", "c"} {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/head":
			w.Header().Set("Content-Length", "1000")
		}
	}, nil)
	wantOK(t, do(t, u, "POST", "/echo", "ping"), "ping")
	wantOK(t, do(t, u, "GET", "/chunked", ""), "abc")
	wantOK(t, do(t, u, "HEAD", "/head", ""), "")
	for _, c := range []int{204, 304} {
		if rec := do(t, u, "GET", "/"+strconv.Itoa(c), ""); rec.Code != c {
			t.Fatalf("status %d, want %d", rec.Code, c)
		}
	}
	wantOK(t, do(t, u, "GET", "/chunked", ""), "abc")
	wantDials(t, u, 1)
}

// TestLeanFallback: what the lean path does not serve goes to the
// standard transport, and works.
func TestLeanFallback(t *testing.T) {
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}, nil)
	big := strings.Repeat("x", maxBufferedBody+1)
	wantOK(t, do(t, u, "POST", "/echo", big), big)

	e := newEnv()
	r := e.request("POST", "https://gw.example/echo", "192.0.2.1:1234")
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader("stream")), -1 // unknown length
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, r)
	wantOK(t, rec, "stream")
	wantDials(t, u, 0)
}

func TestLeanEligible(t *testing.T) {
	u, b := leanUpstream(t, nil, nil)
	base := b.srv.URL + "/x"
	tests := []struct {
		name   string
		modify func(*http.Request)
		want   bool
	}{
		{"GET", func(*http.Request) {}, true},
		{"small body", func(r *http.Request) {
			r.Method, r.Body, r.ContentLength = "POST", io.NopCloser(strings.NewReader("abc")), 3
		}, true},
		{"unknown length", func(r *http.Request) {
			r.Method, r.Body, r.ContentLength = "POST", io.NopCloser(strings.NewReader("abc")), -1
		}, false},
		{"large body", func(r *http.Request) {
			r.Method, r.Body, r.ContentLength = "POST", io.NopCloser(strings.NewReader("")), maxBufferedBody+1
		}, false},
		{"100-continue", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }, false},
		{"upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }, false},
		{"CONNECT", func(r *http.Request) { r.Method = http.MethodConnect }, false},
		{"other host", func(r *http.Request) { r.URL.Host = "example.com" }, false},
		{"invalid header value", func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-B: b"} }, false},
		{"invalid header name", func(r *http.Request) { r.Header["X A"] = []string{"a"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest("GET", base, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.modify(r)
			if got := u.h1.eligible(r); got != tt.want {
				t.Fatalf("eligible = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLeanUpstreamClosesIdle: a conn the upstream closed while idle is
// found before use, and the request, idempotent or not, goes on a new one.
func TestLeanUpstreamClosesIdle(t *testing.T) {
	closed := make(chan struct{})
	u, b := leanUpstream(t, nil, func(s *httptest.Server) {
		once := sync.OnceFunc(func() { close(closed) })
		s.Config.ConnState = func(_ net.Conn, cs http.ConnState) {
			if cs == http.StateClosed {
				once()
			}
		}
	})
	wantOK(t, do(t, u, "GET", "/a", ""), "hello from /a")
	b.srv.CloseClientConnections() // the upstream closes the now idle conn
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream did not close its conn")
	}
	// A POST is not retried: it succeeds only if the closed conn is
	// detected before the request is written to it.
	wantOK(t, do(t, u, "POST", "/b", "x"), "hello from /b")
	wantDials(t, u, 2)
}

// dropSecond answers the first request on each conn and closes the conn
// on reading the second, without a response: the race of an upstream
// closing a keep-alive conn as a request arrives.
func dropSecond(seen *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connCountKey{}).(*atomic.Int64); ok && c.Add(1) == 2 {
			seen.Add(1)
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		}
		_, _ = io.WriteString(w, "ok")
	}
}

type connCountKey struct{}

func countPerConn(s *httptest.Server) {
	s.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connCountKey{}, new(atomic.Int64))
	}
}

func TestLeanRetry(t *testing.T) {
	t.Run("GET is retried once on a new conn", func(t *testing.T) {
		var dropped atomic.Int64
		u, b := leanUpstream(t, dropSecond(&dropped), countPerConn)
		wantOK(t, do(t, u, "GET", "/1", ""), "ok")
		wantOK(t, do(t, u, "GET", "/2", ""), "ok")
		if dropped.Load() != 1 || b.hits.Load() != 3 {
			t.Fatalf("dropped %d, upstream hits %d; want 1 and 3", dropped.Load(), b.hits.Load())
		}
		wantDials(t, u, 2)
	})
	t.Run("POST is not retried", func(t *testing.T) {
		var dropped atomic.Int64
		u, b := leanUpstream(t, dropSecond(&dropped), countPerConn)
		wantOK(t, do(t, u, "GET", "/1", ""), "ok")
		rec := do(t, u, "POST", "/2", "once")
		wantProblem(t, rec, http.StatusBadGateway, ReasonConnectionClosed)
		if b.hits.Load() != 2 {
			t.Fatalf("upstream hits %d, want 2", b.hits.Load())
		}
	})
	t.Run("a fresh conn is not retried", func(t *testing.T) {
		var hits atomic.Int64
		u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		}, nil)
		wantProblem(t, do(t, u, "GET", "/x", ""), http.StatusBadGateway, ReasonConnectionClosed)
		if hits.Load() != 1 {
			t.Fatalf("upstream hits %d, want 1", hits.Load())
		}
	})
}

// TestLeanConnectionClose: an answer with Connection: close is not
// followed by another request on its conn.
func TestLeanConnectionClose(t *testing.T) {
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	}, nil)
	wantOK(t, do(t, u, "GET", "/a", ""), "bye")
	wantOK(t, do(t, u, "GET", "/b", ""), "bye")
	wantDials(t, u, 2)
	if n := len(u.h1.idle); n != 0 {
		t.Fatalf("%d idle conns", n)
	}
}

// TestLeanPartialBody: a body closed before its end closes the conn
// rather than draining an upstream that may never stop.
func TestLeanPartialBody(t *testing.T) {
	u, b := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("z", 64<<10))
	}, nil)
	req, _ := http.NewRequest("GET", b.srv.URL+"/big", nil)
	res, err := u.h1.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if _, err := res.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
	if n := len(u.h1.idle); n != 0 {
		t.Fatalf("%d idle conns after a partial read", n)
	}
	res, err = u.h1.RoundTrip(req.Clone(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if n != 64<<10 || len(u.h1.idle) != 1 {
		t.Fatalf("read %d bytes, %d idle conns", n, len(u.h1.idle))
	}
	wantDials(t, u, 2)
}

// TestLeanCancel: a client that goes away closes the upstream conn, which
// is not pooled, and is not answered.
func TestLeanCancel(t *testing.T) {
	arrived, gone := make(chan struct{}), make(chan struct{})
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			return
		}
		close(arrived)
		<-r.Context().Done() // the upstream sees its conn closed
		close(gone)
	}, nil)
	e := newEnv()
	r := e.request("GET", "https://gw.example/x", "")
	ctx, cancel := context.WithCancel(r.Context())
	go func() { <-arrived; cancel() }()
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, r.WithContext(ctx))
	if rec.Body.Len() != 0 || len(e.sink.Events()) != 0 {
		t.Fatalf("answered an abandoned request: %d %q", rec.Code, rec.Body)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream conn was not closed")
	}
	wantOK(t, do(t, u, "GET", "/ok", ""), "")
	wantDials(t, u, 2)
}

// TestLeanDeadline: a request context deadline is a timeout (504), like
// the response header timeout.
func TestLeanDeadline(t *testing.T) {
	release := make(chan struct{})
	u, _ := leanUpstream(t, func(http.ResponseWriter, *http.Request) { <-release }, nil)
	t.Cleanup(func() { close(release) })
	e := newEnv()
	r := e.request("GET", "https://gw.example/x", "")
	ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, r.WithContext(ctx))
	wantProblem(t, rec, http.StatusGatewayTimeout, ReasonTimeout)
}

// TestLeanHeaderTimeoutNotReused: the conn of a timed-out exchange is
// closed; the next request dials.
func TestLeanHeaderTimeoutNotReused(t *testing.T) {
	p := newPKI(t)
	release := make(chan struct{})
	b := newBackend(t, p.good.TLS(), nil, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	})
	t.Cleanup(func() { close(release) })
	cfg := p.config(t, b)
	cfg.ResponseHeaderTimeout = 100 * time.Millisecond
	u := mustNew(t, cfg)
	wantOK(t, do(t, u, "GET", "/fast", ""), "")
	e := newEnv()
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, e.request("GET", "https://gw.example/slow", ""))
	wantProblem(t, rec, http.StatusGatewayTimeout, ReasonTimeout)
	e.onlyEvent(t, ReasonTimeout)
	wantOK(t, do(t, u, "GET", "/fast", ""), "")
	wantDials(t, u, 2)
}

// TestLeanDesync: bytes an upstream sends beyond its response, at once or
// later while the conn is idle, never answer another request: the conn is
// closed, not reused.
func TestLeanDesync(t *testing.T) {
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
	for _, tt := range []struct {
		name         string
		flush, later bool
	}{{"same record", false, false}, {"next record", true, false}, {"while idle", true, true}} {
		t.Run(tt.name, func(t *testing.T) {
			// consumed: the first response was read and its conn pooled;
			// sent: the smuggled bytes were flushed; done: the test is
			// over. The evil conn stays open until then, so it is the
			// bytes, not an EOF, that must keep it from being reused.
			consumed, sent, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			t.Cleanup(func() { close(done) })
			u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/evil" {
					_, _ = io.WriteString(w, "fine")
					return
				}
				conn, bw, _ := http.NewResponseController(w).Hijack()
				defer conn.Close()
				_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
				if tt.flush {
					_ = bw.Flush()
				}
				if tt.later {
					<-consumed
				}
				_, _ = bw.WriteString(smuggled)
				_ = bw.Flush()
				close(sent)
				<-done
			}, nil)
			wantOK(t, do(t, u, "GET", "/evil", ""), "evil")
			if tt.later {
				u.h1.mu.Lock()
				n := len(u.h1.idle)
				u.h1.mu.Unlock()
				if n != 1 {
					t.Fatalf("%d idle conns before the smuggled bytes, want 1", n)
				}
				close(consumed)
			}
			<-sent
			wantOK(t, do(t, u, "GET", "/next", ""), "fine")
			wantDials(t, u, 2)
		})
	}
}

// TestLeanEarlyHints: 1xx answers before the final one are passed on to
// the client, and the final answer follows.
func TestLeanEarlyHints(t *testing.T) {
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "done")
	}, nil)
	e := newEnv()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := e.request(r.Method, "https://gw.example"+r.URL.Path, "192.0.2.1:1234")
		u.ServeHTTP(w, r.WithContext(x.Context()))
	}))
	t.Cleanup(front.Close)
	for range 2 {
		var hints []string
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, strconv.Itoa(code)+" "+h.Get("Link"))
				return nil
			},
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/", nil)
		res, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "done" || len(hints) != 1 || hints[0] != "103 </a.css>; rel=preload" {
			t.Fatalf("got %d %q, 1xx %q", res.StatusCode, body, hints)
		}
	}
	wantDials(t, u, 1)
}

// TestLeanCloseIdleConnections: conns idle or in use when the upstream's
// trust changes are not used again.
func TestLeanCloseIdleConnections(t *testing.T) {
	inside, release := make(chan struct{}), make(chan struct{})
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(inside)
			<-release
		}
	}, nil)
	wantOK(t, do(t, u, "GET", "/a", ""), "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(t, u, "GET", "/hold", "")
	}()
	<-inside
	u.CloseIdleConnections()
	close(release)
	<-done
	if n := len(u.h1.idle); n != 0 {
		t.Fatalf("%d idle conns after CloseIdleConnections", n)
	}
	wantOK(t, do(t, u, "GET", "/b", ""), "")
	wantDials(t, u, 2)
}

// TestLeanIdleTimeout: idle conns are closed after IdleConnTimeout.
func TestLeanIdleTimeout(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p.good.TLS(), nil, nil)
	cfg := p.config(t, b)
	cfg.IdleConnTimeout = 50 * time.Millisecond
	u := mustNew(t, cfg)
	evicted := make(chan struct{}, 1)
	u.h1.onEvict = func() { evicted <- struct{}{} }
	wantOK(t, do(t, u, "GET", "/a", ""), "hello from /a")
	select {
	case <-evicted:
	case <-time.After(5 * time.Second):
		t.Fatal("idle conn not closed")
	}
	u.h1.mu.Lock()
	n := len(u.h1.idle)
	u.h1.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d idle conns after eviction", n)
	}
}

// TestLeanIdleTimeoutCountsFromLastUse: the idle timeout counts from a
// conn's last use: a conn in steady use for longer than IdleConnTimeout is
// never evicted, and one left idle is, once idle that long.
func TestLeanIdleTimeoutCountsFromLastUse(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t, p.good.TLS(), nil, nil)
	cfg := p.config(t, b)
	cfg.IdleConnTimeout = time.Second
	u := mustNew(t, cfg)
	evicted := make(chan time.Time, 1)
	u.h1.onEvict = func() { evicted <- time.Now() }
	start := time.Now()
	for n := 0; n < 100000 && time.Since(start) < 2200*time.Millisecond; n++ { // bounded: count and time
		wantOK(t, do(t, u, "GET", "/a", ""), "hello from /a")
		select {
		case <-evicted:
			t.Fatalf("a conn in steady use evicted after %v", time.Since(start))
		default:
		}
	}
	wantDials(t, u, 1)
	lastUse := time.Now()
	select {
	case at := <-evicted:
		if idle := at.Sub(lastUse); idle < cfg.IdleConnTimeout*9/10 { // the conn was pooled just before lastUse
			t.Fatalf("evicted after %v idle, before the %v timeout", idle, cfg.IdleConnTimeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle conn not closed")
	}
}

// TestWriteRequestMatchesStd: the lean writer puts on the wire what
// Request.Write does, up to the order of header fields.
func TestWriteRequestMatchesStd(t *testing.T) {
	mk := func(method, body string, mod func(*http.Request)) *http.Request {
		var r *http.Request
		if body == "" {
			r, _ = http.NewRequest(method, "https://up.test:8443/a%20b/c?q=1&r=%2F", nil)
		} else {
			r, _ = http.NewRequest(method, "https://up.test:8443/a%20b/c?q=1&r=%2F", strings.NewReader(body))
		}
		r.Header.Set("X-Forwarded-For", "192.0.2.1")
		r.Header.Add("Accept", "a/b")
		r.Header.Add("Accept", " c/d ")
		if mod != nil {
			mod(r)
		}
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"GET", mk("GET", "", nil)},
		{"GET with empty User-Agent", mk("GET", "", func(r *http.Request) { r.Header["User-Agent"] = []string{""} })},
		{"POST with body", mk("POST", "hello", func(r *http.Request) { r.Header.Set("User-Agent", "ua/1") })},
		{"POST without body", mk("POST", "", nil)},
		{"DELETE", mk("DELETE", "", nil)},
		{"Host override, close", mk("GET", "", func(r *http.Request) { r.Host, r.Close = "other.test", true })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got strings.Builder
			var body *[]byte
			if tt.req.Body != nil {
				b, _ := io.ReadAll(tt.req.Body)
				tt.req.Body = io.NopCloser(strings.NewReader(string(b)))
				body = &b
			}
			if err := tt.req.Write(&want); err != nil {
				t.Fatal(err)
			}
			bw := bufio.NewWriter(&got)
			if err := writeRequest(bw, tt.req, body); err != nil {
				t.Fatal(err)
			}
			parse := func(s string) (*http.Request, string) {
				r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
				if err != nil {
					t.Fatalf("%q: %v", s, err)
				}
				b, _ := io.ReadAll(r.Body)
				return r, string(b)
			}
			w, wb := parse(want.String())
			g, gb := parse(got.String())
			if w.Method != g.Method || w.RequestURI != g.RequestURI || w.Host != g.Host || w.ContentLength != g.ContentLength ||
				w.Close != g.Close || wb != gb || !reflect.DeepEqual(w.Header, g.Header) || len(want.String()) != len(got.String()) {
				t.Fatalf("lean:\n%s\nstd:\n%s", got.String(), want.String())
			}
		})
	}
}

// TestErrorPathIsClients: with or without a base path, the audit event of
// a failure records the path the client asked for.
func TestErrorPathIsClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, base := range []string{"", "/", "/base"} {
		t.Run("base "+base, func(t *testing.T) {
			u := mustNew(t, UpstreamConfig{Name: "down", URL: &url.URL{Scheme: "https", Host: addr, Path: base}})
			e := newEnv()
			rec := httptest.NewRecorder()
			u.ServeHTTP(rec, e.request("GET", "https://gw.example/x/y", ""))
			wantProblem(t, rec, http.StatusBadGateway, ReasonUnavailable)
			if ev := e.onlyEvent(t, ReasonUnavailable); ev.Fields["path"] != "/x/y" {
				t.Fatalf("audit path = %v", ev.Fields["path"])
			}
		})
	}
}

// TestLeanBodyNoHeaderDeadline: the response header timeout does not
// bound the body. The header phase's read deadline is cleared only
// before the body's first read from the conn; here it is moved into the
// past (as if the body came after the header timeout) before the rest of
// the body is sent, and the body must still be read whole.
func TestLeanBodyNoHeaderDeadline(t *testing.T) {
	release := make(chan struct{})
	u, b := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		_, _ = io.WriteString(w, "first")
		http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "later")
	}, nil)
	req, _ := http.NewRequest("GET", b.srv.URL+"/slow-body", nil)
	res, err := u.h1.RoundTrip(req)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	pc := res.Body.(*responseBody).pc
	if !pc.clearRead {
		close(release)
		t.Fatal("the header deadline is not marked for clearing")
	}
	_ = pc.conn.SetReadDeadline(time.Unix(1, 0))
	close(release)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(body) != "firstlater" {
		t.Fatalf("body %q, %v; want %q", body, err, "firstlater")
	}
}

// TestLeanUpstreamSmugglingResponses: an upstream answering with
// smuggling-shaped framing never gets a second response onto the
// connection: the ambiguous answer is refused (502) or read as net/http
// reads it, and the connection is never pooled for the next request, which
// never sees the smuggled bytes.
func TestLeanUpstreamSmugglingResponses(t *testing.T) {
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
	for _, tt := range []struct {
		name, raw string
		refused   bool // must be 502
	}{
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n" + smuggled, false},
		{"two different CL", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 12\r\n\r\nevil" + smuggled, true},
		{"negative CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nevil" + smuggled, true},
		{"bare LF fields", "HTTP/1.1 200 OK\nContent-Length: 4\n\nevil" + smuggled, false},
		{"101 without an upgrade request", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n" + smuggled, true},
		{"six 1xx answers", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 6) + smuggled, true},
		{"status below 100", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n" + smuggled, true},
		{"status above 599", "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n" + smuggled, true},
		{"obs-fold CL", "HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 40\r\nContent-Length: 4\r\n\r\nevil" + smuggled, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			t.Cleanup(func() { close(done) })
			u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/evil" {
					_, _ = io.WriteString(w, "fine")
					return
				}
				conn, bw, _ := http.NewResponseController(w).Hijack()
				defer conn.Close()
				_, _ = bw.WriteString(tt.raw)
				_ = bw.Flush()
				<-done // the conn stays open: only its bytes may keep it out of the pool
			}, nil)
			rec := do(t, u, "GET", "/evil", "")
			// After forwarded 1xx answers the recorder keeps the first
			// code: the final answer is then the problem body's status.
			refused := rec.Code == http.StatusBadGateway || strings.Contains(rec.Body.String(), `"status":502`)
			if tt.refused && !refused {
				t.Fatalf("ambiguous response passed on: %d %q", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "smuggled") {
				t.Fatalf("the smuggled response reached the client: %q", rec.Body)
			}
			wantOK(t, do(t, u, "GET", "/next", ""), "fine")
			wantDials(t, u, 2)
		})
	}
}

// TestLeanHeaderTimeoutAfterBodyRead: an exchange whose body is read from
// the conn clears the read deadline (the body has none); the next
// exchange on the same pooled conn must bound its response headers again,
// even though the deadline it set before is still within the window that
// internal/deadline would keep (the memo follows the clear): a stalled
// upstream gets 504, not a hang.
func TestLeanHeaderTimeoutAfterBodyRead(t *testing.T) {
	p := newPKI(t)
	release := make(chan struct{})
	big := strings.Repeat("x", 256<<10) // more than one read: the body comes from the conn
	b := newBackend(t, p.good.TLS(), nil, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
			return
		}
		_, _ = io.WriteString(w, big)
	})
	t.Cleanup(func() { close(release) })
	cfg := p.config(t, b)
	cfg.ResponseHeaderTimeout = 1600 * time.Millisecond // window d/16 = 100 ms: the next exchange starts within it
	u := mustNew(t, cfg)
	wantOK(t, do(t, u, "GET", "/big", ""), big)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, newEnv().request("GET", "https://gw.example/slow", ""))
		done <- rec
	}()
	select {
	case rec := <-done:
		wantProblem(t, rec, http.StatusGatewayTimeout, ReasonTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled upstream held the exchange past the header timeout")
	}
	wantDials(t, u, 1) // the same pooled conn: what the test is about
}
