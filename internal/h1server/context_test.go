package h1server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

type ctxKey string

// TestRequestContextContract holds requestContext to context.WithCancel's
// behaviour: Done, Err, Value, AfterFunc (direct and through
// context.AfterFunc), derived contexts and Cause.
func TestRequestContextContract(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey("conn"), "c")
	newCtx := func() *requestContext {
		c := new(requestContext)
		c.init(parent)
		return c
	}

	t.Run("cancel closes Done, sets Err, once", func(t *testing.T) {
		c := newCtx()
		done := c.Done()
		if c.Err() != nil {
			t.Fatal("Err before cancel")
		}
		select {
		case <-done:
			t.Fatal("Done closed before cancel")
		default:
		}
		c.cancel(context.Canceled)
		c.cancel(context.DeadlineExceeded) // the first wins
		<-done
		if !errors.Is(c.Err(), context.Canceled) || context.Cause(c) != context.Canceled {
			t.Fatalf("Err %v, Cause %v", c.Err(), context.Cause(c))
		}
		<-c.Done() // asked for after the cancel: closed too
	})

	t.Run("Done asked for only after cancel", func(t *testing.T) {
		c := newCtx()
		c.cancel(context.Canceled)
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed")
		}
	})

	t.Run("values: held one, then the conn's", func(t *testing.T) {
		c := newCtx()
		if !c.HoldValue(ctxKey("x"), 1) || c.HoldValue(ctxKey("y"), 2) || c.HoldValue(nil, 3) {
			t.Fatal("HoldValue: first call must succeed, later ones fail")
		}
		if c.Value(ctxKey("x")) != 1 || c.Value(ctxKey("y")) != nil || c.Value(ctxKey("conn")) != "c" {
			t.Fatalf("values: %v %v %v", c.Value(ctxKey("x")), c.Value(ctxKey("y")), c.Value(ctxKey("conn")))
		}
	})

	t.Run("AfterFunc runs after cancel, stop before prevents", func(t *testing.T) {
		c := newCtx()
		ran := make(chan string, 3)
		stopA := c.AfterFunc(func() { ran <- "a" })
		stopB := c.AfterFunc(func() { ran <- "b" })
		if !stopA() || stopA() {
			t.Fatal("stop: true the first time only")
		}
		c.cancel(context.Canceled)
		if got := <-ran; got != "b" {
			t.Fatalf("ran %q, want b", got)
		}
		if stopB() {
			t.Fatal("stop after the hook ran must report false")
		}
		c.AfterFunc(func() { ran <- "late" }) // already cancelled: runs at once
		if got := <-ran; got != "late" {
			t.Fatalf("ran %q, want late", got)
		}
		select {
		case got := <-ran:
			t.Fatalf("stopped hook ran: %q", got)
		default:
		}
	})

	t.Run("context.AfterFunc and derived contexts follow it", func(t *testing.T) {
		c := newCtx()
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		child, cancelChild := context.WithTimeout(c, time.Hour)
		defer cancelChild()
		vchild := context.WithValue(c, ctxKey("v"), 1)
		c.cancel(context.Canceled)
		<-ran
		<-child.Done()
		<-vchild.Done()
		if !errors.Is(child.Err(), context.Canceled) {
			t.Fatalf("child: %v", child.Err())
		}
	})

	t.Run("a derived context cancelled first leaves it alone", func(t *testing.T) {
		c := newCtx()
		child, cancelChild := context.WithCancel(c)
		cancelChild()
		<-child.Done()
		if c.Err() != nil {
			t.Fatal("parent cancelled by its child")
		}
		c.mu.Lock()
		n := len(c.hooks)
		c.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d hooks left registered by a cancelled child", n)
		}
	})
}

// TestRequestContextEndsWithHandler: a context kept past the handler
// (by a goroutine it started) is cancelled when the handler returns, and
// the next request on the conn gets a fresh one.
func TestRequestContextEndsWithHandler(t *testing.T) {
	kept := make(chan context.Context, 2)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			t.Errorf("%s: context already ended", r.URL.Path)
		}
		kept <- r.Context()
		echo(w, r)
	})})
	c, br := dial(t, addr)
	for _, p := range []string{"/one", "/two"} {
		send(t, c, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if res, _ := readResponse(t, br, "GET"); res.StatusCode != 200 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
		ctx := <-kept
		<-ctx.Done() // cancelled when the handler returned
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("%s: %v", p, ctx.Err())
		}
	}
}

// TestBaseContextEndCancelsRequest: a request whose conn context (from a
// cancellable BaseContext) ends is cancelled with it.
func TestBaseContextEndCancelsRequest(t *testing.T) {
	base, stop := context.WithCancel(context.Background())
	inside, got := make(chan struct{}), make(chan error, 1)
	addr := start(t, &Server{BaseContext: base, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inside)
		select {
		case <-r.Context().Done():
			got <- r.Context().Err()
		case <-time.After(10 * time.Second):
			got <- errors.New("not cancelled")
		}
	})})
	c, _ := dial(t, addr)
	send(t, c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inside
	stop()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context: %v", err)
	}
}

// deadlineConn records the deadlines set on a conn.
type deadlineConn struct {
	net.Conn
	mu          sync.Mutex
	read, write time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.read = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.write = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.read, c.write = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *deadlineConn) deadlines() (read, write time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read, c.write
}

// TestDeadlinesFollowResponseController: deadlines a handler moves
// through http.ResponseController are known to the conn, so the next
// request's write deadline and the next idle wait's read deadline are set
// again even when the ones set before would still be within
// internal/deadline's window (an hour's timeouts: the window is minutes).
func TestDeadlinesFollowResponseController(t *testing.T) {
	const timeout = time.Hour
	seen := make(chan *deadlineConn, 1)
	type state struct{ read, write time.Time }
	states := make(chan state, 3)
	var dc *deadlineConn
	s := &Server{WriteTimeout: timeout, IdleTimeout: timeout, ReadTimeout: timeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read, write := dc.deadlines()
		states <- state{read, write}
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/clear-write":
			if err := rc.SetWriteDeadline(time.Time{}); err != nil {
				t.Error(err)
			}
		case "/far-read":
			if err := rc.SetReadDeadline(time.Now().Add(100 * timeout)); err != nil {
				t.Error(err)
			}
		}
		echo(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); s.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		dc = &deadlineConn{Conn: c}
		seen <- dc
		_ = s.ServeConn(dc)
	}()
	c, br := dial(t, ln.Addr().String())
	get := func(path string) state {
		t.Helper()
		send(t, c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if res, _ := readResponse(t, br, "GET"); res.StatusCode != 200 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		return <-states
	}
	<-seen
	get("/clear-write")
	if st := get("/far-read"); st.write.IsZero() || time.Until(st.write) < timeout {
		t.Fatalf("after a handler cleared the write deadline, the next request's is %v, want at least now+%v", st.write, timeout)
	}
	if st := get("/after"); time.Until(st.read) > timeout+timeout/16+time.Minute {
		t.Fatalf("after a handler set a read deadline %v ahead, the idle wait kept it (%v), want at most the idle timeout", 100*timeout, time.Until(st.read))
	}
}

// TestHeldValuePerRequest: a value held by one request's context (as the
// gateway holds its Exchange) is that request's only: pipelined requests
// on one conn, and a context kept past its handler, see their own.
func TestHeldValuePerRequest(t *testing.T) {
	type holder interface{ HoldValue(key, val any) bool }
	kept := make(chan context.Context, 3)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := r.Context().(holder)
		if !ok {
			t.Error("the request context cannot hold a value")
			return
		}
		if v := r.Context().Value(ctxKey("x")); v != nil {
			t.Errorf("%s: a value before holding one: %v", r.URL.Path, v)
		}
		if !h.HoldValue(ctxKey("x"), r.URL.Path) {
			t.Errorf("%s: HoldValue refused", r.URL.Path)
		}
		kept <- r.Context()
		echo(w, r)
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, p := range []string{"/1", "/2", "/3"} {
		if res, _ := readResponse(t, br, "GET"); res.StatusCode != 200 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
		if v := (<-kept).Value(ctxKey("x")); v != p {
			t.Fatalf("request %s's context holds %v", p, v)
		}
	}
}

// TestDeadlineChangeAfterHandlerRefused: a ResponseController kept past
// the handler cannot move the conn's deadlines (by then they are the next
// request's).
func TestDeadlineChangeAfterHandlerRefused(t *testing.T) {
	kept := make(chan http.ResponseWriter, 1)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept <- w
		echo(w, r)
	})})
	c, br := dial(t, addr)
	send(t, c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, br, "GET")
	rc := http.NewResponseController(<-kept)
	if err := rc.SetReadDeadline(time.Now().Add(time.Hour)); !errors.Is(err, errAfterHandler) {
		t.Fatalf("SetReadDeadline after the handler: %v, want errAfterHandler", err)
	}
	if err := rc.SetWriteDeadline(time.Time{}); !errors.Is(err, errAfterHandler) {
		t.Fatalf("SetWriteDeadline after the handler: %v, want errAfterHandler", err)
	}
}

// TestWriteTimeoutFromEndOfHeaders: a client that is slow to send its
// headers does not eat into the handler's write time: the write deadline
// is at least WriteTimeout after the headers' end. (The slow sending is
// the test's input, not synchronisation.)
func TestWriteTimeoutFromEndOfHeaders(t *testing.T) {
	const timeout = 1600 * time.Millisecond // deadline window d/16 = 100 ms, under the 300 ms delay
	var dc *deadlineConn
	writeDL := make(chan time.Time, 1)
	s := &Server{WriteTimeout: timeout, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, write := dc.deadlines()
		writeDL <- write
		echo(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); s.Close() })
	served := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		dc = &deadlineConn{Conn: c}
		close(served)
		_ = s.ServeConn(dc)
	}()
	c, br := dial(t, ln.Addr().String())
	<-served
	send(t, c, "GET /slow HTTP/1.1\r\nHost: a\r\n")
	time.Sleep(300 * time.Millisecond) // the slow client: its headers end 300 ms after they began
	headersEnd := time.Now()
	send(t, c, "\r\n")
	if res, _ := readResponse(t, br, "GET"); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if dl := <-writeDL; dl.Before(headersEnd.Add(timeout)) {
		t.Fatalf("write deadline %v after the headers' end, want at least %v", dl.Sub(headersEnd), timeout)
	}
}

// TestClientGoneAfterBodyCancelsContext: the client-gone watch also starts
// for a request with a body, once the handler has read it to the end
// (possibly on another goroutine, as a proxy's transport does).
func TestClientGoneAfterBodyCancelsContext(t *testing.T) {
	inside, cancelled := make(chan struct{}), make(chan error, 1)
	addr := start(t, &Server{WatchDelay: 10 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := make(chan error, 1)
		go func() { _, err := io.ReadAll(r.Body); read <- err }()
		if err := <-read; err != nil {
			cancelled <- err
			return
		}
		close(inside)
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("not cancelled")
		}
	})})
	c, _ := dial(t, addr)
	send(t, c, "POST /wait HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
	<-inside
	c.Close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("context: %v", err)
	}
}
