package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
)

// stdTransport is net/http's transport (HTTP/2, streaming bodies,
// upgrades, 100-continue) with its failures typed as the lean transport
// types its own (pconn.failure), so that both paths classify alike.
// net/http does not tell the phases of a failure apart: the upstream
// dropping the connection is io.EOF or a reset whether it happened in the
// TLS handshake or after the request was sent, and a response it could
// not parse is a plain or unexported error (wrapped in "net/http: HTTP/1.x
// transport connection broken: %w"). A client trace tells the phases
// apart: after GotConn the connection was established, so a failure is the
// upstream's on it; after GotFirstResponseByte, one that is not the
// connection's own (isIOError) is the parser's verdict on the response.
type stdTransport struct{ t *http.Transport }

// stdExchange is the phase one request reached on net/http's transport.
type stdExchange struct {
	connected, responding atomic.Bool // set by the trace, possibly on the transport's goroutines
	too1xx                atomic.Bool // more than max1xxResponses interim responses came
	n1xx                  atomic.Int32
	body                  *trackedBody
	trace                 httptrace.ClientTrace // one allocation with the exchange
}

// RoundTrip implements http.RoundTripper.
func (s stdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	x := new(stdExchange)
	x.bound1xx(req.Context()) // before the trace below copies the hook
	x.trace.GotConn = func(httptrace.GotConnInfo) { x.connected.Store(true) }
	x.trace.GotFirstResponseByte = func() { x.responding.Store(true) }
	ctx := httptrace.WithClientTrace(req.Context(), &x.trace)
	out := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		x.body = &trackedBody{ReadCloser: req.Body}
		out.Body = x.body
	}
	res, err := s.t.RoundTrip(out)
	if err != nil {
		if x.too1xx.Load() {
			return nil, &ProtocolError{Err: errTooMany1xx}
		}
		if ctx.Err() != nil || isTimeout(err) {
			return nil, err // the client went away, or a timeout: classify's
		}
		return nil, x.failure(err)
	}
	return res, nil
}

// bound1xx makes the exchange fail after max1xxResponses interim (1xx)
// responses, as the lean transport does, where net/http's transport
// counts none once a Got1xxResponse hook is set: ReverseProxy sets one,
// which passes each on to the client. It wraps ReverseProxy's hook in the
// trace in ctx, in place and before RoundTrip adds its own trace: a hook
// added on top would have its error discarded (httptrace calls the newer
// hook, then returns the older one's result), and adding ours copies
// ReverseProxy's hook into it. The count spans net/http's own retries of
// the request, which only makes it stricter.
func (x *stdExchange) bound1xx(ctx context.Context) {
	rp := httptrace.ContextClientTrace(ctx)
	if rp == nil || rp.Got1xxResponse == nil {
		return
	}
	forward := rp.Got1xxResponse
	rp.Got1xxResponse = func(code int, h textproto.MIMEHeader) error {
		if x.n1xx.Add(1) > max1xxResponses { // atomic: httptrace hooks may be called concurrently
			x.too1xx.Store(true)
			return errTooMany1xx
		}
		return forward(code, h)
	}
}

// failure types err, net/http's transport's failure of the exchange.
func (x *stdExchange) failure(err error) error {
	if oe, ok := errors.AsType[*net.OpError](err); !x.connected.Load() || (ok && oe.Op == "dial") || x.body.failed(err) {
		// No connection (dial, handshake: classify tells them apart; a
		// dial may also fail for a retry after GotConn), or the client's
		// body failed: not the upstream's doing.
		return err
	}
	if x.responding.Load() || isH2StreamError(err) {
		return stdBodyFailure(err)
	}
	// Connected, and no response came: the upstream closed or reset the
	// connection (or sent a TLS record that failed its check: readFailure).
	// A pooled connection it closed while idle, net/http resends on a new
	// one only for a request that is safe to replay; for another, it
	// reports errServerClosedIdle, whose text is all there is to match
	// (transport.go: "http: server closed idle connection").
	_, badRecord := errors.AsType[tls.RecordHeaderError](err)
	if isIOError(err) || badRecord || err.Error() == "http: server closed idle connection" {
		return readFailure(err, true)
	}
	return err
}

// isIOError reports whether err, from net/http's transport, is the
// connection's failure rather than a parser's: net/http returns the
// errors of the conn as they are (in a *net.OpError), or io.EOF and
// io.ErrUnexpectedEOF for a close, and its parse errors are plain errors
// of other types. (The lean transport knows which error its conn
// returned and does not need this: pconn.failure.)
func isIOError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	_, ok := errors.AsType[*net.OpError](err)
	return ok
}

// stdBodyFailure types err, a failure of net/http's transport once the
// upstream had begun to respond, or of a response body it returned.
func stdBodyFailure(err error) error {
	if se, ok := errors.AsType[h2StreamError](err); ok {
		return se.failure(err)
	}
	if strings.HasPrefix(err.Error(), "http2: server sent GOAWAY and closed the connection") {
		// net/http's unexported http2GoAwayError, whose text is all there
		// is to match: the upstream went away, it sent nothing invalid.
		return closedError{err}
	}
	return readFailure(err, isIOError(err))
}

func isH2StreamError(err error) bool {
	_, ok := errors.AsType[h2StreamError](err)
	return ok
}

// h2StreamError has the fields of the HTTP/2 StreamError of net/http's
// bundled HTTP/2 client: its As method fills any struct of this shape
// (net/http/h2_error.go, meant for golang.org/x/net/http2.StreamError),
// which errors.As then matches without a dependency on x/net/http2.
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string { return "http2 stream error" }

// failure types err, which holds e: a stream the upstream reset (the
// cause is then net/http's unexported errFromPeer, whose text is all
// there is to match) ended the exchange as a close would; any other is
// net/http's HTTP/2 client's verdict on what the upstream sent (a
// malformed :status, an invalid header field, a HEADERS frame after
// END_STREAM).
func (e h2StreamError) failure(err error) error {
	if e.Cause != nil && e.Cause.Error() == "received from peer" {
		return closedError{err}
	}
	return &ProtocolError{Err: err}
}

// trackedBody is a request body that keeps its read error, which
// net/http's transport returns as it is: a failure of the client's body is
// not the upstream's.
type trackedBody struct {
	io.ReadCloser
	err atomic.Pointer[error] // the transport may still be reading when RoundTrip returns
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err.Store(&err)
	}
	return n, err
}

// failed reports whether err is b's read error; false for a nil b.
func (b *trackedBody) failed(err error) bool {
	if b == nil {
		return false
	}
	p := b.err.Load()
	return p != nil && *p == err
}
