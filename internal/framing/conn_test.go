package framing

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

// pipe is a net.Conn that returns src in reads of at most chunk bytes.
// Only Read is implemented.
type pipe struct {
	net.Conn
	src   []byte
	chunk int
	errAt int // if > 0, one os.ErrDeadlineExceeded when this many bytes are left
}

func (p *pipe) Read(b []byte) (int, error) {
	if p.errAt > 0 && len(p.src) == p.errAt {
		p.errAt = 0
		return 0, os.ErrDeadlineExceeded
	}
	if len(p.src) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(p.src), p.chunk)
	if p.errAt > 0 && len(p.src)-n < p.errAt {
		n = len(p.src) - p.errAt
	}
	copy(b, p.src[:n])
	p.src = p.src[n:]
	return n, nil
}

type result struct {
	out    string
	reason string
	index  int
	ok     bool
	starts []int64
}

// run pushes in through a guard, reading in chunks and reads of the given
// sizes, retrying on timeouts the way net/http's background read does.
func run(in string, chunk, readSize int, lim Limits) result {
	c := Wrap(&pipe{src: []byte(in), chunk: chunk}, lim)
	var r result
	c.trace = func(off int64) { r.starts = append(r.starts, off) }
	var out bytes.Buffer
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			break
		}
	}
	r.out = out.String()
	r.reason, r.index, r.ok = c.Violation()
	return r
}

// shapes are the read patterns every case is run under.
var shapes = []struct{ chunk, read int }{
	{1 << 20, 4096}, {1, 4096}, {3, 4096}, {7, 5}, {4096, 1}, {64, 64},
}

const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

func TestValidPassesThrough(t *testing.T) {
	cases := []struct {
		name string
		in   string
		reqs int
	}{
		{"get", get, 1},
		{"content length body", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 1},
		{"zero content length", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 1},
		{"CL leading zeros, OWS, lower case", "POST / HTTP/1.1\r\nhost: x\r\ncontent-length:\t 003 \r\n\r\nabc", 1},
		{"body on GET", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + get, 2},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 1},
		{"chunked, extensions and trailers",
			"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n" +
				"5;name=val\r\nhello\r\nA;q=\"x y\" \r\n0123456789\r\n0;last\r\nDigest: sha-256=abc\r\nX-T: 1\r\n\r\n", 1},
		{"chunk with data that looks like a request", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"1d\r\nGET /not-a-request HTTP/1\r\n\r\n\r\n0\r\n\r\n", 1},
		{"obs-text in value", "GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\x80\xff\r\n\r\n", 1},
		{"empty value", "GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n", 1},
		{"HTTP/1.0 with Content-Length", "POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 1},
		{"CRLF tolerated after POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\n" + get, 2},
		{"four CR/LF after POST", "POST / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\n\r" + get, 2},
		{"pipelined mixture", get +
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
			"PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\nT: v\r\n\r\n" +
			get + get, 5},
		{"large chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n" +
			strings.Repeat("z", 10000) + "\r\n0\r\n\r\n" + get, 2},
		{"large CL body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("b", 20000) + get, 2},
		{"large header block", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("v", 30000) + "\r\n\r\n" + get, 2},
	}
	for _, tc := range cases {
		for _, s := range shapes {
			r := run(tc.in, s.chunk, s.read, Limits{})
			if r.ok {
				t.Errorf("%s %v: violation %s in request %d", tc.name, s, r.reason, r.index)
			}
			if r.out != tc.in {
				t.Errorf("%s %v: output differs:\n got %q\nwant %q", tc.name, s, r.out, tc.in)
			}
			if len(r.starts) != tc.reqs {
				t.Errorf("%s %v: %d requests, want %d", tc.name, s, len(r.starts), tc.reqs)
			}
		}
	}
}

func TestViolations(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	post := func(fields string) string { return "POST / HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" }
	chunked := func(body string) string { return post("Transfer-Encoding: chunked\r\n") + body }
	cases := []struct {
		name   string
		before string // valid requests ahead of the bad one
		bad    string
		reason string
		index  int
		cut    string // body violation: expected output, no synthetic request
		lim    Limits
	}{
		{name: "CL then TE", bad: post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n" + smuggled, reason: ReasonTEAndCL},
		{name: "TE then CL", bad: post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n") + "0\r\n\r\n", reason: ReasonTEAndCL},
		{name: "TE and CL, 2nd request", before: get, bad: post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), reason: ReasonTEAndCL, index: 1},
		{name: "TE and CL after a body", before: post("Content-Length: 3\r\n") + "abc", bad: post("transfer-encoding: chunked\r\ncontent-length: 3\r\n"), reason: ReasonTEAndCL, index: 1},
		{name: "identical CL twice", bad: post("Content-Length: 4\r\nContent-Length: 4\r\n") + "abcd", reason: ReasonDuplicateCL},
		{name: "different CL", bad: post("Content-Length: 4\r\ncontent-LENGTH: 40\r\n"), reason: ReasonDuplicateCL},
		{name: "comma-joined CL", bad: post("Content-Length: 4, 4\r\n"), reason: ReasonDuplicateCL},
		{name: "no Host on HTTP/1.1", bad: "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", reason: ReasonBadHost},
		{name: "no Host, absolute-form", bad: "GET https://x/ HTTP/1.1\r\n\r\n", reason: ReasonBadHost},
		{name: "two Hosts", bad: "GET / HTTP/1.1\r\nHost: x\r\nhost: evil\r\n\r\n" + smuggled, reason: ReasonBadHost},
		{name: "TE gzip, chunked", bad: post("Transfer-Encoding: gzip, chunked\r\n"), reason: ReasonBadTE},
		{name: "TE chunked, identity", bad: post("Transfer-Encoding: chunked, identity\r\n"), reason: ReasonBadTE},
		{name: "TE xchunked", bad: post("Transfer-Encoding: xchunked\r\n"), reason: ReasonBadTE},
		{name: "TE chunked;x", bad: post("Transfer-Encoding: chunked;x\r\n"), reason: ReasonBadTE},
		{name: "TE empty", bad: post("Transfer-Encoding:\r\n"), reason: ReasonBadTE},
		{name: "TE twice", bad: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), reason: ReasonBadTE},
		{name: "TE on HTTP/1.0", bad: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", reason: ReasonBadTE},
		{name: "TE vertical tab", bad: post("Transfer-Encoding: \vchunked\r\n"), reason: ReasonInvalidHeader},
		{name: "TE hidden by obs-fold", bad: post("X-A: 1\r\n Transfer-Encoding: chunked\r\n"), reason: ReasonInvalidHeader},
		{name: "TE space before colon", bad: post("Transfer-Encoding : chunked\r\n"), reason: ReasonInvalidHeader},
		{name: "CL tab before colon", bad: post("Content-Length\t: 4\r\n"), reason: ReasonInvalidHeader},
		{name: "NUL in value", bad: post("X-A: a\x00b\r\n"), reason: ReasonInvalidHeader},
		{name: "CR in value", bad: post("X-A: a\rb\r\n"), reason: ReasonInvalidHeader},
		{name: "DEL in value", bad: post("X-A: a\x7f\r\n"), reason: ReasonInvalidHeader},
		{name: "bare LF header line", bad: "GET / HTTP/1.1\r\nHost: x\n\r\n", reason: ReasonInvalidHeader},
		{name: "bare LF ends block", bad: "GET / HTTP/1.1\r\nHost: x\r\n\n" + smuggled, reason: ReasonInvalidHeader},
		{name: "bare LF request line", bad: "GET / HTTP/1.1\nHost: x\r\n\r\n", reason: ReasonInvalidHeader},
		{name: "obs-fold", bad: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", reason: ReasonInvalidHeader},
		{name: "leading space first field", bad: "GET / HTTP/1.1\r\n Host: x\r\n\r\n", reason: ReasonInvalidHeader},
		{name: "non-token name", bad: post("X(A): 1\r\n"), reason: ReasonInvalidHeader},
		{name: "non-ASCII name", bad: post("X-\xc3\xa9: 1\r\n"), reason: ReasonInvalidHeader},
		{name: "empty name", bad: post(": 1\r\n"), reason: ReasonInvalidHeader},
		{name: "no colon", bad: post("X-A 1\r\n"), reason: ReasonInvalidHeader},
		{name: "control byte in request line", bad: "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", reason: ReasonInvalidHeader},
		{name: "CR in request line", bad: "GET / HTTP/1.1\r\r\nHost: x\r\n\r\n", reason: ReasonInvalidHeader},
		{name: "empty request line", before: get, bad: "\r\n" + get, reason: ReasonInvalidHeader, index: 1},
		{name: "five CR/LF after POST", before: post("") + "\r\n\r\n", bad: "\r" + get, reason: ReasonInvalidHeader, index: 1},
		{name: "CL sign", bad: post("Content-Length: +4\r\n"), reason: ReasonBadCL},
		{name: "CL negative", bad: post("Content-Length: -1\r\n"), reason: ReasonBadCL},
		{name: "CL hex", bad: post("Content-Length: 0x4\r\n"), reason: ReasonBadCL},
		{name: "CL empty", bad: post("Content-Length: \r\n"), reason: ReasonBadCL},
		{name: "CL inner space", bad: post("Content-Length: 4 4\r\n"), reason: ReasonBadCL},
		{name: "CL 19 digits", bad: post("Content-Length: 1000000000000000000\r\n"), reason: ReasonBadCL},
		{name: "header block too large", bad: "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 100) + "\r\n\r\n", reason: ReasonHeaderTooLarge, lim: Limits{MaxHeaderBytes: 64}},
		{name: "header block too large, no LF", bad: "GET /" + strings.Repeat("a", 200), reason: ReasonHeaderTooLarge, lim: Limits{MaxHeaderBytes: 64}},
		{name: "bad chunk size", before: "", bad: chunked("zz\r\nab\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("")},
		{name: "chunk size bare LF", bad: chunked("2\r\nab\r\n3\nabc\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("2\r\nab\r\n")},
		{name: "chunk data not followed by CRLF", bad: chunked("2\r\nabc\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("2\r\nab")},
		{name: "chunk size 17 digits", bad: chunked("00000000000000001\r\na\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("")},
		{name: "chunk size space before ext", bad: chunked("1 ;x\r\na\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("")},
		{name: "chunk line too long", bad: chunked("1;" + strings.Repeat("e", 5000) + "\r\na\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("")},
		{name: "chunk ext NUL", bad: chunked("1;\x00\r\na\r\n0\r\n\r\n"), reason: ReasonBadChunk, cut: chunked("")},
		{name: "bad trailer", before: get, bad: chunked("1\r\na\r\n0\r\nX: 1\nGET /smuggled HTTP/1.1\r\n\r\n"), reason: ReasonInvalidHeader, index: 1, cut: get + chunked("1\r\na\r\n0\r\n")},
		{name: "trailer too large", bad: chunked("0\r\nX: " + strings.Repeat("t", 100) + "\r\n\r\n"), reason: ReasonHeaderTooLarge, cut: chunked("0\r\n"), lim: Limits{MaxHeaderBytes: 90}},
	}
	for _, tc := range cases {
		want := tc.before + string(synthetic)
		if tc.cut != "" {
			want = tc.cut
		}
		for _, s := range shapes {
			r := run(tc.before+tc.bad, s.chunk, s.read, tc.lim)
			if !r.ok || r.reason != tc.reason || r.index != tc.index {
				t.Errorf("%s %v: got (%q, %d, %v), want (%q, %d)", tc.name, s, r.reason, r.index, r.ok, tc.reason, tc.index)
			}
			if r.out != want {
				t.Errorf("%s %v: output:\n got %q\nwant %q", tc.name, s, r.out, want)
			}
		}
	}
}

func TestDetach(t *testing.T) {
	const upgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	frames := "\x81\x05hello\x00\r\n\x88\x00"
	c := Wrap(&pipe{src: []byte(upgrade + frames), chunk: len(upgrade)}, Limits{})
	buf := make([]byte, len(upgrade))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != upgrade {
		t.Fatalf("read upgrade request: %q, %v", buf, err)
	}
	c.Detach()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != frames {
		t.Fatalf("after Detach: %q, %v; want %q", rest, err, frames)
	}
	if reason, _, ok := c.Violation(); ok {
		t.Fatalf("violation %s after Detach", reason)
	}
}

func TestReadErrorMidBlock(t *testing.T) {
	in := get + "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + get
	for at := 1; at < len(in); at++ {
		c := Wrap(&pipe{src: []byte(in), chunk: 5, errAt: at}, Limits{})
		var out bytes.Buffer
		var timeouts int
		buf := make([]byte, 7)
		for {
			n, err := c.Read(buf)
			out.Write(buf[:n])
			if errors.Is(err, os.ErrDeadlineExceeded) {
				timeouts++
				continue
			}
			if err != nil {
				break
			}
		}
		if out.String() != in || timeouts != 1 {
			t.Fatalf("error %d bytes from the end: got %q after %d timeouts", at, out.String(), timeouts)
		}
	}
}

func TestNoAllocsPerRequest(t *testing.T) {
	in := []byte(strings.Repeat(get, 50) + "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	p := &pipe{chunk: 1 << 20}
	c := Wrap(p, Limits{})
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		p.src = in
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per 51 requests", allocs)
	}
}
