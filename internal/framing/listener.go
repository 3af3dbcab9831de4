package framing

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// DefaultHandshakeTimeout bounds a TLS handshake when ListenerConfig
// leaves HandshakeTimeout zero.
const DefaultHandshakeTimeout = 10 * time.Second

// ListenerConfig configures NewListener. The zero value is ready to use.
type ListenerConfig struct {
	Limits Limits
	// HandshakeTimeout bounds each TLS handshake. Zero or less means
	// DefaultHandshakeTimeout. It replaces http.Server.TLSHandshakeTimeout,
	// which does not apply to handshakes done by the listener.
	HandshakeTimeout time.Duration
	// HandshakeError, if set, is called (from the handshake's goroutine)
	// for each failed handshake; the conn is already closed.
	HandshakeError func(remote net.Addr, err error)
}

// NewListener returns a listener for http.Server.Serve that guards every
// HTTP/1.x conn accepted by inner. A *tls.Conn is handshaken first, off
// the Accept path; if it negotiated a protocol net/http serves itself
// (such as h2) it is returned untouched, otherwise it is returned guarded,
// with a ConnectionState method so that r.TLS is set. Non-TLS conns are
// returned guarded, without one. Closing the listener closes inner and
// abandons handshakes in progress.
func NewListener(inner net.Listener, cfg ListenerConfig) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		Listener: inner,
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		conns:    make(chan net.Conn),
		errs:     make(chan error),
	}
	if l.cfg.HandshakeTimeout <= 0 {
		l.cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	go l.acceptLoop()
	return l
}

type listener struct {
	net.Listener
	cfg       ListenerConfig
	ctx       context.Context // done when the listener is closed
	cancel    context.CancelFunc
	conns     chan net.Conn
	errs      chan error
	closeOnce sync.Once
	closeErr  error
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// Passed on one by one, so the server's backoff on temporary
			// errors paces this loop; a permanent error makes the server
			// return and close the listener.
			select {
			case l.errs <- err:
				continue
			case <-l.ctx.Done():
				return
			}
		}
		go l.prepare(c)
	}
}

func (l *listener) prepare(c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		l.deliver(Wrap(c, l.cfg.Limits))
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		tc.Close()
		if l.cfg.HandshakeError != nil {
			l.cfg.HandshakeError(tc.RemoteAddr(), err)
		}
		return
	}
	l.deliver(Guard(tc, l.cfg.Limits))
}

// Guard returns c ready for http.Server: a *tls.Conn whose handshake is
// complete and that negotiated a protocol net/http serves itself (h2) is
// returned untouched; any other conn is wrapped in the guard, keeping a
// ConnectionState method for TLS conns so that r.TLS is set.
func Guard(c net.Conn, lim Limits) net.Conn {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return Wrap(c, lim)
	}
	switch tc.ConnectionState().NegotiatedProtocol {
	case "", "http/1.1", "http/1.0": // what net/http serves as HTTP/1 (validNextProto)
		return tlsConn{Wrap(tc, lim)}
	default:
		return tc
	}
}

// GuardListener guards the conns of a listener whose conns are already
// handshaken (the tlsserver listener), synchronously, without a goroutine.
func GuardListener(inner net.Listener, lim Limits) net.Listener {
	return guardListener{inner, lim}
}

type guardListener struct {
	net.Listener
	lim Limits
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Guard(c, l.lim), nil
}

func (l *listener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// tlsConn is a guarded *tls.Conn. net/http fills r.TLS from the
// ConnectionState method of a conn that is not a *tls.Conn.
type tlsConn struct{ *Conn }

func (c tlsConn) ConnectionState() tls.ConnectionState {
	return c.NetConn().(*tls.Conn).ConnectionState()
}
