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
// the fields are valid (names tokens, values without control bytes). A
// usual request costs the copy of its header section, its header map and
// one leanRequest.
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
	l := new(leanRequest)
	u := &l.url
	if !plainTarget(target, u) {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, 0, false
		}
	}
	vals := l.vals[:]
	if lines-1 > len(vals) {
		vals = make([]string, lines-1)
	}
	h := make(http.Header, lines-1)
	host, hosts, lengths := "", 0, 0
	ok = httpsyntax.Fields(s[i+2:], h, vals, func(key, v string) bool {
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
	lit := http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Host: host, RequestURI: target,
		Close: hasToken(h["Connection"], "close"),
	}
	// WithContext is the only way to set the context; its copy does not
	// escape (it is copied again into l), so it stays on the stack.
	l.req = *lit.WithContext(ctx)
	return &l.req, end + 2, true
}

// leanVals is the number of header lines (Host included) whose values
// fit in a leanRequest; a request with more has its own values array.
// 11: as many as the leanRequest's heap size class (640 bytes with Go
// 1.26's malloc header) holds.
const leanVals = 11

// leanRequest holds a request parseRequest returns together with its URL
// and the backing array of its header values: one allocation instead of
// three. The request points to the other two (or to its own when they do
// not fit), which keeps the whole alive as long as any part is.
type leanRequest struct {
	req  http.Request
	url  url.URL
	vals [leanVals]string
}

// plainTarget reports whether target, which begins with '/', is plain,
// and if so sets *u to what url.ParseRequestURI returns for it, without
// that function's allocation. Plain: a path of pathByte bytes only, which
// the parse keeps as they are (no escape to decode, nothing that makes it
// set RawPath), optionally followed by '?' and a query of visible ASCII
// bytes but '#' (the parse keeps the query raw). Other targets are left
// to url.ParseRequestURI. TestPlainTarget and FuzzParseRequest hold the
// two to the same URL.
func plainTarget(target string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !pathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	// ParseRequestURI sets ForceQuery when the only '?' is the last byte.
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// pathByte: the bytes a path may hold for url.ParseRequestURI to keep it
// as it is with no RawPath: those its path escaping leaves alone (RFC 3986
// unreserved and "$&+,/:;=@"), but '%', which starts an escape. Not
// "!'()*": url escapes them, so a path with them gets a RawPath.
var pathByte = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~$&+,/:;=@") {
		t[c] = true
	}
	return t
}()
