package tlsserver_test

import (
	"log"
	"net"
	"net/http"
	"time"

	"github.com/wardengw/warden/internal/tlsserver"
)

// Serving HTTP/1.1 and HTTP/2 behind the listener, with certificates from
// files and the default (intermediate) profile.
func ExampleNewListener() {
	certs, err := tlsserver.LoadCertificates([]tlsserver.CertSource{
		{CertFile: "/etc/warden/ecdsa.pem", KeyFile: "/etc/warden/ecdsa-key.pem"},
		{CertFile: "/etc/warden/rsa.pem", KeyFile: "/etc/warden/rsa-key.pem"},
	})
	if err != nil {
		log.Print(err) // names the file and the reason
		return
	}
	srv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: certs})
	if err != nil {
		log.Print(err)
		return
	}
	defer srv.Close()
	inner, err := net.Listen("tcp", ":8443")
	if err != nil {
		log.Print(err)
		return
	}
	ln := tlsserver.NewListener(inner, srv, tlsserver.ListenerOptions{Name: "public", MaxConns: 10000})
	hs := &http.Server{TLSConfig: srv.TLSConfig(), ReadHeaderTimeout: 10 * time.Second}
	log.Print(hs.Serve(ln)) // srv.Update(newSettings) later swaps certificates for new handshakes
}
