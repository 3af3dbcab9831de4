package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/deadline"
)

// h1Transport is the hop's HTTP/1.1 round tripper for the common exchange:
// no request body or a small one of known length, no upgrade, no
// 100-continue. It runs the whole exchange in the calling goroutine on a
// pooled connection: take an idle conn (or dial and verify a new one, with
// the same tls.Config and pin check as the standard transport), write the
// request with one flush, read the response, and hand the conn back when
// the body has been read to its end. Everything else goes to fallback, the
// standard transport, which net/http's goroutine-per-connection design
// handles correctly for streaming bodies.
//
// The standard transport spends two goroutine hand-offs per request (its
// writeLoop and readLoop); on a gateway pinned to one core those switches,
// their channels and stack growth cost more than the proxy's own work.
type h1Transport struct {
	scheme, host                                 string      // the requests this transport serves: the upstream URL's
	addr                                         string      // host:port dialed
	tlsConfig                                    *tls.Config // nil for a plaintext upstream
	dialer                                       net.Dialer
	handshakeTimeout, headerTimeout, idleTimeout time.Duration
	maxIdle                                      int
	fallback                                     http.RoundTripper

	mu   sync.Mutex
	idle []*pconn // most recently used last
	gen  uint64   // bumped by closeIdle: conns of an older generation are not pooled again

	dials   atomic.Int64 // connections dialed, for tests
	onEvict func()       // for tests: called after the idle timer closed a pooled conn; set before use
}

// Limits of the lean path.
const (
	// maxBufferedBody is the largest request body the lean path buffers
	// and sends itself; larger or unknown-length bodies stream through the
	// standard transport.
	maxBufferedBody = 32 << 10
	// maxResponseHeaderBytes bounds a response's header section, 1xx
	// responses included: net/http's default MaxResponseHeaderBytes.
	maxResponseHeaderBytes = 10 << 20
	// max1xxResponses is how many informational responses precede the
	// final one before the exchange fails, as in net/http.
	max1xxResponses = 5
)

// Errors of the lean transport: what it finds wrong with a response
// (returned in a *ProtocolError), a read on a closed body, and the
// requests its writers refuse.
var (
	errUnexpectedSwitch = errors.New("upstream switched protocols without an upgrade request")
	errTooMany1xx       = errors.New("upstream sent too many 1xx responses")
	errBadStatus        = errors.New("upstream sent a status code outside 100-599")
	errHeaderTooLarge   = fmt.Errorf("upstream response headers exceed %d bytes", maxResponseHeaderBytes)
	errBodyClosed       = errors.New("http: read on closed response body")
	// The writers refuse these requests before anything reaches the
	// upstream: the request's fault, not a failing connection.
	errURIControl    = errors.New("net/http: can't write control character in Request.URL")
	errBadForwarding = errors.New("proxy: invalid forwarding header value")
)

// probeConn is the TCP conn under a pooled conn's *tls.Conn. While
// probing, its reads fail at once with errProbe: pconn.usable then learns
// whether crypto/tls holds records it has read ahead without a deadline
// update or an error allocation per request.
type probeConn struct {
	net.Conn
	probing bool // set and read only by the goroutine using the pconn
}

// Read implements net.Conn.
func (c *probeConn) Read(p []byte) (int, error) {
	if c.probing {
		return 0, errProbe
	}
	return c.Conn.Read(p)
}

// errProbe is probeConn's refusal. It is a temporary net.Error, so
// crypto/tls does not keep it as the conn's permanent error.
var errProbe error = probeError{}

type probeError struct{}

func (probeError) Error() string   { return "proxy: read-ahead probe" }
func (probeError) Timeout() bool   { return true }
func (probeError) Temporary() bool { return true }

// eligible reports whether the lean path serves req.
func (t *h1Transport) eligible(req *http.Request) bool {
	if req.URL == nil || req.Header == nil || req.URL.Scheme != t.scheme || req.URL.Host != t.host {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > maxBufferedBody) {
		return false
	}
	// Hosts Request.Write would rewrite (IDNA, IPv6 zones) or refuse.
	if h := requestHost(req); !isASCII(h) || strings.IndexByte(h, '%') >= 0 || !httpguts.ValidHostHeader(h) {
		return false
	}
	return plainRequest(req)
}

// plainRequest reports whether the lean paths may write req themselves:
// a method token other than CONNECT, no Transfer-Encoding or trailers, no
// Upgrade or Expect field (protocol switches and 100-continue need the
// concurrent standard transport), and only fields that may be written as
// they are (validField: invalid ones are refused by the standard paths,
// with their errors).
func plainRequest(req *http.Request) bool {
	if req.Method == http.MethodConnect || !httpguts.ValidHeaderFieldName(req.Method) ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 {
		return false
	}
	for k, vv := range req.Header {
		if k == "Upgrade" || k == "Expect" || !validField(k, vv) {
			return false
		}
	}
	return true
}

// validField reports whether a header field may be written as it is: a
// token name and values without CR, LF or other control bytes. The lean
// paths leave anything else to the standard ones, which refuse it.
func validField(k string, vv []string) bool {
	if !httpguts.ValidHeaderFieldName(k) {
		return false
	}
	for _, v := range vv {
		if !httpguts.ValidHeaderFieldValue(v) {
			return false
		}
	}
	return true
}

// RoundTrip implements http.RoundTripper.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.eligible(req) {
		return t.fallback.RoundTrip(req)
	}
	var body *[]byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := readBody(req.Body, req.ContentLength)
		if err != nil {
			return nil, err
		}
		defer buffers.Put(b)
		body = b
	}
	return t.exchange(req, stdRequest{req, body}, req.Close)
}

// outbound writes one request in HTTP/1.1 wire form and flushes it.
type outbound interface {
	writeTo(bw *bufio.Writer) error
}

// stdRequest is an http.Request written as Request.Write would.
type stdRequest struct {
	req  *http.Request
	body *[]byte
}

func (s stdRequest) writeTo(bw *bufio.Writer) error { return writeRequest(bw, s.req, s.body) }

// informer is an outbound that takes the informational (1xx) responses
// itself; for other requests the context's httptrace.ClientTrace does.
type informer interface {
	got1xx(code int, h http.Header) error
}

// exchange sends out on a pooled (or new) conn and reads the response
// headers; req gives the context, the method (for the response's framing)
// and the replay rule. close asks the upstream to close the conn after
// the response.
func (t *h1Transport) exchange(req *http.Request, out outbound, close bool) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		pc, err := t.getConn(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		res, err := pc.roundTrip(req, out, close)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var nr noResponseError
		if attempt == 0 && pc.reused && errors.As(err, &nr) && !isTimeout(err) && !upstreamSent(err) && replayable(req) {
			// The upstream closed a pooled connection before answering:
			// retry once on a new connection, as net/http does, and only
			// when resending cannot repeat a side effect.
			continue
		}
		return nil, err
	}
}

// readBody reads exactly n request body bytes (n <= maxBufferedBody) into
// a pooled buffer and closes body: the request is then replayable and a
// slow client does not hold an upstream connection.
func readBody(body io.ReadCloser, n int64) (*[]byte, error) {
	defer body.Close()
	b := buffers.Get().(*[]byte)
	if _, err := io.ReadFull(body, (*b)[:n]); err != nil {
		buffers.Put(b)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// replayable reports whether a request may be sent twice: net/http's rule
// (Request.isReplayable) for a request whose body is buffered.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, xok := req.Header["X-Idempotency-Key"]
	return ok || xok
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// noResponseError is a failure of an established connection before the
// upstream sent a response byte: writing the request, or waiting for the
// answer. Its error is the connection's (the upstream closed or reset
// it, or a timeout), or a *ProtocolError for bytes the TLS layer refused.
type noResponseError struct{ err error }

func (e noResponseError) Error() string { return e.err.Error() }
func (e noResponseError) Unwrap() error { return e.err }

// upstreamSent reports whether the upstream sent something, if only a
// record the TLS layer refused: an exchange that failed so is not
// resent.
func upstreamSent(err error) bool {
	_, ok := errors.AsType[*ProtocolError](err)
	return ok
}

// getConn returns a usable idle conn, or a new one when there is none or
// fresh is set.
func (t *h1Transport) getConn(ctx context.Context, fresh bool) (*pconn, error) {
	if !fresh {
		t.mu.Lock()
		for n := len(t.idle); n > 0; n = len(t.idle) {
			pc := t.idle[n-1]
			t.idle[n-1] = nil
			t.idle = t.idle[:n-1]
			pc.idleTimer.Stop()
			t.mu.Unlock()
			if pc.usable() {
				pc.reused = true
				return pc, nil
			}
			pc.close()
			t.mu.Lock()
		}
		t.mu.Unlock()
	}
	return t.dial(ctx)
}

// dial connects and, for https, completes a verified handshake with the
// upstream's tls.Config (chain, hostname and pins) within the handshake
// timeout.
func (t *h1Transport) dial(ctx context.Context) (*pconn, error) {
	t.dials.Add(1)
	t.mu.Lock()
	gen := t.gen
	t.mu.Unlock()
	raw, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	pc := &pconn{t: t, raw: raw, conn: raw, gen: gen}
	if t.tlsConfig != nil {
		pc.probe.Conn = raw
		tc := tls.Client(&pc.probe, t.tlsConfig)
		hctx, cancel := context.WithTimeout(ctx, t.handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				err = handshakeTimeoutError{}
			}
			return nil, err
		}
		pc.conn = tc
	}
	pc.init()
	return pc, nil
}

// init readies pc, whose raw and conn are set, for exchanges.
func (pc *pconn) init() {
	if sc, ok := pc.raw.(syscall.Conn); ok {
		pc.rc, _ = sc.SyscallConn()
	}
	pc.br = bufio.NewReaderSize(pc, 4<<10)
	pc.bw = bufio.NewWriterSize(pc.conn, 4<<10)
	pc.readLimit = math.MaxInt64
	pc.abortFn = pc.abort
	pc.peekFn = pc.peek
}

// handshakeTimeoutError is the TLS handshake timing out: a timeout, so a
// 504, as net/http's.
type handshakeTimeoutError struct{}

func (handshakeTimeoutError) Error() string   { return "upstream TLS handshake timeout" }
func (handshakeTimeoutError) Timeout() bool   { return true }
func (handshakeTimeoutError) Temporary() bool { return true }

// putIdle pools pc, or closes it when the pool is full or was emptied by
// closeIdle after pc was dialed.
func (t *h1Transport) putIdle(pc *pconn) {
	t.mu.Lock()
	if pc.gen != t.gen || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		pc.close()
		return
	}
	t.idle = append(t.idle, pc)
	if pc.idleTimer == nil {
		pc.idleTimer = time.AfterFunc(t.idleTimeout, pc.idleExpired)
	} else {
		pc.idleTimer.Reset(t.idleTimeout)
	}
	t.mu.Unlock()
}

// remove takes pc out of the idle pool; false if it was not there.
func (t *h1Transport) remove(pc *pconn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range t.idle {
		if c == pc {
			copy(t.idle[i:], t.idle[i+1:])
			t.idle[len(t.idle)-1] = nil
			t.idle = t.idle[:len(t.idle)-1]
			return true
		}
	}
	return false
}

// closeIdle closes the idle conns; conns in use are closed when released.
func (t *h1Transport) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.gen++
	t.mu.Unlock()
	for _, pc := range idle {
		pc.idleTimer.Stop()
		pc.close()
	}
}

// pconn is one pooled upstream connection. It is used by one exchange at
// a time; only abort and close may run concurrently with it.
type pconn struct {
	t         *h1Transport
	raw       net.Conn // TCP
	conn      net.Conn // raw or the *tls.Conn over it (reading through probe)
	probe     probeConn
	rc        syscall.RawConn
	br        *bufio.Reader // reads through pconn.Read
	bw        *bufio.Writer
	readLimit int64
	// readErr is the last error reading the conn returned, since the
	// exchange started: the parsers' errors that are this one are the
	// connection's failure, not theirs (failure).
	readErr error
	// clearRead: the header timeout's read deadline is still set and
	// must be cleared before the next read from the conn (the body's).
	clearRead bool
	// readDL and writeDL are the deadlines last set on conn (zero: none),
	// so that the header timeout's are moved only when they must be
	// (internal/deadline).
	readDL, writeDL time.Time
	gen             uint64
	reused          bool
	idleTimer       *time.Timer

	abortFn  func()
	peekFn   func(fd uintptr) bool
	peekBuf  [1]byte
	peekN    int
	peekErr  error
	closeOne sync.Once
}

// Read implements io.Reader for br, enforcing the header size limit.
func (pc *pconn) Read(p []byte) (int, error) {
	if pc.readLimit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > pc.readLimit {
		p = p[:pc.readLimit]
	}
	if pc.clearRead && !pc.probe.probing {
		// (usable's probe never reaches the socket: it may leave it.)
		pc.clearRead = false
		pc.readDL = time.Time{}
		_ = pc.conn.SetReadDeadline(time.Time{})
	}
	n, err := pc.conn.Read(p)
	pc.readLimit -= int64(n)
	if err != nil && !pc.probe.probing {
		pc.readErr = err
	}
	return n, err
}

// failure types err, from reading a response on pc (through br, the
// parsers or the body readers), as the upstream's: the connection's own
// failure when it is the error reading the conn returned (or the
// io.ErrUnexpectedEOF a parser makes of its io.EOF), else a parser's
// verdict on what the upstream sent (readFailure). net/http's parsers pass
// the reader's errors on as they are.
func (pc *pconn) failure(err error) error {
	ioErr := err == pc.readErr || err == io.ErrUnexpectedEOF && pc.readErr == io.EOF
	return readFailure(err, ioErr)
}

// boundExchange bounds the conn's reads and writes by now+d (at most
// d/16 more), moving each deadline only if it must.
func (pc *pconn) boundExchange(now time.Time, d time.Duration) {
	rt, setR := deadline.Next(pc.readDL, now, d)
	wt, setW := deadline.Next(pc.writeDL, now, d)
	switch {
	case setR && setW:
		_ = pc.conn.SetDeadline(rt) // rt == wt: one call
		pc.readDL, pc.writeDL = rt, rt
	case setR:
		_ = pc.conn.SetReadDeadline(rt)
		pc.readDL = rt
	case setW:
		_ = pc.conn.SetWriteDeadline(wt)
		pc.writeDL = wt
	}
}

func (pc *pconn) close() { pc.closeOne.Do(func() { pc.conn.Close() }) }

// abort breaks off the exchange when the request's context ends: the
// client went away or its deadline passed. Closing the socket unblocks any
// read or write in progress; the conn is never pooled again.
func (pc *pconn) abort() { pc.raw.Close() }

func (pc *pconn) idleExpired() {
	if pc.t.remove(pc) {
		pc.close()
		if f := pc.t.onEvict; f != nil {
			f()
		}
	}
}

// usable reports whether an idle conn can carry a request: the upstream
// has not closed it and has sent nothing since the last response. Bytes
// on an idle conn are a desynchronised or malicious upstream: read as the
// next response they would answer another client's request. net/http's
// read loop and nginx's idle-conn handler both close such a conn.
func (pc *pconn) usable() bool {
	if pc.br.Buffered() > 0 || !pc.socketQuiet() {
		return false
	}
	if pc.conn != pc.raw {
		// Records crypto/tls has read ahead: a read returns them, or
		// finds it needs more bytes, which probe refuses at once without
		// a syscall (the socket was checked first) or a deadline.
		pc.probe.probing = true
		_, err := pc.br.Peek(1)
		pc.probe.probing = false
		if err != errProbe {
			return false
		}
	}
	return true
}

// roundTrip sends req (with body, buffered, if any) and reads the
// response headers. The conn is pooled again or closed when the body has
// been read to its end or closed.
func (pc *pconn) roundTrip(req *http.Request, out outbound, close bool) (*http.Response, error) {
	ctx := req.Context()
	stop := afterFunc(ctx, pc.abortFn)
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.close()
		return nil, err
	}
	if d := pc.t.headerTimeout; d > 0 {
		// Writing the request and reading the response headers are
		// bounded together: the standard transport bounds only the
		// second, and a stalled upstream could block the first forever.
		pc.boundExchange(time.Now(), d)
		pc.clearRead = false
	}
	if err := out.writeTo(pc.bw); err != nil {
		if err == errURIControl || err == errBadForwarding {
			return fail(err)
		}
		return fail(noResponseError{err})
	}
	pc.readLimit = maxResponseHeaderBytes
	pc.readErr = nil
	if _, err := pc.br.Peek(1); err != nil {
		return fail(noResponseError{pc.failure(err)})
	}
	var trace *httptrace.ClientTrace
	var res *http.Response
	lean := false
	for n := 0; ; n++ {
		var err error
		res, lean, err = pc.readResponse(req, sinkOf(out))
		if err != nil {
			return fail(err)
		}
		if res.StatusCode < 100 || res.StatusCode > 599 {
			return fail(&ProtocolError{Err: errBadStatus}) // no client could be given it (net/http would panic writing it)
		}
		if res.StatusCode >= 200 {
			break
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return fail(&ProtocolError{Err: errUnexpectedSwitch})
		}
		if n == max1xxResponses {
			return fail(&ProtocolError{Err: errTooMany1xx})
		}
		if inf, ok := out.(informer); ok {
			if err := inf.got1xx(res.StatusCode, res.Header); err != nil {
				return fail(err)
			}
			pc.readLimit = maxResponseHeaderBytes
			continue
		}
		if trace == nil {
			trace = httptrace.ContextClientTrace(ctx)
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return fail(err)
			}
			pc.readLimit = maxResponseHeaderBytes
		}
	}
	pc.readLimit = math.MaxInt64
	if pc.t.headerTimeout > 0 {
		// The body has no deadline, as with the standard transport: Read
		// clears it before the body's first read from the conn, so a
		// body already buffered with the header costs no update. The
		// write deadline may stay: the next exchange sets both first.
		pc.clearRead = true
	}
	keep := !res.Close && !close
	if lean && res.ContentLength == 0 {
		res.Body = http.NoBody
	}
	if res.Body == http.NoBody {
		pc.release(stop, keep)
		return res, nil
	}
	b := &responseBody{rc: res.Body, pc: pc, ctx: ctx, stop: stop, keep: keep}
	if lean {
		b.left = res.ContentLength
	}
	res.Body = b
	return res, nil
}

// readResponse reads a response's status line and header section:
// parseResponse's lean parse of what is buffered when it accepts it
// (lean: the body, of res.ContentLength bytes, follows in br), else
// http.ReadResponse. Its errors are typed: the connection closing
// before the header section's end, or a *ProtocolError for a response
// http.ReadResponse refuses (parseResponse only declines: what it does
// not accept, ReadResponse reads or refuses).
func (pc *pconn) readResponse(req *http.Request, sink *responseSink) (res *http.Response, lean bool, err error) {
	if buf, err := pc.br.Peek(pc.br.Buffered()); err == nil {
		if res, n, ok := parseResponse(buf, req, sink); ok {
			_, _ = pc.br.Discard(n) // buffered: cannot fail
			return res, true, nil
		}
	}
	res, err = http.ReadResponse(pc.br, req)
	if err != nil {
		return nil, false, pc.failure(err)
	}
	return res, false, nil
}

// release ends an exchange: the conn goes back to the pool if the
// response allowed it, nothing is left unread and the context's abort did
// not run; otherwise it is closed.
func (pc *pconn) release(stop func() bool, keep bool) {
	if stop() && keep && pc.br.Buffered() == 0 {
		pc.t.putIdle(pc)
		return
	}
	pc.close()
}

// writeRequestHead writes the request line and the Host field, refusing
// control bytes in the URI as Request.Write does.
func writeRequestHead(bw *bufio.Writer, method, uri, host string) error {
	if ctlByte(uri) {
		return errURIControl
	}
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	return nil
}

// writeRequest writes req in HTTP/1.1 wire form, as Request.Write would
// for this subset (eligible: header fields valid, no chunked body, no
// trailers), and flushes once. Field values are trimmed as Request.Write
// trims them; they hold no CR or LF (eligible).
func writeRequest(bw *bufio.Writer, req *http.Request, body *[]byte) error {
	if err := writeRequestHead(bw, req.Method, req.URL.RequestURI(), requestHost(req)); err != nil {
		return err
	}
	if ua, ok := req.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	} else if len(ua) > 0 && textproto.TrimString(ua[0]) != "" {
		writeField(bw, "User-Agent", ua[0])
	}
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	if n := req.ContentLength; n >= 0 {
		writeContentLength(bw, req.Method, n)
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	bw.WriteString("\r\n")
	if body != nil {
		bw.Write((*body)[:req.ContentLength])
	}
	return bw.Flush()
}

// writeContentLength writes the Content-Length field of a body of n
// bytes, as Request.Write does: when there is a body, or for the methods
// that carry one even when it is empty.
func writeContentLength(bw *bufio.Writer, method string, n int64) {
	if n > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], n, 10))
		bw.WriteString("\r\n")
	}
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(textproto.TrimString(v))
	bw.WriteString("\r\n")
}

// requestHost is the Host field of req, as Request.Write chooses it.
func requestHost(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

func ctlByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// responseBody returns the conn to the pool at EOF, and closes it if the
// body is closed before its end: draining an unbounded body to save a
// connection would let the upstream hold the gateway.
type responseBody struct {
	rc   io.ReadCloser // nil for a lean response: left bytes from pc.br
	left int64
	pc   *pconn
	ctx  context.Context
	stop func() bool
	keep bool

	mu   sync.Mutex
	done bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done {
		return 0, errBodyClosed
	}
	var n int
	var err error
	if b.rc != nil {
		n, err = b.rc.Read(p)
	} else {
		n, err = b.readLean(p)
	}
	if err != nil {
		eof := err == io.EOF
		if !eof {
			err = b.pc.failure(err)
		}
		b.finish(eof)
		if !eof && b.ctx.Err() != nil {
			err = b.ctx.Err()
		}
	}
	return n, err
}

// readLean reads a lean response's Content-Length body from the conn's
// reader, as net/http's body does: io.EOF with the last bytes, and
// io.ErrUnexpectedEOF when the upstream closes before the end.
func (b *responseBody) readLean(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.pc.br.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *responseBody) Close() error {
	b.finish(false)
	return nil
}

func (b *responseBody) finish(eof bool) {
	b.mu.Lock()
	done := b.done
	b.done = true
	b.mu.Unlock()
	if done {
		return
	}
	if !eof {
		b.pc.abort() // unblocks a Read in progress
	}
	b.pc.release(b.stop, b.keep && eof)
}

// newH1Transport returns the lean path for cfg's upstream at target, with
// fallback for what it does not serve. It shares fallback's tls.Config:
// one verification policy for both.
func newH1Transport(cfg *UpstreamConfig, target *url.URL, fallback *http.Transport) *h1Transport {
	port := target.Port()
	if port == "" {
		port = "443"
		if target.Scheme == "http" {
			port = "80"
		}
	}
	return &h1Transport{
		scheme: target.Scheme, host: target.Host,
		addr:             net.JoinHostPort(target.Hostname(), port),
		tlsConfig:        fallback.TLSClientConfig,
		dialer:           net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		handshakeTimeout: cfg.TLSHandshakeTimeout,
		headerTimeout:    cfg.ResponseHeaderTimeout,
		idleTimeout:      cfg.IdleConnTimeout,
		maxIdle:          cfg.MaxIdleConnsPerHost,
		fallback:         stdTransport{fallback},
	}
}

// afterFunc is context.AfterFunc(ctx, f), through ctx's own AfterFunc
// when it has one (internal/h1server's request context): the same
// contract, without context.AfterFunc's allocations on every exchange.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}
