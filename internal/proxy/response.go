package proxy

import (
	"net/http"
	"strings"

	"github.com/wardengw/warden/internal/httpsyntax"
)

// The upstream's response is untrusted input. parseResponse reads the
// common case without textproto's copies and per-line allocations: an
// HTTP/1.1 response whose whole header section is already buffered,
// strictly well-formed (every line ends in CRLF, no obsolete line folding,
// field names are tokens, no control bytes but HT, no DEL), with a final
// status other than 204 and 304, framed by exactly one Content-Length of
// plain digits, without Transfer-Encoding, Connection, Trailer or Pragma
// fields, and not answering a HEAD request. Anything else, and anything
// it is not sure of, it declines (consuming nothing) and http.ReadResponse
// reads the response, with its checks and its errors. FuzzParseResponse
// holds the two to the same result wherever parseResponse accepts.

// maxLeanFields bounds the fields of a response parseResponse accepts.
const maxLeanFields = 100

// responseSink receives the fields of a response parseResponse accepts
// straight into the client's header map h, instead of a header map of the
// response's own that the lean forward path would then copy from: less
// the fields the gateway drops (dropResponseField), appended to those h
// has. contentType is the upstream's first Content-Type, if any.
type responseSink struct {
	h           http.Header
	contentType string
	hasType     bool
}

// parseResponse parses the response at the start of buf, which holds the
// bytes buffered so far. ok false declines the response. On success n is
// the length of the status line and header section, and the body (of
// res.ContentLength bytes) follows them; res.Body is left nil for the
// caller. A usual response costs the copy of its header section, its
// header map and one leanResponse.
//
// With a sink, the fields go to sink.h and res.Header is nil; nothing is
// added to sink.h unless the response is accepted (the fields are checked
// in a first pass, stored in a second).
func parseResponse(buf []byte, req *http.Request, sink *responseSink) (res *http.Response, n int, ok bool) {
	if req != nil && req.Method == http.MethodHead {
		return nil, 0, false // no body despite the Content-Length
	}
	end, lines, ok := httpsyntax.HeaderSection(buf)
	if !ok || lines-1 > maxLeanFields {
		return nil, 0, false
	}
	s := string(buf[:end]) // the strings below share this copy
	i := strings.IndexByte(s, '\r')
	status, isV11 := strings.CutPrefix(s[:i], "HTTP/1.1 ")
	if !isV11 || len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return nil, 0, false
	}
	code := 0
	for _, c := range []byte(status[:3]) {
		if c < '0' || c > '9' {
			return nil, 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, 0, false
	}
	l := new(leanResponse)
	vals := l.vals[:]
	if lines-1 > len(vals) {
		vals = make([]string, lines-1)
	}
	length := int64(-1)
	check := func(key, v string) bool {
		switch key {
		case "Content-Length":
			if length >= 0 {
				return false
			}
			n, ok := httpsyntax.ParseLength(v)
			length = n
			return ok
		case "Transfer-Encoding", "Connection", "Trailer", "Pragma":
			return false
		}
		return true
	}
	var h http.Header
	if sink == nil {
		h = make(http.Header, lines-1)
		ok = httpsyntax.Fields(s[i+2:], h, vals, check)
	} else {
		ok = httpsyntax.EachField(s[i+2:], check)
	}
	if !ok || length < 0 {
		return nil, 0, false // no length: delimited by the close, ReadResponse's case
	}
	if sink != nil {
		// The second pass sees the lines the first accepted: it cannot fail.
		httpsyntax.EachField(s[i+2:], func(key, v string) bool {
			if key == "Content-Type" && !sink.hasType {
				sink.contentType, sink.hasType = v, true
			}
			if !dropResponseField(key) {
				vals = httpsyntax.Add(sink.h, key, v, vals)
			}
			return true
		})
	}
	l.res = http.Response{
		Status: status, StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Request: req,
	}
	return &l.res, end + 2, true
}

// leanVals is the number of header fields whose values fit in a
// leanResponse; a response with more has its own values array. 9: as
// many as the leanResponse's heap size class (288 bytes with Go 1.26)
// holds.
const leanVals = 9

// leanResponse holds a response parseResponse returns together with the
// backing array of its header values: one allocation instead of two.
type leanResponse struct {
	res  http.Response
	vals [leanVals]string
}

// sinkOf returns the lean forward path's response sink, or nil for the
// transport's other callers, whose responses keep a header map.
func sinkOf(out outbound) *responseSink {
	if lr, ok := out.(*leanRequest); ok && lr.sink.h != nil {
		return &lr.sink
	}
	return nil
}
