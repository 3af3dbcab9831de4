package h1server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refused is what a test Refuse hook saw.
type refused struct {
	why                              Refusal
	method, path, proto, host        string
	major, minor                     int
	remote                           string
	header                           http.Header
	bodyNone, hasLocalAddr, ctxAlive bool
}

// refuser is a Refuse hook that answers problem+json, as the gateway
// does, and reports what it saw on seen.
func refuser(seen chan<- refused) func(w http.ResponseWriter, r *http.Request, why Refusal) {
	return func(w http.ResponseWriter, r *http.Request, why Refusal) {
		_, hasLocal := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		seen <- refused{why: why, method: r.Method, path: r.URL.Path, proto: r.Proto, host: r.Host,
			major: r.ProtoMajor, minor: r.ProtoMinor, remote: r.RemoteAddr, header: r.Header.Clone(),
			bodyNone: r.Body == http.NoBody, hasLocalAddr: hasLocal, ctxAlive: r.Context().Err() == nil}
		b, _ := json.Marshal(map[string]any{"status": why.Status, "reason": why.Reason, "detail": why.Detail})
		h := w.Header()
		h.Set("Content-Type", "application/problem+json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		h.Set("X-Request-Id", "id-1")
		w.WriteHeader(why.Status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(b)
		}
	}
}

// readLast reads everything the server sends until it closes the conn,
// which must be one response: it returns the response, its body and the
// raw bytes.
func readLast(t *testing.T, br *bufio.Reader, method string) (*http.Response, string, string) {
	t.Helper()
	b, err := io.ReadAll(br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not close the connection after %q", b)
	}
	rb := bufio.NewReader(strings.NewReader(string(b)))
	res, err := http.ReadResponse(rb, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%v: %q", err, b)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%v: %q", err, b)
	}
	if rest, _ := io.ReadAll(rb); len(rest) != 0 {
		t.Fatalf("more than one response: %q", b)
	}
	return res, string(body), string(b)
}

// TestRefuse: every request the server refuses itself goes to Refuse,
// with the reason code, the request as far as it parsed (or a minimal one)
// and the conn's facts; the answer is Refuse's, with Connection: close,
// and the conn ends. The handler never runs. Some smuggling shapes reach
// this path in the server alone (no framing guard): NUL or another control
// byte in a field (http.ReadRequest refuses it), a space before the colon
// (ReadRequest keeps "X " as a name; checkRequest refuses it), an obs-fold
// line after Host (ReadRequest folds it into the Host value, which
// checkRequest refuses). Others do not: a bare LF and an obs-fold line
// elsewhere are accepted, as by net/http (the gateway's framing guard
// refuses them before the server sees them).
func TestRefuse(t *testing.T) {
	seen := make(chan refused, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the handler ran for %s %s", r.Method, r.URL)
	}), Refuse: refuser(seen), ReadTimeout: 5 * time.Second}
	addr := start(t, s)
	tests := []struct {
		name, raw, method string
		status            int
		reason, detail    string
		parsed            bool   // the request line and fields parsed
		proto             string // when parsed
	}{
		{name: "no version", raw: "GET /x\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed request line"},
		{name: "junk request line", raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", status: 400, reason: ReasonMalformedRequest},
		{name: "bad version", raw: "GET /x HTTP/1.1 x\r\nHost: a\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed HTTP version"},
		{name: "bad method", raw: "G\"T /x HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "invalid method"},
		{name: "bad target", raw: "GET x HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "invalid request target"},
		{name: "NUL in a value", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed header field"},
		{name: "NUL in a name", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX\x00A: b\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed header field"},
		{name: "CR in a value", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed header field"},
		{name: "two Hosts", raw: "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "repeated Host header"},
		{name: "two lengths", raw: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", status: 400, reason: ReasonMalformedRequest, detail: "invalid Content-Length"},
		{name: "bad length", raw: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\na", status: 400, reason: ReasonMalformedRequest, detail: "invalid Content-Length"},
		{name: "space before colon", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "invalid header name", parsed: true, proto: "HTTP/1.1"},
		{name: "obs-fold into Host", raw: "GET /x HTTP/1.1\r\nHost: a\r\n X: y\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed Host header", parsed: true, proto: "HTTP/1.1"},
		{name: "missing Host", raw: "GET /x HTTP/1.1\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "missing required Host header", parsed: true, proto: "HTTP/1.1"},
		{name: "bad Host, lean-parsed", raw: "GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400, reason: ReasonMalformedRequest, detail: "malformed Host header", parsed: true, proto: "HTTP/1.1"},
		{name: "bad Host, HEAD", raw: "HEAD /x HTTP/1.1\r\nHost: a b\r\n\r\n", method: "HEAD", status: 400, reason: ReasonMalformedRequest, parsed: true, proto: "HTTP/1.1"},
		{name: "bad Host, HTTP/1.0", raw: "GET /x HTTP/1.0\r\nHost: a/b\r\n\r\n", status: 400, reason: ReasonMalformedRequest, parsed: true, proto: "HTTP/1.0"},
		{name: "gzip", raw: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501, reason: ReasonUnsupportedTransferEncoding},
		{name: "two Transfer-Encoding fields", raw: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501, reason: ReasonUnsupportedTransferEncoding},
		// The client's bytes, quoted in the parse error, choose nothing.
		{name: "request line naming a refusal", raw: "GET /x unsupported transfer encoding\r\nHost: a\r\n\r\n", status: 400, reason: ReasonMalformedRequest},
		{name: "unknown Expect", method: "POST", raw: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: magic\r\n\r\nabc", status: 417, reason: ReasonExpectationFailed, parsed: true, proto: "HTTP/1.1"},
		{name: "HTTP/2.0", raw: "GET /x HTTP/2.0\r\nHost: a\r\n\r\n", status: 505, reason: ReasonHTTPVersionNotSupported, parsed: true, proto: "HTTP/2.0"},
		{name: "HTTP/0.9", raw: "GET /x HTTP/0.9\r\n\r\n", status: 505, reason: ReasonHTTPVersionNotSupported, parsed: true, proto: "HTTP/0.9"},
		{name: "header block over the limit", raw: "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", http.DefaultMaxHeaderBytes+5000) + "\r\n\r\n",
			status: 431, reason: ReasonHeadersTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, addr)
			send(t, c, tt.raw+"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
			method := tt.method
			if method == "" {
				method = "GET"
			}
			res, body, raw := readLast(t, br, method) // the next request unanswered
			var got refused
			select {
			case got = <-seen:
			default:
				t.Fatalf("Refuse not called; answer %d %q", res.StatusCode, body)
			}
			if got.why.Status != tt.status || got.why.Reason != tt.reason || tt.detail != "" && got.why.Detail != tt.detail {
				t.Fatalf("Refuse got %+v, want %d %s %q", got.why, tt.status, tt.reason, tt.detail)
			}
			if res.StatusCode != tt.status || res.Header.Get("Content-Type") != "application/problem+json" || res.Header.Get("X-Request-Id") != "id-1" {
				t.Fatalf("answer %d %v", res.StatusCode, res.Header)
			}
			if !res.Close || !strings.Contains(raw, "\r\nConnection: close\r\n") {
				t.Errorf("answer without Connection: close: %q", raw)
			}
			if want := "HTTP/1.1 "; tt.proto == "HTTP/1.0" || tt.proto == "HTTP/0.9" {
				if !strings.HasPrefix(raw, "HTTP/1.0 ") {
					t.Errorf("answer to %s: %q", tt.proto, raw)
				}
			} else if !strings.HasPrefix(raw, want) {
				t.Errorf("answer: %q", raw)
			}
			if method == "HEAD" {
				if body != "" || res.ContentLength <= 0 {
					t.Errorf("HEAD answer: length %d, body %q", res.ContentLength, body)
				}
			} else if !strings.Contains(body, `"reason":"`+tt.reason+`"`) {
				t.Errorf("body %q", body)
			}
			if got.remote == "" || !got.hasLocalAddr || !got.ctxAlive || !got.bodyNone {
				t.Errorf("request facts: %+v", got)
			}
			if tt.parsed {
				if got.method != method || got.path != "/x" || got.proto != tt.proto {
					t.Errorf("parsed request: %+v", got)
				}
			} else if got.method != "" || got.path != "" || got.proto != "" || got.major != 1 || got.minor != 1 || len(got.header) != 0 {
				t.Errorf("unparsed request: %+v", got)
			}
		})
	}
}

// TestRefuseSilentOnClientGone: a read error that is only the client
// going away (EOF mid-request, a timeout) is not answered, and Refuse is
// not called.
func TestRefuseSilentOnClientGone(t *testing.T) {
	seen := make(chan refused, 1)
	addr := start(t, &Server{Handler: http.HandlerFunc(echo), Refuse: refuser(seen), ReadHeaderTimeout: 100 * time.Millisecond})
	// The header block cut by EOF (a request line cut by EOF is a
	// malformed line, as for net/http).
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\n")
	c.(*net.TCPConn).CloseWrite()
	wantNoAnswer(t, br, "a header block cut by the client")
	// A request line cut by the timeout is parsed as it is, as with
	// net/http (bufio.Reader.ReadLine keeps a partial line and drops the
	// error): not tested here.
	for _, raw := range []string{"", "GET /x HTTP/1.1\r\nHost: a\r\n"} {
		c, br := dial(t, addr) // cut by the header timeout
		send(t, c, raw)
		wantNoAnswer(t, br, fmt.Sprintf("%q", raw))
	}
	select {
	case got := <-seen:
		t.Fatalf("Refuse called: %+v", got)
	default:
	}
}

// TestRefuseAnswerIsBounded: whatever the hook does, the answer ends the
// conn: if it writes nothing the answer is the refusal's status, a Connection field it
// sets is replaced, it cannot hijack the conn or move its deadlines, and
// a panic is recovered (the client then gets the plain-text answer, with
// ErrorHeader's fields, or nothing for http.ErrAbortHandler).
func TestRefuseAnswerIsBounded(t *testing.T) {
	var hookErr error
	s := &Server{Handler: http.HandlerFunc(echo), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ErrorHeader: func() http.Header { return http.Header{"Strict-Transport-Security": {"max-age=1"}} },
		Refuse: func(w http.ResponseWriter, r *http.Request, why Refusal) {
			switch r.Host {
			case "a b": // writes nothing
			case "keep alive":
				w.Header().Set("Connection", "keep-alive")
				w.WriteHeader(why.Status)
				_, hookErr = io.WriteString(w, "refused")
				if _, _, err := w.(http.Hijacker).Hijack(); err == nil {
					t.Error("Hijack allowed")
				}
				if err := http.NewResponseController(w).SetReadDeadline(time.Time{}); err == nil {
					t.Error("read deadline moved")
				}
			case "panic now":
				panic("refuse bug")
			case "abort now":
				panic(http.ErrAbortHandler)
			}
		},
	}
	addr := start(t, s)
	check := func(raw string, status int, body string, header http.Header) {
		t.Helper()
		c, br := dial(t, addr)
		send(t, c, raw)
		res, got, out := readLast(t, br, "GET")
		if res.StatusCode != status || got != body || !strings.Contains(out, "\r\nConnection: close\r\n") || strings.Contains(out, "keep-alive") {
			t.Fatalf("%q: %q", raw, out)
		}
		for k := range header {
			if res.Header.Get(k) != header.Get(k) {
				t.Errorf("%q: %s = %q", raw, k, res.Header.Get(k))
			}
		}
	}
	check("GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "", nil)
	check("GET /x HTTP/1.1\r\nHost: keep alive\r\n\r\n", 400, "refused", nil)
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	check("GET /x HTTP/1.1\r\nHost: panic now\r\n\r\n", 400, "400 Bad Request: malformed Host header",
		http.Header{"Strict-Transport-Security": {"max-age=1"}, "Content-Type": {"text/plain; charset=utf-8"}})
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: abort now\r\n\r\n")
	wantNoAnswer(t, br, "an aborted refusal")
	wantServes(t, addr) // the server still serves
}

// TestRefuseWriteDeadline: a refusal to a client that does not read is
// cut at the refusal's write deadline, as the plain-text answer is.
func TestRefuseWriteDeadline(t *testing.T) {
	defer func(d time.Duration) { refusalWriteTimeout = d }(refusalWriteTimeout)
	refusalWriteTimeout = 100 * time.Millisecond
	s := &Server{Handler: http.HandlerFunc(echo), Refuse: func(w http.ResponseWriter, r *http.Request, why Refusal) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 1 << 10 { // 64 MiB: more than any socket buffer holds
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}}
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.ServeConn(server)
	}()
	if _, err := io.WriteString(client, "GET\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing.
	select {
	case <-done:
	case <-time.After(2 * time.Second): // well under the default 5 s: the setting is what bounds it
		t.Fatal("the refusal's write is not bounded by refusalWriteTimeout")
	}
}

// TestShutdownServesRequestOnNewConn: a request that arrives on a new
// conn after Shutdown has begun, within the conn's grace, is served (with
// Connection: close), not lost: a client does not retry a request that
// failed on a fresh connection.
func TestShutdownServesRequestOnNewConn(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: time.Hour, NewConnGrace: time.Hour}
	addr := start(t, s)
	c, br := dial(t, addr)
	waitUntil(t, "the conn waits for its first request", func() bool { return countStates(s)[stateNew] == 1 })
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	waitUntil(t, "Shutdown has begun", s.shutdown.Load)
	send(t, c, "GET /late HTTP/1.1\r\nHost: a\r\n\r\n")
	res, body := readResponse(t, br, "GET")
	if res.StatusCode != 200 || !strings.HasPrefix(body, "GET /late") || !res.Close {
		t.Fatalf("request on a new conn during Shutdown: %d %q %v", res.StatusCode, body, res.Header)
	}
	wantShutdownDone(t, done)
}

// TestShutdownClosesConnsWithoutRequest: a kept-alive conn between
// requests is closed by Shutdown at once, a new conn that has sent
// nothing once its grace has passed (ReadHeaderTimeout and IdleTimeout
// are an hour); a conn whose request has started (a partial header
// block) is served to its end, with Connection: close, before Shutdown
// returns.
func TestShutdownClosesConnsWithoutRequest(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour, NewConnGrace: 100 * time.Millisecond}
	addr := start(t, s)
	_, silentBr := dial(t, addr)
	kept, keptBr := dial(t, addr)
	send(t, kept, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, keptBr, "GET")
	partial, partialBr := dial(t, addr)
	send(t, partial, "GET /partial HTTP/1.1\r\n")
	// Wait until the server has the partial request's first byte (its
	// conn active) and the other two are waiting (new and idle).
	waitUntil(t, "1 active conn and 2 waiting", func() bool {
		n := countStates(s)
		return n[stateActive] == 1 && n[stateIdle]+n[stateNew] == 2
	})
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	wantClosed(t, silentBr)
	wantClosed(t, keptBr)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	send(t, partial, "Host: a\r\n\r\n")
	res, body := readResponse(t, partialBr, "GET")
	if res.StatusCode != 200 || !strings.HasPrefix(body, "GET /partial") || !res.Close {
		t.Fatalf("in-flight request: %d %q %v", res.StatusCode, body, res.Header)
	}
	wantShutdownDone(t, done)
}

// countStates counts s's conns by state.
func countStates(s *Server) map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[int32]int{}
	for c := range s.conns {
		n[c.state.Load()]++
	}
	return n
}

// waitUntil polls cond, which another goroutine makes true, for 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not so after 5 s: %s", what)
		}
	}
}

// wantShutdownDone waits for Shutdown's result on done: nil, within 5 s.
func wantShutdownDone(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}
