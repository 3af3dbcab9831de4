package framing

import (
	"bytes"
	"github.com/wardengw/warden/internal/httpsyntax"
	"io"
	"net"
	"sync/atomic"
)

// Reason codes of violations, stable for audit events and metrics.
const (
	ReasonTEAndCL        = "te_and_cl"                // both Transfer-Encoding and Content-Length
	ReasonDuplicateCL    = "duplicate_content_length" // more than one Content-Length, even identical or comma-joined
	ReasonBadTE          = "bad_transfer_encoding"    // anything but one "chunked" on an HTTP/1.1 request
	ReasonBadCL          = "bad_content_length"       // empty, not digits, or longer than 18 digits
	ReasonInvalidHeader  = "invalid_header"           // forbidden bytes or syntax in the request line or a field line
	ReasonHeaderTooLarge = "header_too_large"         // header block or trailer section over Limits.MaxHeaderBytes
	ReasonBadChunk       = "bad_chunk"                // chunk-size line or chunk terminator net/http must not see
	ReasonBadHost        = "bad_host"                 // an HTTP/1.1 request without a Host field, or with more than one
)

// ViolationPath is the target of the request that stands in for a
// violating header block.
const ViolationPath = "/.warden/framing-violation"

var synthetic = []byte("GET " + ViolationPath + " HTTP/1.1\r\nHost: invalid\r\nConnection: close\r\n\r\n")

// DefaultMaxHeaderBytes is the header block cap when Limits leaves it zero.
const DefaultMaxHeaderBytes = 64 << 10

// maxChunkLine is net/http's cap on a chunk-size line, CRLF included
// (net/http/internal/chunked.go reads it with ReadSlice on a 4 KiB bufio).
const maxChunkLine = 4096

// Limits bound what the guard holds in memory for one connection.
type Limits struct {
	// MaxHeaderBytes caps one request's request line plus header fields,
	// and one chunked body's trailer section. Zero or less means
	// DefaultMaxHeaderBytes. Keep http.Server.MaxHeaderBytes at least this
	// large, so the guard, not net/http, rejects oversized blocks.
	MaxHeaderBytes int
}

func (l Limits) maxHeaderBytes() int {
	if l.MaxHeaderBytes <= 0 {
		return DefaultMaxHeaderBytes
	}
	return l.MaxHeaderBytes
}

type state uint8

const (
	stStart     state = iota // before a request line; may skip CR/LF after a POST
	stReqLine                // request line
	stHeaders                // field lines up to the empty line
	stBody                   // Content-Length body, n bytes left
	stChunkLine              // chunk-size line
	stChunkData              // chunk data, n bytes left
	stChunkCR                // CRLF after chunk data
	stChunkLF                //
	stTrailer                // trailer field lines up to the empty line
	stDone                   // violation found; nothing more is read
)

type violation struct {
	reason string
	req    int
}

// Conn guards the inbound byte stream of a server-side HTTP/1.x conn. It
// implements net.Conn: every method but Read is the wrapped conn's.
// Read, like any net.Conn read, must not be called concurrently.
type Conn struct {
	net.Conn
	max int

	// buf[head:rel] is released and not yet returned by Read,
	// buf[rel:pos] is scanned and held back (a header block, chunk line or
	// trailer section in progress), buf[pos:tail] is not scanned yet.
	buf                        []byte
	head, rel, pos, tail, line int // line: start of the current line

	st    state
	n     uint64 // bytes left in the body or chunk
	skip  int    // CR/LF bytes net/http skips before the next request line
	req   int    // index of the current request, -1 before the first
	off   int64  // bytes returned by Read so far
	synth []byte // unread rest of the synthetic request
	err   error  // read error held back while data was returned

	is11, post, sawCL, sawTE bool
	hosts                    int // Host fields of the current request

	viol     atomic.Pointer[violation]
	detached atomic.Bool

	trace func(off int64) // tests: output offset of each request
}

var _ net.Conn = (*Conn)(nil)

// Wrap guards c. To keep r.TLS and HTTP/2 working, use Guard or
// GuardListener rather than wrapping a *tls.Conn by hand.
func Wrap(c net.Conn, lim Limits) *Conn {
	return &Conn{Conn: c, max: lim.maxHeaderBytes(), req: -1}
}

// NetConn returns the wrapped conn.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Violation reports the first violation found on the conn: its reason code
// and the 0-based index of the request it was found in.
func (c *Conn) Violation() (reason string, requestIndex int, ok bool) {
	v := c.viol.Load()
	if v == nil {
		return "", 0, false
	}
	return v.reason, v.req, true
}

// Detach stops guarding, for a conn hijacked to speak another protocol.
// Bytes read but not yet returned are returned as they are. It does not
// undo a violation.
func (c *Conn) Detach() { c.detached.Store(true) }

// CloseWrite half-closes the wrapped conn if it supports that; net/http
// uses it to let the client read a final error response.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Read returns the guarded stream: the wrapped conn's bytes, up to and
// excluding the first violation.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.head < c.rel {
			n := copy(p, c.buf[c.head:c.rel])
			c.head += n
			c.off += int64(n)
			return n, nil
		}
		if c.st == stDone {
			if len(c.synth) == 0 {
				return 0, io.EOF
			}
			n := copy(p, c.synth)
			c.synth = c.synth[n:]
			return n, nil
		}
		if c.detached.Load() {
			if c.rel < c.tail {
				c.rel = c.tail
				continue
			}
			return c.Conn.Read(p)
		}
		if c.err != nil {
			err := c.err
			c.err = nil
			return 0, err
		}
		if c.pos == c.tail && (c.st == stBody || c.st == stChunkData) {
			// Nothing buffered: body bytes go from the wire to p directly.
			c.head, c.rel, c.pos, c.tail = 0, 0, 0, 0
			if uint64(len(p)) > c.n {
				p = p[:c.n]
			}
			n, err := c.Conn.Read(p)
			c.off += int64(n)
			c.n -= uint64(n)
			if c.n == 0 {
				c.dataDone()
			}
			return n, err
		}
		if err := c.fill(); err != nil {
			if c.head < c.rel || c.st == stDone {
				c.err = err
				continue
			}
			return 0, err
		}
	}
}

// fill reads once from the wrapped conn into buf and scans what came.
func (c *Conn) fill() error {
	switch {
	case c.buf == nil:
		c.buf = make([]byte, 4096)
	case c.head == c.tail:
		c.head, c.rel, c.pos, c.tail, c.line = 0, 0, 0, 0, 0
	case c.tail == len(c.buf) && c.head > 0:
		d := c.head
		copy(c.buf, c.buf[d:c.tail])
		c.head, c.rel, c.pos, c.tail, c.line = 0, c.rel-d, c.pos-d, c.tail-d, c.line-d
	case c.tail == len(c.buf):
		// Held bytes never exceed max(c.max, maxChunkLine) without a
		// violation, so the buffer never outgrows that plus one.
		nb := make([]byte, min(2*len(c.buf), max(c.max, maxChunkLine)+1))
		copy(nb, c.buf[:c.tail])
		c.buf = nb
	}
	n, err := c.Conn.Read(c.buf[c.tail:])
	c.tail += n
	c.scan()
	return err
}

// scan advances the framing state machine over buf[pos:tail].
func (c *Conn) scan() {
	for c.pos < c.tail && c.st != stDone {
		switch c.st {
		case stStart:
			if b := c.buf[c.pos]; c.skip > 0 && (b == '\r' || b == '\n') {
				c.skip--
				c.pos++
				c.rel = c.pos
				continue
			}
			c.req++
			c.st, c.line = stReqLine, c.pos
			c.n, c.is11, c.post, c.sawCL, c.sawTE, c.hosts = 0, false, false, false, false, 0
			if c.trace != nil {
				c.trace(c.off + int64(c.rel-c.head))
			}
		case stBody, stChunkData:
			k := uint64(c.tail - c.pos)
			if k > c.n {
				k = c.n
			}
			c.pos += int(k)
			c.rel = c.pos
			if c.n -= k; c.n == 0 {
				c.dataDone()
			}
		case stChunkCR:
			if c.buf[c.pos] != '\r' {
				c.violate(ReasonBadChunk)
				return
			}
			c.pos++
			c.rel, c.st = c.pos, stChunkLF
		case stChunkLF:
			if c.buf[c.pos] != '\n' {
				c.violate(ReasonBadChunk)
				return
			}
			c.pos++
			c.rel, c.st, c.line = c.pos, stChunkLine, c.pos
		default: // line states
			i := bytes.IndexByte(c.buf[c.pos:c.tail], '\n')
			limit, reason := c.max, ReasonHeaderTooLarge
			if c.st == stChunkLine {
				limit, reason = maxChunkLine, ReasonBadChunk
			}
			end := c.tail
			if i >= 0 {
				end = c.pos + i + 1
			}
			if end-c.rel > limit {
				c.violate(reason)
				return
			}
			c.pos = end
			if i < 0 {
				return
			}
			line := c.buf[c.line:end]
			c.line = end
			c.onLine(line)
		}
	}
}

// dataDone moves on after the last byte of a body or chunk.
func (c *Conn) dataDone() {
	if c.st == stChunkData {
		c.st = stChunkCR
	} else {
		c.next()
	}
}

// next expects the next request, after net/http's CR/LF tolerance.
func (c *Conn) next() {
	c.st, c.skip = stStart, 0
	if c.post {
		c.skip = 4 // net/http's conn.readRequest: Peek(4) + numLeadingCRorLF
	}
}

// onLine checks one complete line, CRLF or LF included.
func (c *Conn) onLine(line []byte) {
	switch c.st {
	case stReqLine:
		c.requestLine(line)
	case stHeaders:
		if len(line) == 2 && line[0] == '\r' {
			// RFC 9112 §3.2: exactly one Host on HTTP/1.1 (an
			// absolute-form target does not excuse its absence, and two
			// let two hops route one request differently).
			if c.hosts > 1 || c.is11 && c.hosts == 0 {
				c.violate(ReasonBadHost)
				return
			}
			c.rel = c.pos // release the header block
			switch {
			case c.sawTE:
				c.st, c.line = stChunkLine, c.pos
			case c.n > 0:
				c.st = stBody
			default:
				c.next()
			}
			return
		}
		c.field(line)
	case stChunkLine:
		c.chunkLine(line)
	case stTrailer:
		if len(line) == 2 && line[0] == '\r' {
			c.rel = c.pos
			c.next()
			return
		}
		if _, _, ok := fieldLine(line); !ok {
			c.violate(ReasonInvalidHeader)
		}
	}
}

func (c *Conn) requestLine(line []byte) {
	l, ok := trimCRLF(line)
	if !ok || len(l) == 0 {
		c.violate(ReasonInvalidHeader)
		return
	}
	for _, b := range l {
		if b < 0x20 || b == 0x7f {
			c.violate(ReasonInvalidHeader)
			return
		}
	}
	// Split as net/http's parseRequestLine does.
	method, rest, _ := bytes.Cut(l, sp)
	_, proto, _ := bytes.Cut(rest, sp)
	c.post = string(method) == "POST"
	c.is11 = string(proto) == "HTTP/1.1"
	c.st = stHeaders
}

func (c *Conn) field(line []byte) {
	name, value, ok := fieldLine(line)
	switch {
	case !ok:
		c.violate(ReasonInvalidHeader)
	case equalFold(name, "host"):
		c.hosts++
	case equalFold(name, "content-length"):
		switch {
		case c.sawTE:
			c.violate(ReasonTEAndCL)
		case c.sawCL || bytes.IndexByte(value, ',') >= 0:
			c.violate(ReasonDuplicateCL)
		default:
			c.sawCL = true
			n, ok := httpsyntax.ParseLength(value)
			if !ok {
				c.violate(ReasonBadCL)
			}
			c.n = uint64(n)
		}
	case equalFold(name, "transfer-encoding"):
		switch {
		case c.sawCL:
			c.violate(ReasonTEAndCL)
		// net/http ignores Transfer-Encoding below HTTP/1.1 and reads no
		// body; refusing it keeps the guard and net/http in step.
		case c.sawTE || !c.is11 || !equalFold(value, "chunked"):
			c.violate(ReasonBadTE)
		default:
			c.sawTE = true
		}
	}
}

// chunkLine mirrors net/http's readChunkLine, trimTrailingWhitespace,
// removeChunkExtension and parseHexUint, and also refuses control bytes.
func (c *Conn) chunkLine(line []byte) {
	l, ok := trimCRLF(line)
	if !ok {
		c.violate(ReasonBadChunk)
		return
	}
	for _, b := range l {
		if (b < 0x20 && b != '\t') || b == 0x7f {
			c.violate(ReasonBadChunk)
			return
		}
	}
	l = bytes.TrimRight(l, " \t")
	l, _, _ = bytes.Cut(l, semi)
	n, ok := hex(l)
	if !ok {
		c.violate(ReasonBadChunk)
		return
	}
	c.rel = c.pos
	if n == 0 {
		c.st, c.line = stTrailer, c.pos
		return
	}
	c.st, c.n = stChunkData, n
}

// violate records the first violation. In a header block, the block is
// replaced by the synthetic request; in a body, the stream ends before the
// bad bytes. Nothing after them is ever returned.
func (c *Conn) violate(reason string) {
	c.viol.CompareAndSwap(nil, &violation{reason: reason, req: c.req})
	if c.st == stReqLine || c.st == stHeaders {
		c.synth = synthetic
	}
	c.st = stDone
	c.pos, c.tail = c.rel, c.rel
}
