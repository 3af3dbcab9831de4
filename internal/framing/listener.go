package framing

import (
	"crypto/tls"
	"net"
)

// Guard returns c ready for http.Server: a *tls.Conn whose handshake is
// complete and that negotiated a protocol net/http serves itself (h2) is
// returned untouched; any other conn is wrapped in the guard, keeping a
// ConnectionState method for TLS conns so that r.TLS is set.
//
// Guard does not handshake: a *tls.Conn must have completed its handshake
// already (as every conn from the tlsserver listener has), or it is
// treated as HTTP/1 and guarded.
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

// GuardListener returns a listener for http.Server.Serve that applies
// Guard to every conn accepted by inner, synchronously, without a
// goroutine. inner is the tlsserver listener, whose conns are already
// handshaken, or a plain net.Listener. Close, Addr and Accept errors are
// inner's.
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

// tlsConn is a guarded *tls.Conn. net/http fills r.TLS from the
// ConnectionState method of a conn that is not a *tls.Conn.
type tlsConn struct{ *Conn }

func (c tlsConn) ConnectionState() tls.ConnectionState {
	return c.NetConn().(*tls.Conn).ConnectionState()
}
