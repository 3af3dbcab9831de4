package h1server

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardengw/warden/internal/httpsyntax"
)

// parseRequest reads the common request without textproto's copies and
// per-line allocations: an HTTP/1.1 request whose whole header section
// is already buffered and within limit bytes, strictly well-formed
// (request line "token SP origin-form SP HTTP/1.1", every line ending in
// CRLF, no obsolete line folding, field names tokens, no control bytes
// but HT, no DEL), with exactly one Host field, no body (no
// Content-Length but 0, no Transfer-Encoding) and no Trailer or Pragma
// field. Anything else it declines, consuming nothing, and
// http.ReadRequest reads the request, with its checks and its errors.
// FuzzParseRequest holds the two to the same result wherever parseRequest
// accepts; the framing guard has checked the same bytes before.
//
// The request has context ctx. On success n is the length of the request line and header section;
// the fields are valid (names tokens, values without control bytes).
func parseRequest(ctx context.Context, buf []byte, limit int64) (req *http.Request, n int, ok bool) {
	end, lines, ok := httpsyntax.HeaderSection(buf)
	if !ok || int64(end+2) > limit {
		return nil, 0, false
	}
	s := string(buf[:end]) // the strings below share this copy
	i := strings.IndexByte(s, '\r')
	method, rest, _ := strings.Cut(s[:i], " ")
	target, proto, _ := strings.Cut(rest, " ")
	if proto != "HTTP/1.1" || !httpsyntax.IsToken(method) || method == http.MethodConnect ||
		!strings.HasPrefix(target, "/") {
		return nil, 0, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, 0, false
	}
	h := make(http.Header, lines-1)
	host, hosts, lengths := "", 0, 0
	ok = httpsyntax.Fields(s[i+2:], h, lines-1, func(key, v string) bool {
		switch key {
		case "Host":
			host, hosts = v, hosts+1
		case "Content-Length": // one, zero: no body
			lengths++
			return lengths == 1 && v != "" && strings.TrimLeft(v, "0") == ""
		case "Transfer-Encoding", "Trailer", "Pragma":
			return false
		}
		return true
	})
	if !ok || hosts != 1 {
		return nil, 0, false
	}
	delete(h, "Host") // as ReadRequest: the field is req.Host
	// WithContext copies the literal, which stays on the stack: one
	// allocation for the request, with its context.
	lit := http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Host: host, RequestURI: target,
		Close: hasToken(h["Connection"], "close"),
	}
	return lit.WithContext(ctx), end + 2, true
}
