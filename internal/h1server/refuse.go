package h1server

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// Reason codes of the requests the server refuses itself (Refusal.Reason):
// stable snake_case codes, for audit events and metrics.
const (
	// ReasonMalformedRequest (400): the request line or header block is
	// malformed (http.ReadRequest refuses it), or the request fails
	// net/http's server-side checks (a missing or malformed Host, an
	// invalid field name or value).
	ReasonMalformedRequest = "malformed_request"
	// ReasonHeadersTooLarge (431): the request line and header block
	// outgrow MaxHeaderBytes.
	ReasonHeadersTooLarge = "headers_too_large"
	// ReasonUnsupportedTransferEncoding (501): a Transfer-Encoding other
	// than chunked.
	ReasonUnsupportedTransferEncoding = "unsupported_transfer_encoding"
	// ReasonExpectationFailed (417): an Expect field other than
	// 100-continue.
	ReasonExpectationFailed = "expectation_failed"
	// ReasonHTTPVersionNotSupported (505): a request version other than
	// HTTP/1.x.
	ReasonHTTPVersionNotSupported = "http_version_not_supported"
)

// Refusal says why the server refuses a request itself, before any
// handler runs. See Server.Refuse.
type Refusal struct {
	// Status is the status to answer with: 400, 417, 431, 501 or 505.
	Status int
	// Reason is one of the Reason constants.
	Reason string
	// Detail says what is wrong in fixed words, never with the client's
	// bytes (which may hold credentials): it may be sent to the client
	// and logged as it is.
	Detail string
}

// refusalWriteTimeout bounds writing a refusal, whatever WriteTimeout is,
// as writeError's answer is bounded (a variable for tests).
var refusalWriteTimeout = 5 * time.Second

// refuse answers a request the server refuses itself, and the conn then
// ends: through Server.Refuse when set (with req, the request as far as
// it parsed, or nil when it did not), else as net/http does, with
// fallback as the plain-text detail.
func (c *conn) refuse(w *response, req *http.Request, why Refusal, fallback string) {
	if req != nil && req.Body != nil && req.Body != http.NoBody {
		// The body is not read: the conn ends after the answer, which the
		// client must get rather than a reset for the unread bytes.
		c.linger = true
	}
	c.setWriteDeadline(time.Now().Add(refusalWriteTimeout))
	if c.s.Refuse == nil {
		c.writeError(why.Status, fallback)
		return
	}
	if req == nil {
		// What is known without a parsed request: the conn's facts. The
		// URL is empty, not nil, for code that reads r.URL.Path; the
		// answer is HTTP/1.1, as net/http's are.
		lit := http.Request{URL: &url.URL{}, ProtoMajor: 1, ProtoMinor: 1, Header: make(http.Header), Body: http.NoBody}
		req = lit.WithContext(&w.ctx)
	} else {
		req.Body = http.NoBody
		// Answered as what the client sent: no body after a HEAD's
		// header block, which is what the client reads.
		w.isHEAD = req.Method == http.MethodHead
	}
	req.RemoteAddr, req.TLS = c.remote, c.tls
	w.req = req
	w.refusal, w.closeAfter, w.wants10KeepAlive = true, true, false
	if ok, abort := c.runRefuse(w, req, why); !ok {
		if !abort && !w.committed {
			// Refuse panicked before its answer started: the client
			// still gets one.
			c.held = c.held[:0]
			c.writeError(why.Status, fallback)
		}
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(why.Status)
	}
	w.finish()
	_ = c.bw.Flush()
}

// runRefuse calls Server.Refuse; ok is false if it panicked (recovered
// and logged as a handler's panic is), abort if with
// http.ErrAbortHandler, which asks, as from a handler, for the conn to be
// cut without an answer.
func (c *conn) runRefuse(w *response, req *http.Request, why Refusal) (ok, abort bool) {
	defer func() {
		if v := recover(); v != nil {
			c.logPanic(v)
			ok, abort = false, v == http.ErrAbortHandler
		}
	}()
	c.s.Refuse(w, req, why)
	return true, false
}

// logPanic logs a recovered panic, but http.ErrAbortHandler's.
func (c *conn) logPanic(v any) {
	if v == http.ErrAbortHandler {
		return
	}
	buf := make([]byte, 16<<10)
	buf = buf[:runtime.Stack(buf, false)]
	c.s.log().Error("http: panic serving", "remote", c.remote, "panic", fmt.Sprint(v), "stack", string(buf))
}

// readErrorDetail names, in fixed words, what http.ReadRequest's error
// says is malformed; its message may quote the client's bytes, which are
// never passed on.
func readErrorDetail(err error) string {
	var ue *url.Error
	var pe textproto.ProtocolError
	msg := err.Error()
	switch {
	case errors.As(err, &ue):
		return "invalid request target"
	case strings.HasPrefix(msg, "malformed HTTP request"):
		return "malformed request line"
	case strings.HasPrefix(msg, "malformed HTTP version"):
		return "malformed HTTP version"
	case strings.HasPrefix(msg, "invalid method"):
		return "invalid method"
	case errors.As(err, &pe), strings.HasPrefix(msg, "malformed MIME header"):
		return "malformed header field"
	case strings.HasPrefix(msg, "too many Host headers"):
		return "repeated Host header"
	case strings.HasPrefix(msg, "bad Content-Length"), strings.HasPrefix(msg, "invalid empty Content-Length"),
		strings.HasPrefix(msg, "http: message cannot contain multiple Content-Length"):
		return "invalid Content-Length"
	}
	return "malformed request"
}

// isUnsupportedTE reports http.ReadRequest's refusal of a transfer coding
// (net/http's unexported unsupportedTEError, which its server answers
// with 501). Only the start of the message is matched: the rest quotes
// the client's field, which must not choose the answer.
func isUnsupportedTE(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unsupported transfer encoding:") || strings.HasPrefix(msg, "too many transfer encodings:")
}
