// Package h1server serves HTTP/1.x on connections that are already
// accepted (and, for TLS, handshaken), in the calling goroutine, with a
// smaller per-request cost than net/http's server: the request is parsed
// once (the common, strictly well-formed body-less request by a lean
// parser, everything else by http.ReadRequest), the response is written
// through one buffered writer with one flush, and the connection is
// watched for the client going away only when a request has been running
// for a while (WatchDelay), instead of by a goroutine and an extra read
// for every request.
//
// It keeps net/http's server behaviour for what Warden relies on:
// read-header, read, write and idle timeouts; the header size limit
// (431); Expect: 100-continue; HEAD; chunked request and response bodies
// and trailers; Connection: close and HTTP/1.0 keep-alive; pipelined
// requests answered in order; Content-Length computed for short bodies,
// Date and Content-Type sniffing as net/http does; the request context
// cancelled when the handler returns, the connection closes or the client
// goes away; panics recovered (http.ErrAbortHandler silently); Hijack;
// graceful shutdown finishing in-flight requests and closing idle
// connections (new ones that have sent nothing yet included). HTTP/2 is
// not its business: the gateway hands h2 connections to net/http.
//
// The requests it refuses itself, before any handler runs (unparsable,
// failing net/http's checks, an unsupported version, Expect or transfer
// coding, oversized headers), get net/http's plain-text answer, or go to
// Server.Refuse, which the gateway answers through its deny path.
package h1server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/deadline"
)

// DefaultNewConnGrace is Server.NewConnGrace's default: net/http's
// grace for a new connection at Shutdown.
const DefaultNewConnGrace = 5 * time.Second

// DefaultWatchDelay is how long a request runs before its connection is
// watched for the client going away, when Server.WatchDelay is zero.
const DefaultWatchDelay = 50 * time.Millisecond

// maxPostHandlerReadBytes is how much of an unread request body is
// discarded after the handler to keep the connection, as in net/http.
const maxPostHandlerReadBytes = 256 << 10

// Server serves HTTP/1.x connections with Handler. Set the fields before
// the first ServeConn; they must not change afterwards.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's header block, from its
	// first byte; zero means ReadTimeout.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; zero
	// means none.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request's headers
	// to the end of the response; zero means none.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection; zero means ReadTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request line plus header block (431 above);
	// zero means http.DefaultMaxHeaderBytes. As net/http, 4096 bytes of
	// slack are allowed for bufio.
	MaxHeaderBytes int
	// BaseContext is the parent of every request context; nil means
	// context.Background().
	BaseContext context.Context
	// ConnContext, if set, derives each connection's context.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ErrorHeader, if set, returns fields added to the server's own
	// plain-text error responses (to the requests it refuses itself when
	// Refuse is nil, or when Refuse panics before answering), for example
	// Strict-Transport-Security.
	ErrorHeader func() http.Header
	// Refuse, if set, answers the requests the server refuses itself,
	// before the Handler could see them, instead of net/http's plain-text
	// answer: a request line or header block http.ReadRequest refuses
	// (400), one that fails net/http's server-side checks (Host, field
	// names and values: 400), a header block over MaxHeaderBytes (431),
	// a Transfer-Encoding other than chunked (501), an Expect other than
	// 100-continue (417), a version other than HTTP/1.x (505); why says
	// which, with a stable reason code. A read error that is only the
	// client going away (EOF, reset, timeout) is not answered at all.
	//
	// r holds what is known. Always: RemoteAddr, TLS and the context (the
	// conn's, as a handler's request has it; it may hold a value, see
	// policy.AttachExchange), and Body is http.NoBody (a body is never
	// read). When the request line and header block parsed (the Host,
	// field, Expect and version cases), also Method, URL, Proto, Header,
	// Host and the rest, as a handler would see them. Otherwise Method,
	// Proto and Host are empty, URL is an empty URL (not nil), Header is
	// empty and ProtoMajor.ProtoMinor is 1.1, the version of the answer.
	//
	// Whatever Refuse writes, the connection ends after it: the answer
	// carries Connection: close (the server sets it), a write deadline of
	// 5 s bounds it, it has no body after a HEAD request's header block
	// (as Handler's answers) and Hijack is refused; if Refuse writes
	// nothing at all, the answer is why.Status without a body (a Write
	// without WriteHeader is a 200, as for any ResponseWriter). A panic
	// in Refuse is recovered and logged as a handler's; the client then
	// gets the plain-text answer if nothing was written yet (no answer at
	// all after a panic with http.ErrAbortHandler). Refuse runs on the
	// conn's goroutine.
	Refuse func(w http.ResponseWriter, r *http.Request, why Refusal)
	// WatchDelay: see DefaultWatchDelay.
	WatchDelay time.Duration
	// NewConnGrace is how long from its accept Shutdown leaves a new
	// connection to send its first request; zero means
	// DefaultNewConnGrace.
	NewConnGrace time.Duration
	// Log receives handler panics; nil means slog.Default().
	Log *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown atomic.Bool
	drained  chan struct{} // closed when the last conn ends during Shutdown
}

// ErrServerClosed is returned by ServeConn after Shutdown or Close.
var ErrServerClosed = errors.New("h1server: server closed")

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout != 0 {
		return s.ReadHeaderTimeout
	}
	return s.ReadTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout != 0 {
		return s.IdleTimeout
	}
	return s.ReadTimeout
}

func (s *Server) maxHeaderBytes() int64 {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return int64(n) + 4096
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// track registers c; false once the server is shutting down.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// Conn states, for Shutdown. A conn is new while it waits for the first
// byte of its first request, idle while it waits for the next one, active
// from that byte to the end of the response. Shutdown closes an idle
// conn at once and a new one once NewConnGrace has passed since its
// accept: its request may be on the way (with TLS 1.3 it often comes
// with the handshake's last flight), and a client does not retry a
// request that failed on a fresh connection.
const (
	stateActive int32 = iota
	stateIdle
	stateNew
	stateClosed // closed by Shutdown while idle or new
)

// setIdle marks c as waiting for a request; false if the server is
// shutting down (c must then close). Lock-free: Shutdown sets its flag
// before it looks at the states, and c sets its state before it looks at
// the flag, so one of them sees the other.
func (s *Server) setIdle(c *conn) bool {
	c.state.Store(stateIdle)
	return !s.shutdown.Load()
}

// setNew marks c, accepted at created, as waiting for its first request;
// during Shutdown it is then closed once the grace has passed.
func (s *Server) setNew(c *conn) {
	c.state.Store(stateNew)
	if s.shutdown.Load() {
		s.expireNew(c)
	}
}

// expireNew closes c when its grace ends, unless a request has started
// on it by then.
func (s *Server) expireNew(c *conn) {
	grace := s.NewConnGrace
	if grace <= 0 {
		grace = DefaultNewConnGrace
	}
	time.AfterFunc(max(time.Until(c.created.Add(grace)), 0), func() {
		if c.state.CompareAndSwap(stateNew, stateClosed) {
			c.rwc.Close()
		}
	})
}

// setActive marks c as serving a request whose first byte it has read;
// false if Shutdown closed it meanwhile.
func (s *Server) setActive(c *conn) bool {
	return c.state.CompareAndSwap(stateIdle, stateActive) || c.state.CompareAndSwap(stateNew, stateActive)
}

// Shutdown stops serving new requests: connections kept alive between
// two requests are closed at once, active ones after their response,
// which then carries Connection: close, and new ones that have not sent
// a byte once NewConnGrace has passed since their accept (as net/http's
// Shutdown treats them); a request that starts on a new connection within
// the grace is served, with Connection: close. A request whose first byte
// has arrived is served to its end (its header block within
// ReadHeaderTimeout, as always). It returns when all connections are
// closed, or ctx's error when ctx ends first (connections still open are
// then left to Close).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	var drained chan struct{}
	if len(s.conns) > 0 {
		drained = make(chan struct{})
		s.drained = drained
	}
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.rwc.Close()
		} else if c.state.Load() == stateNew {
			s.expireNew(c)
		}
	}
	s.mu.Unlock()
	if drained == nil {
		return nil
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown.Store(true)
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	return nil
}

// ServeConn serves requests on nc until it closes, a request asks to
// close it, an error or timeout ends it, a handler hijacks it or the
// server shuts down. It closes nc (unless hijacked) before returning.
func (s *Server) ServeConn(nc net.Conn) error {
	c := newConn(s, nc)
	if !s.track(c) {
		nc.Close()
		return ErrServerClosed
	}
	defer s.untrack(c)
	c.serve()
	return nil
}

// conn is one connection being served.
type conn struct {
	s      *Server
	rwc    net.Conn
	cr     connReader
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context
	remote string
	tls    *tls.ConnectionState
	hbuf   []byte // the response's header block, built at WriteHeader
	held   []byte // response body held back before the header block is written

	state    atomic.Int32 // stateActive, stateIdle, stateNew or stateClosed
	created  time.Time    // accepted (ServeConn called)
	watch    *time.Timer  // starts the client-gone watch (see connReader)
	lastPOST bool
	hijacked bool
	// skippedDeadline: readRequest did not set hdrDeadline, the read
	// deadline the request would have had (see readRequest).
	skippedDeadline bool
	hdrDeadline     time.Time
	linger          bool // unread request bytes may remain: half-close and drain before closing
	// readDL and writeDL are the deadlines last set on rwc (zero: none,
	// or not known), so that the per-request ones are moved only when
	// they must be (internal/deadline). The conn's goroutine uses them
	// outside the handler; while a handler runs, they are set under
	// cr.mu (the watch, ResponseController).
	readDL, writeDL time.Time
}

func (c *conn) setReadDeadline(t time.Time) {
	c.readDL = t
	_ = c.rwc.SetReadDeadline(t)
}

func (c *conn) setWriteDeadline(t time.Time) {
	c.writeDL = t
	_ = c.rwc.SetWriteDeadline(t)
}

// extendReadDeadline bounds the next reads by at least now+d (at most
// d/16 more), moving the deadline only if the one set is earlier.
func (c *conn) extendReadDeadline(now time.Time, d time.Duration) {
	if t, ok := deadline.Next(c.readDL, now, d); ok {
		c.setReadDeadline(t)
	}
}

// extendWriteDeadline is extendReadDeadline for writes.
func (c *conn) extendWriteDeadline(now time.Time, d time.Duration) {
	if t, ok := deadline.Next(c.writeDL, now, d); ok {
		c.setWriteDeadline(t)
	}
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, rwc: nc, remote: nc.RemoteAddr().String(), created: time.Now()}
	c.cr.c = c
	c.cr.cond.L = &c.cr.mu
	c.cr.limit = -1
	// The watch's timer exists, stopped, for the conn's whole life: arm
	// (which may run on a handler's body-reading goroutine) only resets it.
	c.watch = time.AfterFunc(time.Hour, c.cr.watchRead)
	c.watch.Stop()
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(&c.cr)
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	if cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		c.tls = &st
	}
	ctx := s.BaseContext
	if ctx == nil {
		ctx = context.Background()
	}
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, nc)
	}
	c.ctx = ctx
	return c
}

// release returns the buffers to their pools.
func (c *conn) release() {
	c.watch.Stop()
	c.br.Reset(nil)
	readers.Put(c.br)
	c.bw.Reset(nil)
	writers.Put(c.bw)
	c.br, c.bw = nil, nil
}

func (c *conn) serve() {
	defer func() {
		if c.hijacked {
			return
		}
		c.close()
		c.release()
	}()
	for first := true; ; first = false {
		var start time.Time
		if c.br.Buffered() == 0 {
			// Wait for the request's first byte: on a new conn within the
			// header timeout (which the request's header block must then
			// fit in, as with net/http), on a kept-alive one within the
			// idle timeout, as an idle conn that Shutdown closes.
			if first {
				start = time.Now()
				if d := c.s.readHeaderTimeout(); d > 0 {
					c.setReadDeadline(start.Add(d))
				} else {
					c.setReadDeadline(time.Time{})
				}
				c.s.setNew(c)
			} else if !c.s.setIdle(c) {
				return
			} else if d := c.s.idleTimeout(); d > 0 {
				c.extendReadDeadline(time.Now(), d)
			} else {
				c.setReadDeadline(time.Time{})
			}
			_, err := c.br.Peek(1)
			if !c.s.setActive(c) || err != nil {
				return
			}
		}
		if !c.serveOne(start) {
			return
		}
	}
}

// serveOne reads and answers one request; false means the conn is done.
// start, if not zero, is when the wait for the request began, and its
// read deadlines are already set from it (a new conn's first request).
func (c *conn) serveOne(start time.Time) bool {
	s := c.s
	now := time.Now()
	deadlineSet := c.lastPOST
	if start.IsZero() {
		start = now
	} else {
		deadlineSet = true
	}
	var hdrDeadline, wholeDeadline time.Time
	if d := s.readHeaderTimeout(); d > 0 {
		hdrDeadline = start.Add(d)
	}
	if d := s.ReadTimeout; d > 0 {
		wholeDeadline = start.Add(d)
	}
	if c.lastPOST {
		// RFC 7230 section 3.5 tolerance, as net/http (and the framing
		// guard, which must stay in step) apply it.
		c.setReadDeadline(hdrDeadline)
		peek, _ := c.br.Peek(4)
		_, _ = c.br.Discard(numLeadingCRorLF(peek))
	}
	// The response, which holds the request's context, is made first:
	// the lean parse builds the request with the context rather than
	// copying the request to add it.
	w := &response{c: c, header: make(http.Header), contentLength: -1}
	ctx := &w.ctx
	ctx.init(c.ctx)
	defer ctx.cancel(context.Canceled)
	if c.ctx.Done() != nil { // a cancellable conn context (not the gateway's): pass its end on
		defer context.AfterFunc(c.ctx, func() { ctx.cancel(c.ctx.Err()) })()
	}
	// The header budget counts what is buffered already (read while the
	// conn waited for the request, or with the one before): it is all
	// this request's or later ones'. At least 1: 0 means exhausted and -1
	// none (the buffer is smaller than any budget, but that is not this
	// line's to assume).
	c.cr.limit = max(s.maxHeaderBytes()-int64(c.br.Buffered()), 1)
	req, parsed, err := c.readRequest(ctx, hdrDeadline, deadlineSet)
	tooLarge := c.cr.limit == 0
	c.cr.limit = -1
	if err != nil {
		switch {
		case tooLarge:
			c.linger = true
			c.refuse(w, nil, Refusal{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: ReasonHeadersTooLarge,
				Detail: "the request headers exceed the limit"}, "")
		case isCommonNetReadError(err):
		case isUnsupportedTE(err):
			c.refuse(w, nil, Refusal{Status: http.StatusNotImplemented, Reason: ReasonUnsupportedTransferEncoding,
				Detail: "unsupported transfer encoding"}, "Unsupported transfer encoding")
		default:
			c.refuse(w, nil, Refusal{Status: http.StatusBadRequest, Reason: ReasonMalformedRequest,
				Detail: readErrorDetail(err)}, "")
		}
		return false
	}
	c.lastPOST = req.Method == http.MethodPost
	if msg := checkRequest(req, parsed); msg != "" {
		c.refuse(w, req, Refusal{Status: http.StatusBadRequest, Reason: ReasonMalformedRequest, Detail: msg}, msg)
		return false
	}
	if req.ProtoMajor != 1 {
		c.refuse(w, req, Refusal{Status: http.StatusHTTPVersionNotSupported, Reason: ReasonHTTPVersionNotSupported,
			Detail: "unsupported protocol version"}, "unsupported protocol version")
		return false
	}
	req.RemoteAddr = c.remote
	req.TLS = c.tls

	w.req, w.isHEAD = req, req.Method == http.MethodHead
	w.wants10KeepAlive = req.ProtoMajor == 1 && req.ProtoMinor == 0 && hasToken(req.Header["Connection"], "keep-alive")
	hasBody := req.Body != nil && req.Body != http.NoBody
	expect := first(req.Header["Expect"])
	wantsContinue := hasToken([]string{expect}, "100-continue")
	continueAsked := wantsContinue && req.ProtoAtLeast(1, 1) && req.ContentLength != 0
	if expect != "" && !wantsContinue {
		c.refuse(w, req, Refusal{Status: http.StatusExpectationFailed, Reason: ReasonExpectationFailed,
			Detail: "the only expectation supported is 100-continue"}, "")
		return false
	}
	if hasBody {
		// The Expect field stays, as with net/http: the proxy then passes
		// 100-continue on end to end.
		b := &reqBody{rc: req.Body, c: c, w: w, remaining: req.ContentLength, expect: continueAsked, expectAsked: continueAsked}
		req.Body = b
		w.body = b
		if !wholeDeadline.Equal(hdrDeadline) {
			c.setReadDeadline(wholeDeadline)
		}
	}
	if d := s.WriteTimeout; d > 0 {
		// From the end of the request's headers: a lean-parsed request
		// was whole in the buffer at now; any other may have been read
		// since.
		end := now
		if !parsed {
			end = time.Now()
		}
		c.extendWriteDeadline(end, d)
	}
	c.cr.wholeDeadline = wholeDeadline
	c.cr.begin(ctx, !hasBody)

	ok := c.runHandler(w)
	c.cr.end()
	ctx.cancel(context.Canceled)
	if !ok || c.hijacked {
		return false
	}
	w.finish()
	if err := c.bw.Flush(); err != nil {
		return false
	}
	if w.contentLength != -1 && w.written != w.contentLength && !w.isHEAD && bodyAllowedForStatus(w.status) {
		// The handler wrote less than it declared: the client still
		// waits for the rest, so the conn cannot carry another response.
		return false
	}
	if c.cr.err != nil { // the client went away while the handler ran
		return false
	}
	return !w.closeAfter
}

// runHandler calls the handler; false if it panicked (the conn is then
// closed without finishing the response, so the client sees it cut).
func (c *conn) runHandler(w *response) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.logPanic(v)
			ok = false
		}
	}()
	c.s.Handler.ServeHTTP(w, w.req)
	return true
}

// close ends the connection: flushes what is buffered and, when unread
// request bytes may remain, half-closes and drains briefly first, so the
// client reads the response instead of a reset.
func (c *conn) close() {
	_ = c.bw.Flush()
	if c.linger {
		if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.CopyN(io.Discard, c.rwc, 4<<20)
	}
	c.rwc.Close()
}

// writeError answers a request the server refuses itself, as net/http
// does, plus ErrorHeader's fields, and ends the conn: the answer when
// Refuse is nil (see refuse).
func (c *conn) writeError(code int, detail string) {
	text := strconv.Itoa(code) + " " + http.StatusText(code)
	if detail != "" {
		text += ": " + detail
	}
	bw := c.bw
	c.setWriteDeadline(time.Now().Add(refusalWriteTimeout))
	bw.WriteString("HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")
	if c.s.ErrorHeader != nil {
		writeFields(bw, c.s.ErrorHeader(), nil)
	}
	bw.WriteString("\r\n" + text)
	_ = bw.Flush()
}

// readRequest reads the next request, with context ctx: parseRequest's lean parse of what
// is buffered when it accepts it (fieldsValid: it has checked the
// fields), else http.ReadRequest, with the read deadline at hdrDeadline
// (unless deadlineSet). A request parseRequest accepts has no body and
// is read from the buffer: nothing is read from the conn, so its header
// deadline need not be set (every later read sets its own: the next
// request's idle wait or header read, the client-gone watch, close's
// drain; Hijack sets it for the hijacker).
func (c *conn) readRequest(ctx context.Context, hdrDeadline time.Time, deadlineSet bool) (req *http.Request, fieldsValid bool, err error) {
	if buf, err := c.br.Peek(c.br.Buffered()); err == nil {
		if req, n, ok := parseRequest(ctx, buf, c.s.maxHeaderBytes()); ok {
			_, _ = c.br.Discard(n) // buffered: cannot fail
			c.skippedDeadline, c.hdrDeadline = !deadlineSet, hdrDeadline
			return req, true, nil
		}
	}
	if !deadlineSet {
		c.setReadDeadline(hdrDeadline)
	}
	c.skippedDeadline = false
	req, err = http.ReadRequest(c.br)
	if err != nil {
		return nil, false, err
	}
	return req.WithContext(ctx), false, nil
}

// checkRequest applies net/http's server-side request checks to what
// http.ReadRequest returns (it has copied the Host field to req.Host and
// refused a repeated one); fieldsValid skips the field checks
// parseRequest has made. Two differences from net/http, both stricter or
// left to the framing guard: an HTTP/1.1 request with an empty Host
// value is refused (net/http accepts it), and one in absolute form without
// a Host field takes its host from the URL here; the gateway's framing
// guard refuses the latter before it gets here.
func checkRequest(req *http.Request, fieldsValid bool) string {
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return "missing required Host header"
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return "malformed Host header"
	}
	if fieldsValid {
		return ""
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return "invalid header value"
			}
		}
	}
	return ""
}

func isCommonNetReadError(err error) bool {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return true
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return true
	}
	if oe, ok := err.(*net.OpError); ok && oe.Op == "read" {
		return true
	}
	return false
}

func numLeadingCRorLF(v []byte) (n int) {
	for _, b := range v {
		if b == '\r' || b == '\n' {
			n++
			continue
		}
		break
	}
	return
}

// hasToken reports whether a comma-separated list in vv holds token,
// ignoring ASCII case.
func hasToken(vv []string, token string) bool {
	return httpguts.HeaderValuesContainsToken(vv, token)
}
