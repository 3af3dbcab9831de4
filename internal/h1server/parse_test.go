package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const noLimit = 1 << 20

// matchesStd fails t unless http.ReadRequest reads in the same request as
// parseRequest from in, and consumes the same bytes.
func matchesStd(t *testing.T, in []byte) {
	t.Helper()
	lean, n, ok := parseRequest(context.Background(), in, noLimit)
	if !ok {
		t.Fatalf("parseRequest declined %q", in)
	}
	br := bufio.NewReaderSize(bytes.NewReader(in), len(in)+16)
	std, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("parseRequest accepted %q, which http.ReadRequest refuses: %v", in, err)
	}
	if consumed := len(in) - br.Buffered(); consumed != n {
		t.Fatalf("in %q: header section of %d bytes, ReadRequest read %d", in, n, consumed)
	}
	if lean.Method != std.Method || lean.RequestURI != std.RequestURI || lean.Proto != std.Proto ||
		lean.ProtoMajor != std.ProtoMajor || lean.ProtoMinor != std.ProtoMinor || lean.Host != std.Host ||
		lean.Close != std.Close || lean.ContentLength != std.ContentLength || lean.Body != std.Body ||
		lean.TransferEncoding != nil || std.TransferEncoding != nil || lean.Trailer != nil || std.Trailer != nil ||
		lean.GetBody != nil || std.GetBody != nil || lean.RemoteAddr != std.RemoteAddr || lean.TLS != std.TLS ||
		lean.Context() != std.Context() {
		t.Fatalf("in %q:\nlean %+v\nstd  %+v", in, lean, std)
	}
	if !reflect.DeepEqual(lean.URL, std.URL) {
		t.Fatalf("in %q: URL\nlean %#v\nstd  %#v", in, lean.URL, std.URL)
	}
	if !reflect.DeepEqual(lean.Header, std.Header) {
		t.Fatalf("in %q: header\nlean %q\nstd  %q", in, lean.Header, std.Header)
	}
}

// TestParseRequest: the body-less requests usual clients send are parsed
// by the lean parser, to what http.ReadRequest reads.
func TestParseRequest(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /public/bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\nGET /next",
		"GET /a/b%20c/d?x=1&y=%2F#frag HTTP/1.1\r\nHost: gw.example:8443\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n",
		"GET //double/slash?q HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /p? HTTP/1.1\r\nHost: a\r\n\r\n",
		"DELETE /x HTTP/1.1\r\nhost: a\r\ncontent-length: 000\r\nconnection: Keep-Alive, close\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX-A: 1\r\nx-a: 2\r\nX-Spaces: \t v \t\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
		"X-CUSTOM! /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\nAuthorization: Bearer x.y.z\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: \r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: bad host\r\n\r\n",
		// unusual targets: some read by plainTarget, others by url.ParseRequestURI
		"GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b#c HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a#b?c HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a;b=c,d:e@f$g&h+i~j_k.l-m HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a!b'c(d)e*f HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET //x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?? HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b? HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /?%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /?a=[1]&b={2}|\"<>\\^` HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /?caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		// as many header lines as a leanRequest holds values for, and more
		"GET /x HTTP/1.1\r\nHost: a\r\n" + fieldLines(leanVals-1) + "\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n" + fieldLines(leanVals) + "\r\n",
	} {
		matchesStd(t, []byte(in))
	}
}

// fieldLines returns n field lines, some with the same name.
func fieldLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-%d: %d\r\n", i%4, i)
	}
	return b.String()
}

// TestParseRequestDeclines: everything outside the strict common case is
// left to http.ReadRequest.
func TestParseRequestDeclines(t *testing.T) {
	for _, tt := range []struct{ name, in string }{
		{"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n"},
		{"HTTP/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"absolute form", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"CONNECT", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"bad method", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"tab in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"tab in query", "GET /a?b\tc HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"no host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{"body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"},
		{"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"},
		{"empty length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"},
		{"signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n"},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"trailer", "GET / HTTP/1.1\r\nHost: a\r\nTrailer: X\r\n\r\n"},
		{"pragma", "GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n"},
		{"bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n"},
		{"bare LF in field", "GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n"},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n"},
		{"NUL", "GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n"},
		{"DEL", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n"},
		{"folded", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"},
		{"leading space", "GET / HTTP/1.1\r\n Host: a\r\n\r\n"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n"},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"},
		{"non-token name", "GET / HTTP/1.1\r\nHost: a\r\nX/Y: 1\r\n\r\n"},
	} {
		if _, _, ok := parseRequest(context.Background(), []byte(tt.in), noLimit); ok {
			t.Errorf("%s: parseRequest accepted %q", tt.name, tt.in)
		}
	}
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", 100) + "\r\n\r\n")
	if _, _, ok := parseRequest(context.Background(), in, int64(len(in)-1)); ok {
		t.Error("parseRequest accepted a header section over the limit")
	}
	if _, _, ok := parseRequest(context.Background(), in, int64(len(in))); !ok {
		t.Error("parseRequest declined a header section at the limit")
	}
}

// FuzzParseRequest: wherever the lean parser accepts a request,
// http.ReadRequest reads the same one from the same bytes.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET /public/bench HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n"))
	f.Add([]byte("GET /a%20b?x=%2F HTTP/1.1\r\nhost: a:1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"))
	for _, target := range []string{"/a%2Fb", "/a b", "/\xc3\xa9", "/a?b#c", "/a;b", "//x", "/a?", "/?%zz",
		"/a!b", "/a?b?", "/a\tb", "/?a\tb", "/?\xff"} {
		f.Add([]byte("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n"))
	}
	f.Add([]byte("GET /x HTTP/1.1\r\nHost: a\r\n" + fieldLines(leanVals) + "\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, _, ok := parseRequest(context.Background(), in, noLimit); ok {
			matchesStd(t, in)
		}
	})
}

// TestPlainTarget: wherever plainTarget reads a target, it reads what
// url.ParseRequestURI does, for every byte in every part of a target;
// and it reads the usual targets.
func TestPlainTarget(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		for _, target := range []string{"/" + b, "/a" + b + "b", "/a" + b + "?q", "/a?" + b, "/a?q" + b + "r", "/a?" + b + "?"} {
			var u url.URL
			if !plainTarget(target, &u) {
				continue
			}
			std, err := url.ParseRequestURI(target)
			if err != nil || !reflect.DeepEqual(&u, std) {
				t.Errorf("plainTarget(%q) = %#v; ParseRequestURI: %#v, %v", target, u, std, err)
			}
		}
	}
	for _, target := range []string{"/", "/public/bench", "/ro/bench", "//x", "/a;b", "/a?", "/a?x=1&y=%2F&z=a+b", "/a?b?c"} {
		if !plainTarget(target, new(url.URL)) {
			t.Errorf("plainTarget declines %q", target)
		}
	}
}

// TestParseAllocs: a usual request costs parseRequest the copy of its
// header section, the header map (its struct and its first group) and
// the leanRequest.
func TestParseAllocs(t *testing.T) {
	in := []byte("GET /public/bench?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _, _, _ = parseRequest(ctx, in, noLimit) }); n > 4 {
		t.Errorf("parseRequest allocates %v times, want 4", n)
	}
}

// TestLeanAndStdRequestsServedAlike: on a kept-alive conn the first
// request is read by http.ReadRequest (it arrives in two writes: the first
// read has only part of it, which the lean parser declines) and the
// second, the same bytes in one write, by the lean parser; the handler
// sees the same request both times.
func TestLeanAndStdRequestsServedAlike(t *testing.T) {
	const raw = "GET /a%2Fb/c?x=1 HTTP/1.1\r\nHost: gw.example\r\nUser-Agent: t\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"
	if _, _, ok := parseRequest(context.Background(), []byte(raw), noLimit); !ok {
		t.Fatal("the lean parser declines the test request")
	}
	seen := make(chan string, 2)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- fmt.Sprintf("%s %q %q %s %d.%d host=%q close=%v len=%d body=%v header=%q url=%#v remote=%v ctx=%v",
			r.Method, r.RequestURI, r.URL.Path, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Host, r.Close,
			r.ContentLength, r.Body == http.NoBody, r.Header, *r.URL, r.RemoteAddr != "", r.Context().Err())
	})}
	// A pipe: each server read gets at most one client write.
	c, sc := net.Pipe()
	defer c.Close()
	go func() { _ = s.ServeConn(sc) }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var views [2]string
	for i := range views {
		if i == 0 {
			send(t, c, raw[:20])
			send(t, c, raw[20:])
		} else {
			send(t, c, raw)
		}
		if res, _ := readResponse(t, br, "GET"); res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		views[i] = <-seen
	}
	if views[0] != views[1] {
		t.Fatalf("handler saw\nstd  %s\nlean %s", views[0], views[1])
	}
}

// TestLeanRequestHijackKeepsHeaderDeadline: a lean-parsed request skips
// setting its header read deadline (it reads nothing); a handler that
// hijacks the conn still gets the read deadline the request would have
// had (ReadHeaderTimeout), not the idle wait's (IdleTimeout).
func TestLeanRequestHijackKeepsHeaderDeadline(t *testing.T) {
	readErr := make(chan error, 1)
	addr := start(t, &Server{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/hijack" {
				return
			}
			c, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				readErr <- err
				return
			}
			defer c.Close()
			_, err = rw.ReadByte() // the client sends nothing more
			readErr <- err
		})})
	c, br := dial(t, addr)
	send(t, c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, br, "GET")
	const hijack = "GET /hijack HTTP/1.1\r\nHost: a\r\n\r\n"
	if _, _, ok := parseRequest(context.Background(), []byte(hijack), noLimit); !ok {
		t.Fatal("the lean parser declines the test request")
	}
	send(t, c, hijack)
	select {
	case err := <-readErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("hijacker's read: %v, want a timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hijacker's read has no header deadline")
	}
}
