package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// gatewayFields are what the gateway has put in the client's header map
// before the upstream answers.
func gatewayFields() http.Header {
	return http.Header{"Strict-Transport-Security": {"max-age=63072000"}, "X-Request-Id": []string{"id"}[:1:1]}
}

// matchesStd fails t unless http.ReadResponse reads in the same response
// as parseResponse from in, and the same body after it; and unless
// parseResponse with a sink accepts it too, putting in the client's header
// map what the lean path's copyResponseHeader would from ReadResponse's.
func matchesStd(t *testing.T, in []byte, req *http.Request) {
	t.Helper()
	lean, n, ok := parseResponse(in, req, nil)
	if !ok {
		t.Fatalf("parseResponse declined %q", in)
	}
	sink := &responseSink{h: gatewayFields()}
	viaSink, sinkN, sinkOK := parseResponse(in, req, sink)
	if !sinkOK || sinkN != n || viaSink.Header != nil || viaSink.StatusCode != lean.StatusCode || viaSink.ContentLength != lean.ContentLength {
		t.Fatalf("in %q: with a sink: ok %v, n %d (want %d), header %v", in, sinkOK, sinkN, n, viaSink.Header)
	}
	br := bufio.NewReaderSize(bytes.NewReader(in), len(in)+16)
	std, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("parseResponse accepted %q, which http.ReadResponse refuses: %v", in, err)
	}
	if lean.Status != std.Status || lean.StatusCode != std.StatusCode || lean.Proto != std.Proto ||
		lean.ProtoMajor != std.ProtoMajor || lean.ProtoMinor != std.ProtoMinor ||
		lean.ContentLength != std.ContentLength || lean.Close != std.Close || lean.Request != std.Request ||
		lean.TransferEncoding != nil || std.TransferEncoding != nil || len(std.Trailer) != 0 || lean.Trailer != nil ||
		lean.Uncompressed != std.Uncompressed || lean.TLS != std.TLS {
		t.Fatalf("in %q:\nlean %+v\nstd  %+v", in, lean, std)
	}
	if !reflect.DeepEqual(lean.Header, std.Header) {
		t.Fatalf("in %q: header\nlean %q\nstd  %q", in, lean.Header, std.Header)
	}
	want := gatewayFields()
	copyResponseHeader(want, std.Header, connectionTokens(std.Header))
	if !reflect.DeepEqual(sink.h, want) {
		t.Fatalf("in %q: client header via the sink\n%q\nwant %q", in, sink.h, want)
	}
	if ct := std.Header["Content-Type"]; sink.hasType != (len(ct) > 0) || (len(ct) > 0 && sink.contentType != ct[0]) {
		t.Fatalf("in %q: sink content type %q (%v), want %q", in, sink.contentType, sink.hasType, ct)
	}
	if consumed := len(in) - br.Buffered(); consumed != n {
		t.Fatalf("in %q: header section of %d bytes, ReadResponse read %d", in, n, consumed)
	}
	// The body: what the lean path reads after the header section.
	stdBody, stdErr := io.ReadAll(std.Body)
	leanBody := in[n:]
	var leanErr error
	if int64(len(leanBody)) >= lean.ContentLength {
		leanBody = leanBody[:lean.ContentLength]
	} else {
		leanErr = io.ErrUnexpectedEOF
	}
	if !bytes.Equal(stdBody, leanBody) || !errors.Is(stdErr, leanErr) && !(stdErr == nil && leanErr == nil) {
		t.Fatalf("in %q: body lean %q (%v), std %q (%v)", in, leanBody, leanErr, stdBody, stdErr)
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

func getRequest() *http.Request {
	r, _ := http.NewRequest("GET", "https://up.example/x", nil)
	return r
}

// TestParseResponse: the responses a usual upstream sends are parsed by
// the lean parser, to what http.ReadResponse reads.
func TestParseResponse(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nDate: Sun, 29 Nov 2026 04:38:13 GMT\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcEXTRA",
		"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 599 Whatever it is\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\nAlt-Svc: h3=\":443\"\r\nKeep-Alive: timeout=5\r\nX-Request-Id: upstream\r\nContent-Type: text/event-stream\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-lower-case: v\r\nX-UPPER: V\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\nset-cookie: c=3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Spaces: \t padded value \t \r\nX-Empty:\r\nX-Obs-Text: caf\xc3\xa9\r\nContent-Length:  007 \r\n\r\n1234567",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\nX-1: a:b:c\r\n\r\nok",
		// as many fields as a leanResponse holds values for, and more
		"HTTP/1.1 200 OK\r\n" + fieldLines(leanVals-1) + "Content-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + fieldLines(leanVals) + "Content-Length: 0\r\n\r\n",
	} {
		matchesStd(t, []byte(in), getRequest())
	}
}

// TestParseResponseDeclines: everything outside the strict common case
// is left to http.ReadResponse.
func TestParseResponseDeclines(t *testing.T) {
	head, _ := http.NewRequest("HEAD", "https://up.example/x", nil)
	for _, tt := range []struct {
		name, in string
		req      *http.Request
	}{
		{"incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", nil},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"HTTP/2", "HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"1xx", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", nil},
		{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", nil},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", nil},
		{"short status", "HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"long status", "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"signed status", "HTTP/1.1 +20 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"two spaces", "HTTP/1.1  200 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"no length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", nil},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", nil},
		{"chunked and length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", nil},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", nil},
		{"differing lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", nil},
		{"list length", "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", nil},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", nil},
		{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nx", nil},
		{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\nx", nil},
		{"connection", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", nil},
		{"trailer", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 1\r\n\r\nx", nil},
		{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx", nil},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\nx", nil},
		{"bare LF in field", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 1\r\n\r\nx", nil},
		{"leading LF", "\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", nil},
		{"bare CR", "HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 1\r\n\r\nx", nil},
		{"NUL", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 1\r\n\r\nx", nil},
		{"DEL", "HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 1\r\n\r\nx", nil},
		{"folded", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\nx", nil},
		{"leading space", "HTTP/1.1 200 OK\r\n X-A: a\r\nContent-Length: 1\r\n\r\nx", nil},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 1\r\n\r\nx", nil},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 1\r\n\r\nx", nil},
		{"empty name", "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 1\r\n\r\nx", nil},
		{"non-token name", "HTTP/1.1 200 OK\r\nX(A): a\r\nContent-Length: 1\r\n\r\nx", nil},
		{"status above 599", "HTTP/1.1 600 X\r\nX-Leak: upstream\r\nContent-Length: 1\r\n\r\nx", nil},
		{"a declined field after fields the sink would take", "HTTP/1.1 200 OK\r\nX-A: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nx", nil},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: a\r\n", maxLeanFields) + "Content-Length: 1\r\n\r\nx", nil},
	} {
		req := tt.req
		if req == nil {
			req = getRequest()
		}
		if _, _, ok := parseResponse([]byte(tt.in), req, nil); ok {
			t.Errorf("%s: parseResponse accepted %q", tt.name, tt.in)
		}
		sink := &responseSink{h: gatewayFields()}
		if _, _, ok := parseResponse([]byte(tt.in), req, sink); ok || !reflect.DeepEqual(sink.h, gatewayFields()) || sink.hasType {
			t.Errorf("%s: with a sink: accepted %v, client header %q", tt.name, ok, sink.h)
		}
	}
}

// FuzzParseResponse: wherever the lean parser accepts a response,
// http.ReadResponse reads the same one from the same bytes.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: 1\r\nX-A: 2\r\n\r\nhi"))
	f.Add([]byte("HTTP/1.1 404 \r\nContent-Length: 0\r\nX: \t\xff\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: a\r\n b\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n" + fieldLines(leanVals) + "Content-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, _, ok := parseResponse(in, getRequest(), nil); ok {
			matchesStd(t, in, getRequest())
			return
		}
		sink := &responseSink{h: gatewayFields()}
		if _, _, ok := parseResponse(in, getRequest(), sink); ok || !reflect.DeepEqual(sink.h, gatewayFields()) {
			t.Fatalf("in %q: declined without a sink, but with one: accepted %v, client header %q", in, ok, sink.h)
		}
	})
}

// TestParseResponseAllocs: a usual response costs parseResponse the copy
// of its header section, the header map (its struct and its first group)
// and the leanResponse.
func TestParseResponseAllocs(t *testing.T) {
	in := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nDate: Sun, 29 Nov 2026 04:38:13 GMT\r\n\r\nhello")
	req := getRequest()
	if n := testing.AllocsPerRun(100, func() { _, _, _ = parseResponse(in, req, nil) }); n > 4 {
		t.Errorf("parseResponse allocates %v times, want 4", n)
	}
}

// TestParseResponseSinkAllocs: into the client's header map, a usual
// response costs only the copy of its header section and the
// leanResponse (no header map of its own).
func TestParseResponseSinkAllocs(t *testing.T) {
	in := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nDate: Sun, 29 Nov 2026 04:38:13 GMT\r\n\r\nhello")
	req := getRequest()
	h := make(http.Header, 8)
	if n := testing.AllocsPerRun(100, func() {
		clear(h)
		_, _, _ = parseResponse(in, req, &responseSink{h: h})
	}); n > 2 {
		t.Errorf("parseResponse with a sink allocates %v times, want 2", n)
	}
}

// TestLeanResponseBody: a response the lean parser read has its body
// read from the conn, to io.EOF with its last bytes; a body cut short is
// io.ErrUnexpectedEOF and its conn is not pooled.
func TestLeanResponseBody(t *testing.T) {
	u, b := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/short" {
			_, _ = io.WriteString(w, "whole body")
			return
		}
		conn, bw, _ := http.NewResponseController(w).Hijack()
		defer conn.Close()
		_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut")
		_ = bw.Flush()
	}, nil)
	req, _ := http.NewRequest("GET", b.srv.URL+"/whole", nil)
	res, err := u.h1.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := res.Body.(*responseBody)
	if !ok || body.rc != nil {
		t.Fatalf("body %T not read by the lean parser", res.Body)
	}
	p := make([]byte, 64)
	n, err := res.Body.Read(p)
	if string(p[:n]) != "whole body" || err != io.EOF {
		t.Fatalf("read %q, %v; want the whole body with io.EOF", p[:n], err)
	}
	if len(u.h1.idle) != 1 {
		t.Fatalf("%d idle conns after the body's end, want 1", len(u.h1.idle))
	}
	res.Body.Close()

	req, _ = http.NewRequest("GET", b.srv.URL+"/short", nil)
	res, err = u.h1.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	if string(got) != "cut" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want \"cut\", io.ErrUnexpectedEOF", got, err)
	}
	res.Body.Close()
	if len(u.h1.idle) != 0 {
		t.Fatalf("%d idle conns after a body cut short", len(u.h1.idle))
	}
	wantOK(t, do(t, u, "GET", "/whole", ""), "whole body")
	wantDials(t, u, 2)
}

// TestStreamingContentType: whether the lean path flushes every write
// depends on the upstream's Content-Type, from the response's header map
// or, when the fields went straight to the client's (a sink), from the
// sink.
func TestStreamingContentType(t *testing.T) {
	for _, tt := range []struct {
		name   string
		res    *http.Response
		sink   responseSink
		stream bool
	}{
		{"unknown length", &http.Response{ContentLength: -1}, responseSink{}, true},
		{"sse via the sink", &http.Response{ContentLength: 10}, responseSink{contentType: "Text/Event-Stream; charset=utf-8", hasType: true}, true},
		{"other type via the sink", &http.Response{ContentLength: 10}, responseSink{contentType: "text/plain", hasType: true}, false},
		{"no type via the sink", &http.Response{ContentLength: 10}, responseSink{}, false},
		{"sse in the header map", &http.Response{ContentLength: 10, Header: http.Header{"Content-Type": {"text/event-stream"}}}, responseSink{}, true},
		{"the header map wins", &http.Response{ContentLength: 10, Header: http.Header{}}, responseSink{contentType: "text/event-stream", hasType: true}, false},
	} {
		if got := streaming(tt.res, &tt.sink); got != tt.stream {
			t.Errorf("%s: streaming = %v, want %v", tt.name, got, tt.stream)
		}
	}
}
