package h1server

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline that has passed: a blocked read returns.
var aLongTimeAgo = time.Unix(1, 0)

// connReader is what the conn's bufio.Reader reads from: the conn, with
// the header size budget, plus the client-gone watch.
//
// The watch: net/http starts a goroutine and a read on every request to
// notice a client that goes away while the handler runs, and stops it
// after the handler, a cost on every request. Here a timer starts the
// same read only once a request has run for WatchDelay with its body read
// to the end (before that, the handler's own body reads notice it). A
// byte read by the watch (a pipelined request) is kept for the next
// request; an error (EOF, reset) cancels the request's context, which
// cancels the upstream request, and ends the conn after the response.
type connReader struct {
	c     *conn
	limit int64 // header budget left; -1 none; 0 exhausted (431)

	mu      sync.Mutex
	cond    sync.Cond
	running bool // a handler runs
	armed   bool // the watch may start when the timer fires
	inRead  bool // the watch's read is in progress
	aborted bool // end interrupted the watch's read
	hasByte bool // byteBuf holds a byte the watch read
	byteBuf [1]byte
	err     error           // the watch saw the client go away
	req     *requestContext // the running request's context
	// wholeDeadline is the request's read deadline (ReadTimeout), which
	// the watch's read keeps, as net/http's background read does.
	wholeDeadline time.Time
}

// Read is called by the conn's goroutine (or by a handler's body reader)
// only while no watch read runs (end waits for it), so the fields the
// watch sets are read without the lock.
func (cr *connReader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	if cr.limit == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if cr.limit > 0 && int64(len(p)) > cr.limit {
		p = p[:cr.limit]
	}
	var n int
	var err error
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		n = 1
	} else {
		n, err = cr.c.rwc.Read(p)
	}
	if cr.limit > 0 {
		cr.limit -= int64(n)
	}
	return n, err
}

// begin is called before the handler; arm is true when the request has
// no body left to read.
func (cr *connReader) begin(req *requestContext, arm bool) {
	cr.mu.Lock()
	cr.running, cr.req = true, req
	cr.mu.Unlock()
	if arm {
		cr.arm()
	}
}

// arm starts the timer of the watch, once per request.
func (cr *connReader) arm() {
	cr.mu.Lock()
	if !cr.running || cr.armed {
		cr.mu.Unlock()
		return
	}
	cr.armed = true
	cr.mu.Unlock()
	c := cr.c
	d := c.s.WatchDelay
	if d <= 0 {
		d = DefaultWatchDelay
	}
	c.watch.Reset(d)
}

// watchRead is the timer's function: one read that either gets a byte
// (kept) or an error (the client is gone), or is interrupted by end.
func (cr *connReader) watchRead() {
	cr.mu.Lock()
	if !cr.running || !cr.armed || cr.inRead || cr.hasByte || cr.err != nil {
		cr.mu.Unlock()
		return
	}
	cr.armed = false
	cr.inRead = true
	cr.c.setReadDeadline(cr.wholeDeadline) // under the lock: end's abort comes after
	cr.mu.Unlock()
	n, err := cr.c.rwc.Read(cr.byteBuf[:])
	cr.mu.Lock()
	if n == 1 {
		cr.hasByte = true
	}
	if err != nil && !(cr.aborted && isTimeout(err)) {
		cr.err = err
		if cr.req != nil {
			cr.req.cancel(context.Canceled)
		}
	}
	cr.inRead = false
	cr.cond.Broadcast()
	cr.mu.Unlock()
}

// end is called after the handler: it stops the watch and waits for a
// watch read in progress.
func (cr *connReader) end() {
	cr.c.watch.Stop()
	cr.mu.Lock()
	cr.running, cr.armed, cr.req = false, false, nil
	if cr.inRead {
		cr.aborted = true
		cr.c.setReadDeadline(aLongTimeAgo)
		for cr.inRead {
			cr.cond.Wait()
		}
		cr.aborted = false
	}
	cr.mu.Unlock()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// reqBody is the request body the handler reads: it sends 100 Continue
// before the first read when asked, keeps what net/http's body keeps for
// deciding whether the conn can be reused, and arms the watch at EOF.
type reqBody struct {
	rc io.ReadCloser // http.ReadRequest's body
	c  *conn
	w  *response

	mu          sync.Mutex
	remaining   int64 // bytes left of a Content-Length body; -1 for chunked
	expectAsked bool  // the client sent Expect: 100-continue
	expect      bool  // ... and 100 Continue is not sent yet
	sawEOF      bool
	closed      bool
}

func (b *reqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		b.w.sendContinue()
	}
	n, err := b.rc.Read(p)
	if b.remaining > 0 {
		b.remaining -= int64(n)
	}
	if err == io.EOF {
		b.sawEOF = true
		b.c.cr.arm()
	}
	return n, err
}

// Close drains what is left, up to maxPostHandlerReadBytes, so the conn
// can serve the next request, as net/http's server-side body does.
func (b *reqBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.sawEOF || b.expect || b.remaining > maxPostHandlerReadBytes {
		return nil
	}
	if _, err := io.CopyN(io.Discard, b.rc, maxPostHandlerReadBytes+1); err == io.EOF {
		b.sawEOF = true
	}
	return nil
}

// eof reports whether the body was read to its end.
func (b *reqBody) eof() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sawEOF
}

// reusable decides, when the response header is written, whether the
// conn can serve another request after it: net/http's rules. It may read
// and discard the rest of the body. tooBig means too much is left.
func (b *reqBody) reusable() (ok, tooBig bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.expectAsked && !b.sawEOF:
		return false, false
	case b.sawEOF:
		return true, false
	case b.closed:
		return false, false
	case b.remaining >= maxPostHandlerReadBytes:
		return false, true
	}
	_, err := io.CopyN(io.Discard, b.rc, maxPostHandlerReadBytes+1)
	switch err {
	case nil:
		return false, true
	case io.EOF:
		b.sawEOF = true
		return true, false
	}
	return false, false
}
