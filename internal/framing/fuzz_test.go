package framing

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
)

// FuzzGuard checks, for any input and read pattern: no panic; the output is
// the input (no violation), a prefix of it (input ended inside a held block,
// or a body violation), or a prefix plus the synthetic request; the result
// does not depend on how reads are split; and every request net/http parses
// from the output starts where the guard saw a request start, i.e. the
// guard and net/http never disagree on framing.
func FuzzGuard(f *testing.F) {
	seeds := []string{
		get,
		get + get + get,
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + get,
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\n" + get,
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\n\n" + get,
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n" + get,
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: 1\n\n" + get,
		"\r\n" + get,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		lim := Limits{MaxHeaderBytes: 512}
		whole := run(string(in), len(in)+1, 4096, lim)
		split := run(string(in), int(chunk)%16+1, int(chunk)%7+1, lim)
		if whole.out != split.out || whole.reason != split.reason || whole.index != split.index || !slices.Equal(whole.starts, split.starts) {
			t.Fatalf("read pattern changed the result:\n%+v\n%+v", whole, split)
		}
		out := []byte(whole.out)
		if len(out) > len(in)+len(synthetic) {
			t.Fatalf("output longer than input plus synthetic request")
		}
		prefix := bytes.HasPrefix(in, out)
		withSynth := bytes.HasSuffix(out, synthetic) && bytes.HasPrefix(in, out[:len(out)-len(synthetic)])
		switch {
		case !whole.ok && !prefix:
			t.Fatalf("no violation, but output is not a prefix of input")
		case whole.ok && !prefix && !withSynth:
			t.Fatalf("violation %s, but output is neither a prefix nor a prefix plus synthetic", whole.reason)
		}
		for _, off := range netHTTPStarts(out) {
			if !slices.Contains(whole.starts, off) {
				t.Fatalf("net/http parsed a request at %d, guard saw requests at %v", off, whole.starts)
			}
		}
	})
}

// netHTTPStarts returns the offsets of the requests net/http's server would
// parse from b, reading each body to its end.
func netHTTPStarts(b []byte) []int64 {
	cr := &countingReader{r: bytes.NewReader(b)}
	br := bufio.NewReader(cr) // 4 KiB, as the server's
	var starts []int64
	post := false
	for {
		if post { // net/http's conn.readRequest tolerance
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
		}
		off := cr.n - int64(br.Buffered())
		req, err := http.ReadRequest(br)
		if err != nil {
			return starts
		}
		starts = append(starts, off)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return starts
		}
		post = req.Method == "POST"
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
