package framing_test

import (
	"crypto/tls"
	"net"
	"net/http"

	"github.com/wardengw/warden/internal/framing"
	"github.com/wardengw/warden/internal/tlsserver"
)

// The gateway's wiring: tlsserver's listener completes each handshake, the
// guard listener above it wraps the HTTP/1 conns, then ConnContext, and the
// violation check first in the handler chain.
func ExampleGuardListener() {
	var certs []tls.Certificate // tlsserver.LoadCertificates(…)
	tlsSrv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: certs})
	if err != nil {
		return // no certificates in this example
	}
	defer tlsSrv.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	ln := framing.GuardListener(
		tlsserver.NewListener(tcp, tlsSrv, tlsserver.ListenerOptions{Name: "https", MaxConns: 10000}),
		framing.Limits{MaxHeaderBytes: framing.DefaultMaxHeaderBytes},
	)

	next := http.NotFoundHandler() // router and policies
	srv := &http.Server{
		// No TLSConfig: the listener owns the handshake; net/http still
		// serves HTTP/2 on the conns that negotiated h2.
		ConnContext:    framing.ConnContext,
		MaxHeaderBytes: 1 << 20, // above the guard's limit: the guard decides first
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if reason, bad := framing.Violated(r); bad {
				// The gateway's one deny path: 400, problem+json, HSTS,
				// audit event with reason, metric.
				w.Header().Set("Connection", "close")
				http.Error(w, reason, http.StatusBadRequest)
				return
			}
			// r.TLS is set for HTTP/1.1 and HTTP/2 alike.
			next.ServeHTTP(w, r)
		}),
	}
	go srv.Serve(ln)
	srv.Close()
}
