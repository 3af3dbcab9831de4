package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/testkit"
)

// start serves s on a loopback listener and returns its address.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, ln, func(c net.Conn) { _ = s.ServeConn(c) })
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// dial returns a conn to addr with a reader, bounded by a deadline.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func send(t *testing.T, c net.Conn, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	res.Body.Close()
	return res, string(b)
}

// wantClosed reads until the server closes the conn; it fails if the
// conn is still open at the client's deadline.
func wantClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server did not close the connection")
	}
}

// wantNoAnswer requires the server to close the connection without
// writing a byte.
func wantNoAnswer(t *testing.T, br *bufio.Reader, what string) {
	t.Helper()
	if b, _ := io.ReadAll(br); len(b) != 0 {
		t.Fatalf("%s answered %q", what, b)
	}
}

// wantServes requires the server at addr to answer a GET with 200.
func wantServes(t *testing.T, addr string) {
	t.Helper()
	c, br := dial(t, addr)
	send(t, c, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, _ := readResponse(t, br, "GET"); res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
}

// echo answers with the method, path, body and a few request facts.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s body=%q host=%s te=%v trailer=%v", r.Method, r.URL.Path, b, r.Host, r.TransferEncoding, r.Trailer)
}

func TestExchanges(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", echo)
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		io.WriteString(w, "b")
		w.Header().Set("X-Sum", "ab")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 5000)) })
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	addr := start(t, &Server{Handler: mux, ReadTimeout: 5 * time.Second})

	tests := []struct {
		name, raw, method string
		status            int
		body              string
		header            map[string]string // "" means absent
		trailer           map[string]string
		closed            bool // the server closes the conn after the response
	}{
		{name: "GET", raw: "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", status: 200,
			body: `GET /x body="" host=a te=[] trailer=map[]`, header: map[string]string{"Content-Length": "41", "Transfer-Encoding": "", "Content-Type": "text/plain"}},
		{name: "sniffed type and date", raw: "GET /head HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "hello",
			header: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Length": "5"}},
		{name: "HEAD", raw: "HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n", method: "HEAD", status: 200, body: "",
			header: map[string]string{"Content-Length": "5"}},
		{name: "Content-Length body", raw: "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", status: 200,
			body: `POST /p body="abc" host=a te=[] trailer=map[]`},
		{name: "chunked body with trailer", raw: "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\nX-T: v\r\n\r\n", status: 200,
			body: `POST /p body="abc" host=a te=[chunked] trailer=map[X-T:[v]]`},
		{name: "streamed response is chunked, with trailers", raw: "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "ab",
			header: map[string]string{"Transfer-Encoding": "chunked", "Content-Length": ""}, trailer: map[string]string{"X-Sum": "ab", "X-Late": "late"}},
		{name: "long response of unknown length is chunked", raw: "GET /long HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: strings.Repeat("x", 5000),
			header: map[string]string{"Content-Length": ""}},
		{name: "204 has no length", raw: "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n", status: 204, header: map[string]string{"Content-Length": ""}},
		{name: "client Connection: close", raw: "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", status: 200,
			body: `GET /x body="" host=a te=[] trailer=map[]`, closed: true},
		{name: "handler Connection: close", raw: "GET /close HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "bye", closed: true},
		{name: "HTTP/1.0 closes", raw: "GET /head HTTP/1.0\r\n\r\n", status: 200, body: "hello", closed: true},
		{name: "HTTP/1.0 keep-alive", raw: "GET /head HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", status: 200, body: "hello",
			header: map[string]string{"Connection": "keep-alive"}},
		{name: "missing Host", raw: "GET /x HTTP/1.1\r\n\r\n", status: 400, body: "400 Bad Request: missing required Host header", closed: true},
		{name: "malformed request line", raw: "GET\r\n\r\n", status: 400, body: "400 Bad Request", closed: true},
		{name: "unknown Expect", raw: "GET /x HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", status: 417, closed: true},
		{name: "100-continue without a body", raw: "GET /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", status: 200,
			body: `GET /x body="" host=a te=[] trailer=map[]`},
		{name: "header block over the limit", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", http.DefaultMaxHeaderBytes+5000) + "\r\n\r\n",
			status: 431, closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, addr)
			send(t, c, tt.raw)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			res, body := readResponse(t, br, method)
			if res.StatusCode != tt.status || (tt.body != "" || tt.status < 300) && body != tt.body {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, body, tt.status, tt.body)
			}
			if res.StatusCode < 400 && res.Header.Get("Date") == "" {
				t.Error("no Date")
			}
			for k, v := range tt.header {
				if got := strings.Join(res.Header[k], ","); k == "Content-Length" && v != "" {
					if res.ContentLength != mustAtoi(t, v) {
						t.Errorf("Content-Length %d, want %s", res.ContentLength, v)
					}
				} else if k == "Transfer-Encoding" {
					if (v == "") != (len(res.TransferEncoding) == 0) {
						t.Errorf("Transfer-Encoding %v", res.TransferEncoding)
					}
				} else if k == "Content-Length" {
					if res.ContentLength != -1 && !(res.StatusCode == 204 && res.ContentLength == 0) {
						t.Errorf("Content-Length %d, want none", res.ContentLength)
					}
				} else if got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tt.trailer {
				if got := res.Trailer.Get(k); got != v {
					t.Errorf("trailer %s = %q, want %q (%v)", k, got, v, res.Trailer)
				}
			}
			if res.Close != tt.closed && res.StatusCode < 400 {
				t.Errorf("response says close: %v, want %v", res.Close, tt.closed)
			}
			if tt.closed {
				wantClosed(t, br)
				return
			}
			// Kept alive: a second request on the same conn is answered.
			send(t, c, "GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
			if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || !strings.HasPrefix(body, "GET /again") {
				t.Fatalf("second request: %d %q", res.StatusCode, body)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPipelining: requests sent back to back in one write are answered
// in order, a POST's body included.
func TestPipelining(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(echo)})
	c, br := dial(t, addr)
	send(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{`GET /1 body=""`, `POST /2 body="hi"`, `GET /3 body=""`} {
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || !strings.HasPrefix(body, want) {
			t.Fatalf("got %d %q, want %q…", res.StatusCode, body, want)
		}
	}
}

// TestExpectContinue: 100 Continue is sent when the handler reads the
// body, and not at all (the conn then closes) when it answers without.
func TestExpectContinue(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/read", echo)
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	addr := start(t, &Server{Handler: mux})

	c, br := dial(t, addr)
	send(t, c, "POST /read HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue has fields: %q", blank)
	}
	send(t, c, "hello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || !strings.HasPrefix(body, `POST /read body="hello"`) {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}

	c, br = dial(t, addr)
	send(t, c, "POST /refuse HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	res, _ := readResponse(t, br, "POST")
	if res.StatusCode != 403 || !res.Close {
		t.Fatalf("got %d, close %v", res.StatusCode, res.Close)
	}
	wantClosed(t, br)
}

// TestReadTimeoutCutsSlowBody: a body that stops arriving fails the
// handler's read at ReadTimeout and the conn is closed.
func TestReadTimeoutCutsSlowBody(t *testing.T) {
	readErr := make(chan error, 1)
	addr := start(t, &Server{ReadTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	})})
	c, br := dial(t, addr)
	send(t, c, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab") // and the rest never comes
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("body read ended with %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow body was not cut off")
	}
	res, err := http.ReadResponse(br, nil)
	if err == nil {
		res.Body.Close()
		if !res.Close {
			t.Fatalf("conn kept alive after a failed body: %v", res.Header)
		}
	}
	wantClosed(t, br)
}

// TestWriteTimeoutCutsSlowReader: a client that does not read makes the
// handler's writes fail at WriteTimeout.
func TestWriteTimeoutCutsSlowReader(t *testing.T) {
	writeErr := make(chan error, 1)
	addr := start(t, &Server{WriteTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 512 { // bounded: 512 MiB, far above any socket buffer
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})})
	c, _ := dial(t, addr)
	send(t, c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n") // and never read
	select {
	case err := <-writeErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("writes ended with %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow reader was not cut off")
	}
}

// TestIdleTimeout: a kept-alive conn with no next request is closed at
// IdleTimeout, not before.
func TestIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	addr := start(t, &Server{IdleTimeout: idle, ReadTimeout: 5 * time.Second, Handler: http.HandlerFunc(echo)})
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, br, "GET")
	begin := time.Now()
	wantClosed(t, br)
	// ReadTimeout (5 s) is the fallback an ignored IdleTimeout would hit:
	// closing well before it shows IdleTimeout applied.
	if d := time.Since(begin); d < idle || d > 2500*time.Millisecond {
		t.Fatalf("closed after %v, want the idle timeout %v, not the 5 s read timeout", d, idle)
	}
}

// TestSlowHeadersCutOff: a header block that never ends is cut at
// ReadHeaderTimeout, without a response.
func TestSlowHeadersCutOff(t *testing.T) {
	addr := start(t, &Server{ReadHeaderTimeout: 150 * time.Millisecond, ReadTimeout: 5 * time.Second, Handler: http.HandlerFunc(echo)})
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\n")
	begin := time.Now()
	b, _ := io.ReadAll(br)
	if len(b) != 0 {
		t.Fatalf("answered %q", b)
	}
	// Well before the 5 s ReadTimeout an ignored ReadHeaderTimeout would hit.
	if d := time.Since(begin); d > 2500*time.Millisecond {
		t.Fatalf("cut after %v: ReadHeaderTimeout (150ms) did not apply", d)
	}
}

// TestClientGoneCancelsContext: the request context ends when the client
// closes the conn while the handler waits (so an upstream request made
// with it is cancelled).
func TestClientGoneCancelsContext(t *testing.T) {
	inside, cancelled := make(chan struct{}), make(chan error, 1)
	addr := start(t, &Server{WatchDelay: 10 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inside)
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("not cancelled")
		}
	})})
	c, _ := dial(t, addr)
	send(t, c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inside
	c.Close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("context: %v", err)
	}
}

// TestWatchKeepsPipelinedRequest: a request that arrives while the
// previous one is being handled (and watched) is served intact.
func TestWatchKeepsPipelinedRequest(t *testing.T) {
	inside, release := make(chan struct{}, 1), make(chan struct{})
	addr := start(t, &Server{WatchDelay: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			inside <- struct{}{}
			<-release
		}
		if r.Context().Err() != nil {
			t.Errorf("%s: context ended early: %v", r.URL.Path, r.Context().Err())
		}
		echo(w, r)
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inside
	send(t, c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	close(release)
	for _, want := range []string{"GET /hold", "GET /next"} {
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || !strings.HasPrefix(body, want) {
			t.Fatalf("got %d %q, want %q…", res.StatusCode, body, want)
		}
	}
}

// TestShutdown: idle conns are closed at once; a request in flight is
// answered (with Connection: close) before Shutdown returns.
func TestShutdown(t *testing.T) {
	inside, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(inside)
			<-release
		}
		echo(w, r)
	})}
	addr := start(t, s)
	idle, idleBr := dial(t, addr)
	send(t, idle, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, idleBr, "GET")
	busy, busyBr := dial(t, addr)
	send(t, busy, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inside
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	wantClosed(t, idleBr)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	res, body := readResponse(t, busyBr, "GET")
	if res.StatusCode != 200 || !strings.HasPrefix(body, "GET /hold") || !res.Close {
		t.Fatalf("in-flight request: %d %q %v", res.StatusCode, body, res.Header)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantClosed(t, busyBr)
	if err := s.ServeConn(&memConn{}); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeConn after Shutdown: %v", err)
	}
}

// TestPanic: a handler panic ends its conn without a response; the server
// keeps serving.
func TestPanic(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		echo(w, r)
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	wantNoAnswer(t, br, "an aborted handler")
	wantServes(t, addr)
}

// TestHijack: a handler can take the conn over, with the bytes the server
// read ahead.
func TestHijack(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo: " + line)
		rw.Flush()
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("%v %v", res, err)
	}
	if line, _ := br.ReadString('\n'); line != "echo: ping\n" {
		t.Fatalf("got %q", line)
	}
}

// memConn is a conn whose input is fixed and whose output is discarded,
// or kept in out if set.
type memConn struct {
	r   io.Reader
	mu  sync.Mutex
	out *bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, io.EOF
	}
	return c.r.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	if c.out != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.out.Write(p)
	}
	return len(p), nil
}

// written is how many bytes were written so far.
func (c *memConn) written() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Len()
}

func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn feeds arbitrary bytes to a conn: the server must answer
// or close, never hang or crash, whatever the request framing; with the
// plain-text refusals (no Refuse hook) and with a Refuse hook, whose
// refusal must be the conn's last answer, well-formed, with the status
// and reason the server gave, Connection: close and no body after a HEAD,
// and the plain-text answer when the hook panics (method PANIC).
func FuzzServeConn(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET http://x/ HTTP/1.1\r\n\r\n",
		"\r\n\r\nGET",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"PANIC / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"POST / HTTP/2.0\r\nHost: a\r\nContent-Length: 1\r\n\r\na",
		"GET / HTTP/1.0\r\nHost: a\r\nExpect: x\r\n\r\n",
		"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n X: y\n\n",
	} {
		f.Add([]byte(seed))
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/stream" {
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "%d", n)
	})
	plain := &Server{Handler: handler}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve := func(t *testing.T, s *Server, c *memConn) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.ServeConn(c)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn did not return")
		}
	}
	statusOf := map[string]int{ReasonMalformedRequest: 400, ReasonHeadersTooLarge: 431,
		ReasonUnsupportedTransferEncoding: 501, ReasonExpectationFailed: 417, ReasonHTTPVersionNotSupported: 505}
	f.Fuzz(func(t *testing.T, in []byte) {
		serve(t, plain, &memConn{r: strings.NewReader(string(in))})

		c := &memConn{r: strings.NewReader(string(in)), out: new(bytes.Buffer)}
		type call struct {
			mark   int
			why    Refusal
			method string
			bad    string // what was wrong with the request Refuse got
		}
		var calls []call
		s := &Server{Handler: handler, Log: quiet, Refuse: func(w http.ResponseWriter, r *http.Request, why Refusal) {
			k := call{mark: c.written(), why: why, method: r.Method}
			switch {
			case r.URL == nil || r.Header == nil || r.Body != http.NoBody:
				k.bad = "URL, Header or Body"
			case r.RemoteAddr == "" || r.Context().Value(http.LocalAddrContextKey) == nil || r.Context().Err() != nil:
				k.bad = "conn facts"
			case statusOf[why.Reason] != why.Status || why.Detail == "":
				k.bad = "refusal"
			case strings.ContainsAny(why.Detail, "\"'`:\\"):
				// net/http's errors quote the client's bytes (%q): a
				// detail never does, they may hold a credential.
				k.bad = "a detail that quotes: " + why.Detail
			}
			calls = append(calls, k)
			if r.Method == "PANIC" {
				panic("refuse bug")
			}
			b := []byte(`{"reason":"` + why.Reason + `"}`)
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(why.Status)
			if r.Method != http.MethodHead {
				_, _ = w.Write(b)
			}
		}}
		serve(t, s, c)
		if len(calls) == 0 {
			return
		}
		k := calls[0]
		if len(calls) > 1 || k.bad != "" {
			t.Fatalf("Refuse called %d times, first with a bad %s: %+v", len(calls), k.bad, k.why)
		}
		out := c.out.Bytes()[k.mark:]
		method := k.method
		if method != http.MethodHead {
			method = http.MethodGet
		}
		br := bufio.NewReader(bytes.NewReader(out))
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("refusal %+v: %v: %q", k.why, err, out)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != k.why.Status || !res.Close || !bytes.Contains(out, []byte("\r\nConnection: close\r\n")) {
			t.Fatalf("refusal %+v answered %q (%v)", k.why, out, err)
		}
		want := `{"reason":"` + k.why.Reason + `"}`
		switch {
		case k.method == "PANIC":
			want = strconv.Itoa(k.why.Status) + " " + http.StatusText(k.why.Status)
			if !strings.HasPrefix(string(body), want) {
				t.Fatalf("after a panic: %q", out)
			}
		case method == http.MethodHead:
			if len(body) != 0 {
				t.Fatalf("HEAD refusal with a body: %q", out)
			}
		case string(body) != want:
			t.Fatalf("refusal body %q, want %q", body, want)
		}
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Fatalf("bytes after the refusal: %q", out)
		}
	})
}

// TestNoResponseSplitting: a header value carrying CR or LF (say, an
// upstream value or a reflected input) cannot start a field or a second
// response on the wire, and a field name that is not a token is dropped, as
// net/http does; in the response header and in trailers alike.
func TestNoResponseSplitting(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Evil", "a\r\nSet-Cookie: pwned=1\r\n\r\nHTTP/1.1 200 OK")
		h["Bad Name"] = []string{"x"}
		h.Set("Trailer", "X-Trail")
		_, _ = io.WriteString(w, "body")
		h.Set("X-Trail", "t\nSet-Cookie: pwned=2")
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(br)
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.ToLower(strings.TrimRight(line, "\r"))
		if strings.HasPrefix(l, "set-cookie") || strings.HasPrefix(l, "bad name") || strings.HasPrefix(l, "http/1.1 200") && line != strings.SplitN(string(raw), "\n", 2)[0] {
			t.Fatalf("injected line %q on the wire:\n%s", line, raw)
		}
	}
	if !strings.Contains(string(raw), "X-Evil: a  Set-Cookie: pwned=1    HTTP/1.1 200 OK") {
		t.Fatalf("the value was not kept on one line:\n%s", raw)
	}
}

// TestNoResponseSplittingInterimAndTrailers: the same for the fields of an
// interim (1xx) response and of trailers announced by the Trailer prefix.
func TestNoResponseSplittingInterimAndTrailers(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</a>\r\nSet-Cookie: pwned=1")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		h.Set(http.TrailerPrefix+"X-Late", "") // announced by the prefix before the body
		h[http.TrailerPrefix+"Bad\r\nName"] = []string{"x"}
		_, _ = io.WriteString(w, "body")
		h.Set(http.TrailerPrefix+"X-Late", "t\r\nSet-Cookie: pwned=2")
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(br)
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.ToLower(strings.TrimRight(line, "\r"))
		if strings.HasPrefix(l, "set-cookie") || strings.HasPrefix(l, "name") {
			t.Fatalf("injected line %q on the wire:\n%s", line, raw)
		}
	}
	if !strings.Contains(string(raw), "HTTP/1.1 103") || !strings.Contains(string(raw), "X-Late: t  Set-Cookie: pwned=2") {
		t.Fatalf("the interim response or the trailer is missing, or a value was not kept on one line:\n%s", raw)
	}
}

// TestHandlerContentLengthPlainDigitsOnly: a Content-Length a handler sets
// that is not plain digits ("+2", " 2", "2,2") never goes out: the server
// frames the response itself.
func TestHandlerContentLengthPlainDigitsOnly(t *testing.T) {
	for _, cl := range []string{"+2", " 2", "2,2", "-2", "0x2"} {
		addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Length"] = []string{cl}
			_, _ = io.WriteString(w, "ab")
		})})
		c, br := dial(t, addr)
		send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		raw, _ := io.ReadAll(br)
		if strings.Contains(string(raw), "Content-Length: "+cl+"\r\n") || !strings.Contains(string(raw), "Content-Length: 2\r\n") {
			t.Fatalf("handler's Content-Length %q:\n%s", cl, raw)
		}
	}
}

// TestHeaderBudgetExact: a request line and header block of exactly the
// budget (MaxHeaderBytes plus net/http's 4096 bytes of slack) is served
// and one byte more is 431, on a new conn (whose first read may buffer
// the block before the budget is set), on a kept-alive one, and behind a
// pipelined request (read ahead with it).
func TestHeaderBudgetExact(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), MaxHeaderBytes: 1000}
	addr := start(t, s)
	budget := int(s.maxHeaderBytes())
	for _, tt := range []struct {
		extra, status int
	}{{0, 200}, {1, 431}} {
		for _, how := range []string{"new", "kept-alive", "pipelined"} {
			c, br := dial(t, addr)
			first := "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
			if how == "kept-alive" {
				send(t, c, first)
				readResponse(t, br, "GET")
			}
			head := "GET /x HTTP/1.1\r\nHost: a\r\nX-Pad: "
			req := head + strings.Repeat("p", budget+tt.extra-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
			if how == "pipelined" {
				// In one write: the server has read the second request's
				// bytes ahead with the first's.
				send(t, c, first+req)
				readResponse(t, br, "GET")
			} else {
				send(t, c, req)
			}
			if res, _ := readResponse(t, br, "GET"); res.StatusCode != tt.status {
				t.Errorf("%d bytes (budget %d), %s: %d, want %d", len(req), budget, how, res.StatusCode, tt.status)
			}
		}
	}
}
