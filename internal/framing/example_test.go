package framing_test

import (
	"crypto/tls"
	"net"
	"net/http"

	"github.com/wardengw/warden/internal/framing"
)

// The gateway's wiring: guard listener below http.Server, ConnContext, and
// the violation check first in the handler chain.
func ExampleNewListener() {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	tlsConf := &tls.Config{NextProtos: []string{"h2", "http/1.1"} /* certificates, policy … */}
	ln := framing.NewListener(tls.NewListener(tcp, tlsConf), framing.ListenerConfig{})

	next := http.NotFoundHandler() // router and policies
	srv := &http.Server{
		ConnContext:    framing.ConnContext,
		MaxHeaderBytes: 1 << 20, // above framing.DefaultMaxHeaderBytes: the guard decides first
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
