package h1server

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/httpsyntax"
)

// bufferBeforeChunking is how much body a handler may write before the
// header block must be sent: a response that ends within it gets a
// Content-Length, a longer one of unknown length is chunked (net/http's
// bufferBeforeChunkingSize).
const bufferBeforeChunking = 2048

// response is the http.ResponseWriter of one request. The header block is
// rendered from the handler's fields at WriteHeader (later changes to the
// map count only as trailers, as in net/http) and written, with the
// framing fields, when the first body bytes must go out or the handler
// returns; everything goes through the conn's one bufio.Writer, flushed
// once at the end of the response.
type response struct {
	c      *conn
	ctx    requestContext // req's context
	req    *http.Request
	header http.Header
	body   *reqBody // nil without a request body

	status        int
	wroteHeader   bool  // WriteHeader was called with a final status
	committed     bool  // the header block is in the conn's writer
	handlerDone   bool  // the handler returned
	contentLength int64 // declared by the handler; -1 if not
	written       int64
	chunking      bool
	closeAfter    bool
	isHEAD        bool
	fullDuplex    bool
	refusal       bool // the answer of Server.Refuse: always Connection: close

	wants10KeepAlive bool
	// What WriteHeader saw of the fields decided when the block is sent.
	haveType, hasCE, haveDate, haveCL, trailers, haveConnection bool
	te, connection                                              string
	declared                                                    []string // trailer names from the Trailer field

	cmu        sync.Mutex // orders 100 Continue and 1xx writes with the commit
	noContinue bool
}

var _ interface {
	http.ResponseWriter
	http.Flusher
	http.Hijacker
} = (*response)(nil)

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := first(w.header["Content-Length"]); cl != "" {
		// Plain digits only (strconv would take "+5", which would then go
		// out as it is and frame the response differently for some
		// clients and caches).
		if v, ok := httpsyntax.ParseLength(cl); ok {
			w.contentLength = v
		} else {
			delete(w.header, "Content-Length")
		}
	}
	w.render()
}

// writeInformational sends a 1xx response at once, with the handler's
// fields but no framing fields.
func (w *response) writeInformational(code int) {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	if code == http.StatusContinue {
		if w.noContinue || w.body == nil || !w.body.expectAsked {
			return
		}
		w.noContinue = true
	}
	bw := w.c.bw
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code)
	writeFields(bw, w.header, noBodyExcluded)
	bw.WriteString("\r\n")
	_ = bw.Flush()
}

// sendContinue writes 100 Continue unless the response has started.
func (w *response) sendContinue() {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	if w.noContinue {
		return
	}
	w.noContinue = true
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	_ = w.c.bw.Flush()
}

var (
	noBodyExcluded = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}
)

// render writes the status line and the handler's fields, less those
// decided at commit, into the conn's header buffer, and notes what commit
// needs of the handler's fields (in one pass: no lookups by name).
func (w *response) render() {
	b := appendStatusLine(w.c.hbuf[:0], w.req.ProtoAtLeast(1, 1), w.status)
	suppressCT := w.status == http.StatusNotModified
	for k, vv := range w.header {
		switch k {
		case "Content-Length":
			w.haveCL = true
			continue
		case "Transfer-Encoding":
			w.te = first(vv)
			continue
		case "Connection":
			w.connection, w.haveConnection = first(vv), true
			continue
		case "Date":
			w.haveDate = true
			continue
		case "Content-Type":
			w.haveType = true
			if suppressCT {
				continue
			}
		case "Content-Encoding":
			w.hasCE = first(vv) != ""
		case "Trailer":
			w.declareTrailers(vv)
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = true
			continue
		}
		b = appendField(b, k, vv)
	}
	w.c.hbuf = b
}

// declareTrailers notes the names a Trailer field announces.
func (w *response) declareTrailers(vv []string) {
	for _, v := range vv {
		w.trailers = true
		for f := range strings.SplitSeq(v, ",") {
			if f = http.CanonicalHeaderKey(textproto.TrimString(f)); f != "" {
				switch f {
				case "Transfer-Encoding", "Trailer", "Content-Length":
				default:
					w.declared = append(w.declared, f)
				}
			}
		}
	}
}

// first is a field's first value, as Header.Get returns it.
func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		// Hold the body back while the framing depends on whether the
		// handler ends within the buffer (or the type must be sniffed).
		if w.mayHold() && len(w.c.held)+len(p) <= bufferBeforeChunking {
			w.c.held = append(w.c.held, p...)
			return len(p), nil
		}
		w.commit()
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// mayHold reports whether the header block can wait for more body.
func (w *response) mayHold() bool {
	return w.contentLength == -1 || (!w.haveType && !w.hasCE && w.te == "")
}

// writeBody writes body bytes after the header block; the error is the
// conn's (a write timeout, a client gone).
func (w *response) writeBody(p []byte) error {
	if w.isHEAD || len(p) == 0 {
		return nil
	}
	bw := w.c.bw
	if w.chunking {
		var num [16]byte
		bw.Write(strconv.AppendInt(num[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

// commit writes the header block: net/http's chunkWriter.writeHeader
// decisions on the length, chunking, keep-alive, Date and Content-Type,
// for the body held so far.
func (w *response) commit() {
	if w.committed {
		return
	}
	w.committed = true
	if w.body != nil && w.body.expectAsked {
		w.cmu.Lock()
		w.noContinue = true
		w.cmu.Unlock()
	}
	c, req := w.c, w.req
	p := c.held
	keepAlives := !c.s.shutdown.Load()
	var setCL []byte
	var setConnection, setTE, setCT string
	dropCL, dropTE, dropConnection := false, false, false

	if w.handlerDone && !w.trailers && w.te == "" && bodyAllowedForStatus(w.status) && !w.haveCL && (!w.isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		var num [20]byte
		setCL = strconv.AppendInt(num[:0], int64(len(p)), 10)
	}
	if w.wants10KeepAlive && keepAlives {
		if w.haveCL && w.connection == "keep-alive" {
			w.closeAfter = false
		}
	}
	hasCL := w.contentLength != -1
	if w.wants10KeepAlive && (w.isHEAD || hasCL || !bodyAllowedForStatus(w.status)) {
		if !w.haveConnection {
			setConnection = "keep-alive"
		}
	} else if !req.ProtoAtLeast(1, 1) || req.Close {
		w.closeAfter = true
	}
	if w.connection == "close" || hasToken([]string{w.connection}, "close") || !keepAlives {
		w.closeAfter = true
	}
	if req.ContentLength != 0 && !w.closeAfter && !w.fullDuplex && w.body != nil {
		ok, tooBig := w.body.reusable()
		if !ok {
			w.closeAfter = true
			c.linger = true
		}
		if tooBig {
			dropConnection = true
			setConnection = "close"
		}
	}
	if bodyAllowedForStatus(w.status) {
		if !w.hasCE && !w.haveType && w.te == "" && len(p) > 0 {
			setCT = http.DetectContentType(p)
		}
	} else {
		dropCL, dropTE = true, true
	}
	if hasCL && w.te != "" && w.te != "identity" {
		dropCL, hasCL = true, false
	}
	switch {
	case w.isHEAD || !bodyAllowedForStatus(w.status) || w.status == http.StatusNoContent:
		dropTE = true
	case hasCL:
		dropTE = true
	case req.ProtoAtLeast(1, 1):
		if w.te == "identity" {
			w.chunking, w.closeAfter, dropTE = false, true, true
		} else {
			w.chunking, setTE, dropTE = true, "chunked", true
		}
	default:
		w.closeAfter, dropTE = true, true
	}
	if w.chunking {
		dropCL = true
	}
	if w.refusal || w.closeAfter && (!keepAlives || !hasToken([]string{w.connection}, "close")) && !isProtocolSwitch(w.status, w.header) {
		dropConnection = true
		if req.ProtoAtLeast(1, 1) || w.refusal {
			setConnection = "close"
		}
	}

	bw := c.bw
	bw.Write(c.hbuf)
	h := w.header
	if w.haveCL && !dropCL {
		writeValues(bw, "Content-Length", h["Content-Length"])
	} else if setCL != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(setCL)
		bw.WriteString("\r\n")
	}
	if !dropTE {
		writeValues(bw, "Transfer-Encoding", h["Transfer-Encoding"])
	}
	if setTE != "" {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !dropConnection {
		writeValues(bw, "Connection", h["Connection"])
	}
	if setConnection != "" {
		bw.WriteString("Connection: " + setConnection + "\r\n")
	}
	if w.haveDate {
		writeValues(bw, "Date", h["Date"])
	} else {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	if setCT != "" {
		bw.WriteString("Content-Type: " + setCT + "\r\n")
	}
	bw.WriteString("\r\n")
	c.held = c.held[:0]
	_ = w.writeBody(p) // a failed write shows in the conn's writer
}

// finish ends the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.handlerDone = true
	w.commit()
	if w.chunking {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if w.body != nil {
		_ = w.body.Close()
		if w.closeAfter && !w.body.eof() {
			// The client may still be sending the body: closing with
			// unread bytes would reset the conn under the response.
			w.c.linger = true
		}
	}
}

// writeTrailers writes the declared trailers and the TrailerPrefix ones,
// from the handler's fields as they are now.
func (w *response) writeTrailers() {
	bw := w.c.bw
	for k, vv := range w.header {
		if kk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeValues(bw, kk, vv)
		}
	}
	for _, k := range w.declared {
		writeValues(bw, k, w.header[k])
	}
}

// Flush implements http.Flusher.
func (w *response) Flush() {
	_ = w.FlushError()
}

// FlushError is Flush reporting the write error (http.ResponseController).
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.commit()
	return w.c.bw.Flush()
}

// Hijack implements http.Hijacker: the conn is the handler's, with what
// was read ahead in the returned reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.refusal {
		return nil, nil, errors.New("h1server: Hijack of a refused request")
	}
	if w.committed {
		return nil, nil, errors.New("h1server: Hijack after the response started")
	}
	c.cr.end()
	if c.skippedDeadline { // the hijacker gets the read deadline the request had
		c.setReadDeadline(c.hdrDeadline)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.hijacked = true
	c.s.untrack(c) // no longer the server's to wait for or close
	rw := bufio.NewReadWriter(c.br, bufio.NewWriter(c.rwc))
	return c.rwc, rw, nil
}

// errAfterHandler refuses a deadline change once the handler has
// returned (or hijacked the conn): the conn is the next request's, or not
// the server's any more.
var errAfterHandler = errors.New("h1server: deadline change after the handler returned")

// SetReadDeadline lets handlers change the read deadline
// (http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.cr.mu.Lock() // the watch may set it too
	defer w.c.cr.mu.Unlock()
	if !w.c.cr.running {
		return errAfterHandler
	}
	w.c.readDL = t
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline lets handlers change the write deadline
// (http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.cr.mu.Lock()
	defer w.c.cr.mu.Unlock()
	if !w.c.cr.running {
		return errAfterHandler
	}
	w.c.writeDL = t
	return w.c.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler read the request body after writing
// the response starts (http.ResponseController).
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func isProtocolSwitch(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && hasToken(h["Connection"], "upgrade")
}

func writeStatusLine(bw *bufio.Writer, is11 bool, code int) {
	bw.Write(appendStatusLine(nil, is11, code))
}

func appendStatusLine(b []byte, is11 bool, code int) []byte {
	if is11 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendField appends k's values as field lines, as Header.Write does:
// invalid names are dropped, CR and LF in values become spaces, and
// values are trimmed.
func appendField(b []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		if hasNewline(v) {
			v = newlineToSpace.Replace(v)
		}
		b = append(b, textproto.TrimString(v)...)
		b = append(b, "\r\n"...)
	}
	return b
}

// writeValues writes k's values as appendField renders them.
func writeValues(bw *bufio.Writer, k string, vv []string) {
	if len(vv) == 0 {
		return
	}
	_, _ = bw.Write(appendField(bw.AvailableBuffer(), k, vv))
}

// writeFields writes h's fields less those in exclude.
func writeFields(bw *bufio.Writer, h http.Header, exclude map[string]bool) {
	for k, vv := range h {
		if !exclude[k] {
			writeValues(bw, k, vv)
		}
	}
}

func hasNewline(v string) bool {
	return strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0
}

var newlineToSpace = strings.NewReplacer("\r", " ", "\n", " ")

// The Date field, formatted once per second.
var (
	dateMu   sync.Mutex
	dateSec  int64
	dateText []byte
)

func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	dateMu.Lock()
	defer dateMu.Unlock()
	if sec != dateSec || dateText == nil {
		dateSec = sec
		dateText = now.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)
	}
	return dateText
}
