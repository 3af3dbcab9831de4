package h1server

import (
	"context"
	"errors"
	"net/http"
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
