package tlsserver_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/tlsserver"
)

// BenchmarkHandshake measures full handshakes (no resumption, ECDSA P-256,
// default client, so TLS 1.3 with X25519MLKEM768) through the Listener and
// through a plain tls.Listen baseline with the same certificate, curves and
// ALPN, in one run so the ratio can be read off. Each iteration dials,
// completes the handshake on both sides and reads the server's close.
func BenchmarkHandshake(b *testing.B) {
	p := newPKI(b)
	settings := tlsserver.Settings{Certificates: certs(p.ecdsaA)}

	b.Run("listener", func(b *testing.B) {
		srv, err := tlsserver.NewServer(settings)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ln := tlsserver.NewListener(inner, srv, tlsserver.ListenerOptions{})
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept() // handshake already done
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		runHandshakes(b, ln.Addr().String(), p.clientConfig())
	})

	b.Run("baseline_tls_listen", func(b *testing.B) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
			MinVersion:       tls.VersionTLS12,
			Certificates:     settings.Certificates,
			CurvePreferences: tlsserver.DefaultCurves(),
			NextProtos:       tlsserver.DefaultNextProtos(),
		})
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		runHandshakes(b, ln.Addr().String(), p.clientConfig())
	})
}

func runHandshakes(b *testing.B, addr string, cfg *tls.Config) {
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, c) // returns once the server has finished and closed
		c.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
}
