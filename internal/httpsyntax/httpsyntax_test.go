package httpsyntax

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

func TestCanonicalKey(t *testing.T) {
	for _, name := range []string{"Content-Type", "content-type", "CONTENT-TYPE", "X-Request-Id", "x-forwarded-for",
		"A", "a", "-a", "a-", "a--b", "Www-Authenticate", "X_Under_Score", "X!#$%&'*+.^_`|~1",
		// CanonicalKey's list of usual names
		"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie",
		"Connection", "Content-Type", "Content-Length", "Date", "Server", "Cache-Control", "Vary",
		"Etag", "Last-Modified", "Set-Cookie", "X-Request-Id", "X-Forwarded-For"} {
		got, ok := CanonicalKey(name)
		if want := http.CanonicalHeaderKey(name); !ok || got != want {
			t.Errorf("CanonicalKey(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "a b", "a:b", "a\tb", "caf\xc3\xa9", "a/b", "(a)", "a\x00"} {
		if _, ok := CanonicalKey(name); ok {
			t.Errorf("CanonicalKey(%q) accepted a non-token", name)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = CanonicalKey("Content-Type") }); n != 0 {
		t.Errorf("CanonicalKey of a canonical name allocates %v times", n)
	}
}

func TestHeaderSection(t *testing.T) {
	for _, tt := range []struct {
		in       string
		n, lines int
		ok       bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 25, 2, true},
		{"HTTP/1.1 200 OK\r\n\r\n", 17, 1, true},
		{"GET / HTTP/1.1\r\nHost: a\t\xff\r\n\r\n", 27, 2, true},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, 0, false},
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", 0, 0, false},
		{"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 0, 0, false},
		{"GET / HTTP/1.1\r\nHost: \x01\r\n\r\n", 0, 0, false},
		{"GET / HTTP/1.1\r\nHost: \x7f\r\n\r\n", 0, 0, false},
	} {
		n, lines, ok := HeaderSection([]byte(tt.in))
		if n != tt.n || lines != tt.lines || ok != tt.ok {
			t.Errorf("HeaderSection(%q) = %d, %d, %v; want %d, %d, %v", tt.in, n, lines, ok, tt.n, tt.lines, tt.ok)
		}
	}
}

func TestTrimSPHT(t *testing.T) {
	for in, want := range map[string]string{"": "", " \t ": "", " a b\t": "a b", "a": "a", "\ta\t\t": "a"} {
		if got := TrimSPHT(in); got != want {
			t.Errorf("TrimSPHT(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFields: the values land in the caller's array, each key's slice
// capped so that an append does not overwrite the next value; visit can
// refuse a field, and a line without a colon is refused.
func TestFields(t *testing.T) {
	vals := make([]string, 4)
	h := http.Header{}
	if !Fields("a: 1\r\nB:\t2 \r\nA: 3\r\nc-d: 4\r\n", h, vals, func(string, string) bool { return true }) {
		t.Fatal("Fields refused a valid section")
	}
	want := http.Header{"A": {"1", "3"}, "B": {"2"}, "C-D": {"4"}}
	if !reflect.DeepEqual(h, want) || vals[0] != "1" || vals[1] != "2" || vals[2] != "4" {
		t.Fatalf("Fields: %q, vals %q; want %q", h, vals, want)
	}
	h["B"] = append(h["B"], "x")
	if vals[2] != "4" || !reflect.DeepEqual(h["C-D"], []string{"4"}) {
		t.Fatalf("an append overwrote the next value: vals %q", vals)
	}
	if Fields("A: 1\r\nB: 2\r\n", http.Header{}, vals, func(k, _ string) bool { return k != "B" }) {
		t.Error("Fields ignored visit's false")
	}
	if Fields("A: 1\r\nB\r\n", http.Header{}, vals, func(string, string) bool { return true }) {
		t.Error("Fields accepted a line without a colon")
	}
}

// headerSectionRef is HeaderSection written plainly, byte by byte.
func headerSectionRef(buf []byte) (n, lines int, ok bool) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 || bytes.HasPrefix(buf, []byte("\r\n")) { // no section, or an empty start line
		return 0, 0, false
	}
	for i := 0; i < end+2; i++ {
		switch c := buf[i]; {
		case c == '\r':
			if buf[i+1] != '\n' {
				return 0, 0, false
			}
			lines++
			i++
		case c == '\t', c >= ' ' && c != 0x7f:
		default:
			return 0, 0, false
		}
	}
	return end + 2, lines, true
}

// FuzzHeaderSection holds the word-at-a-time scan to the plain one.
func FuzzHeaderSection(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nX-Long-Field-Name: a long value\x7f\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, lines, ok := HeaderSection(in)
		rn, rlines, rok := headerSectionRef(in)
		if n != rn || lines != rlines || ok != rok {
			t.Fatalf("HeaderSection(%q) = %d, %d, %v; want %d, %d, %v", in, n, lines, ok, rn, rlines, rok)
		}
	})
}

// TestParseLength: 1 to 18 digits and nothing else, for strings and bytes
// alike (the framing guard and the upstream response parser share it).
func TestParseLength(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int64
		good bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"999999999999999999", 999999999999999999, true},
		{"", 0, false}, {"1000000000000000000", 0, false}, {"-1", 0, false}, {"+1", 0, false},
		{" 1", 0, false}, {"1 ", 0, false}, {"4, 4", 0, false}, {"0x10", 0, false}, {"١", 0, false},
	} {
		n, ok := ParseLength(tt.in)
		nb, okb := ParseLength([]byte(tt.in))
		if ok != tt.good || ok && n != tt.n || n != nb || ok != okb {
			t.Errorf("ParseLength(%q) = %d %v (bytes %d %v), want %d %v", tt.in, n, ok, nb, okb, tt.n, tt.good)
		}
	}
}
