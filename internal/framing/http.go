package framing

import (
	"context"
	"net"
	"net/http"
)

type ctxKey struct{}

// ConnContext is meant for http.Server.ConnContext: it records the guard
// of c, if c is guarded, for FromContext and Violated.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	var g *Conn
	switch c := c.(type) {
	case *Conn:
		g = c
	case tlsConn:
		g = c.Conn
	default:
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, g)
}

// FromContext returns the guard of the conn a request arrived on, or nil
// (HTTP/2, or a server without ConnContext).
func FromContext(ctx context.Context) *Conn {
	g, _ := ctx.Value(ctxKey{}).(*Conn)
	return g
}

// ConnViolation reports a violation found on the conn r arrived on, and
// its reason code: once the guard has found one, nothing after the bad
// bytes is read, so a request whose body ends early on such a conn was
// cut by the guard (a malformed chunk), not by the client or the network.
func ConnViolation(r *http.Request) (reason string, ok bool) {
	g := FromContext(r.Context())
	if g == nil {
		return "", false
	}
	reason, _, ok = g.Violation()
	return reason, ok
}

// Violated reports whether r stands for a framing violation, and its
// reason code. It is true only for a request to ViolationPath on a guarded
// conn that has a violation; a client's own request to that path, sent
// ahead of a violation on the same conn, is reported too, which is safe:
// the conn is being refused anyway.
func Violated(r *http.Request) (reason string, ok bool) {
	if r.RequestURI != ViolationPath {
		return "", false
	}
	g := FromContext(r.Context())
	if g == nil {
		return "", false
	}
	reason, _, ok = g.Violation()
	return reason, ok
}
