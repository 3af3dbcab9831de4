package framing

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// readerConn is a net.Conn reading from a bytes.Reader; only Read works.
type readerConn struct {
	net.Conn
	*bytes.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.Reader.Read(p) }

const benchReqs = 100

var benchInput = []byte(strings.Repeat("GET /api/v1/items?id=42 HTTP/1.1\r\nHost: api.example.com\r\n"+
	"User-Agent: bench/1.0\r\nAccept: application/json\r\nAuthorization: Bearer abcdefghijklmnop\r\n\r\n", benchReqs))

// BenchmarkGuard reads benchReqs pipelined small GETs: raw copies through
// the guard versus the bare reader, and net/http's own parsing with and
// without the guard underneath (the cost the server actually sees). The
// guard/bare ratio of each pair is the guard's overhead.
func BenchmarkGuard(b *testing.B) {
	src := bytes.NewReader(benchInput)
	buf := make([]byte, 4096)
	drain := func(r io.Reader) {
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}
	parse := func(r io.Reader) {
		br := bufio.NewReader(r)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
		}
	}
	for _, bc := range []struct {
		name    string
		guarded bool
		consume func(io.Reader)
	}{
		{"read/bare", false, drain},
		{"read/guard", true, drain},
		{"parse/bare", false, parse},
		{"parse/guard", true, parse},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchInput)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(benchInput)
				var r io.Reader = src
				if bc.guarded {
					r = Wrap(readerConn{Reader: src}, Limits{})
				}
				bc.consume(r)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchReqs), "ns/req")
		})
	}
}
