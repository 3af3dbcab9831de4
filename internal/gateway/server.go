package gateway

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/framing"
	"github.com/wardengw/warden/internal/h1server"
	"github.com/wardengw/warden/internal/tlsserver"
)

// wrapListener layers the HTTPS listener: the TLS server completes each
// handshake (with its timeout, connection cap, metrics and audit), then
// HTTP/1 connections get the framing guard.
func (g *Gateway) wrapListener(raw net.Listener, h config.HTTPSListener) net.Listener {
	ln := tlsserver.NewListener(raw, g.tls, tlsserver.ListenerOptions{
		Name: "https", MaxConns: h.MaxConnections, HandshakeTimeout: h.HandshakeTimeout,
		Audit: g.audit, Metrics: g.metrics, Log: g.log,
	})
	return framing.GuardListener(ln, framing.Limits{MaxHeaderBytes: int(h.MaxHeaderBytes)})
}

func (g *Gateway) newHTTPSServer(h config.HTTPSListener) *http.Server {
	srv := &http.Server{
		Handler: g,
		// No TLSConfig: the listener owns the handshake; net/http still
		// serves HTTP/2 to conns that negotiated h2 (and must not mutate
		// the shared tls.Config, which http2ConfigureServer would).
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		// HTTP/1.x: the framing guard refuses oversized headers first,
		// through the deny path (HSTS, problem+json), and this limit is a
		// backstop. HTTP/2, which the guard does not see: this is the limit
		// (net/http's plain 431).
		MaxHeaderBytes: int(h.MaxHeaderBytes) + 4096,
		ConnContext:    g.connContext,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:      250,
			MaxDecoderHeaderTableSize: 4096,
			MaxEncoderHeaderTableSize: 4096,
		},
	}
	return srv
}

// newH1Server returns the server of HTTP/1.x conns on the HTTPS listener:
// the same timeouts and limits as newHTTPSServer's, whose net/http server
// keeps serving HTTP/2.
func (g *Gateway) newH1Server(h config.HTTPSListener) *h1server.Server {
	return &h1server.Server{
		Handler:           g,
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		// The framing guard refuses oversized headers first, through the
		// deny path; this is the backstop, as for net/http.
		MaxHeaderBytes: int(h.MaxHeaderBytes) + 4096,
		BaseContext:    context.WithValue(context.Background(), http.ServerContextKey, g.https),
		ConnContext:    g.connContext,
		// The server's own refusals (a malformed request line or Host, an
		// unsupported version, Expect or transfer coding, oversized
		// headers) go through the deny path.
		Refuse: g.refuse,
		// Its plain-text answer, only if refuse panicked: HSTS still.
		ErrorHeader: func() http.Header {
			return http.Header{"Strict-Transport-Security": g.rt.Load().hstsHeader}
		},
		Log: g.log,
	}
}

// acceptHTTPS hands each accepted conn to its server: HTTP/2 conns (an
// untouched *tls.Conn, see framing.Guard) to net/http through h2, every
// guarded HTTP/1.x conn to the lean server in a goroutine of its own.
func (g *Gateway) acceptHTTPS(h2 *connQueue) {
	for {
		c, err := g.lnHTTPS.Accept()
		if err != nil {
			h2.fail(err)
			return
		}
		if _, ok := c.(*tls.Conn); ok {
			h2.push(c)
			continue
		}
		go func() { _ = g.h1.ServeConn(c) }()
	}
}

// connQueue is a net.Listener whose Accept returns the conns pushed to
// it: net/http's Serve loop for the HTTP/2 conns. Close closes the
// underlying listener, which ends acceptHTTPS.
type connQueue struct {
	net.Listener // Addr and Close
	conns        chan net.Conn
	done         chan struct{}
	once         sync.Once
	err          error
}

func newConnQueue(ln net.Listener) *connQueue {
	return &connQueue{Listener: ln, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.done:
		c.Close()
	}
}

// fail makes Accept return err from now on.
func (q *connQueue) fail(err error) {
	q.once.Do(func() {
		q.err = err
		close(q.done)
	})
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, q.err
	}
}

func (q *connQueue) Close() error {
	err := q.Listener.Close()
	q.fail(net.ErrClosed)
	return err
}

// framingViolation reports whether the request is the stand-in the framing
// guard put in place of a smuggling-shaped one.
func framingViolation(r *http.Request) (string, bool) { return framing.Violated(r) }

// connTLS returns the connection's TLS state.
func connTLS(r *http.Request) *tls.ConnectionState { return r.TLS }

type connInfoKey struct{}

// connInfo is what the gateway notes of a connection once, rather than
// for each of its requests: when it started, on the gateway's clock (the
// one max_connection_age is checked against), and the client's IP,
// parsed and in text form.
type connInfo struct {
	start  time.Time
	peer   netip.Addr
	peerIP string
}

// connContext records the connection's connInfo next to its framing
// guard.
func (g *Gateway) connContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{start: time.Now()}
	if g.env0Now != nil {
		ci.start = g.env0Now()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		ci.peer = ap.Addr().Unmap().WithZone("")
		ci.peerIP = ci.peer.String()
	}
	return context.WithValue(framing.ConnContext(ctx, c), connInfoKey{}, ci)
}

// connInfoOf returns the request's connInfo (zero outside the gateway's
// listeners).
func connInfoOf(r *http.Request) connInfo {
	if ci, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
		return *ci
	}
	return connInfo{}
}
