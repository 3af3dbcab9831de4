package gateway

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/framing"
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
		// The framing guard refuses oversized headers first, through the
		// deny path (HSTS, problem+json); net/http's own limit is a backstop.
		MaxHeaderBytes: int(h.MaxHeaderBytes) + 4096,
		ConnContext:    framing.ConnContext,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:      250,
			MaxDecoderHeaderTableSize: 4096,
			MaxEncoderHeaderTableSize: 4096,
		},
	}
	return srv
}

// framingViolation reports whether the request is the stand-in the framing
// guard put in place of a smuggling-shaped one.
func framingViolation(r *http.Request) (string, bool) { return framing.Violated(r) }

// connTLS returns the connection's TLS state.
func connTLS(r *http.Request) *tls.ConnectionState { return r.TLS }

type connStartKey struct{}

// connContext records the framing guard and when the connection was
// accepted, for policies that bound a connection's age.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(framing.ConnContext(ctx, c), connStartKey{}, time.Now())
}

func connStart(r *http.Request) time.Time {
	t, _ := r.Context().Value(connStartKey{}).(time.Time)
	return t
}
