// Command backend is the benchmark upstream: a minimal HTTPS server (TLS 1.3
// only, the certificate given by flags, ECDSA P-256 in bench/run.sh) that
// answers every GET with the same ~100-byte JSON body. bench/run.sh uses it
// both behind the proxies and, on its own, as the ceiling a TLS-terminating
// proxy on the same core cannot beat. With -client-ca it requires and
// verifies a client certificate (tls.RequireAndVerifyClientCert, chain to
// that CA, no revocation checking): the mTLS ceiling of bench/mtls.sh.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// body is the fixed response: 97 bytes of JSON including the newline.
var body = []byte(`{"service":"bench-backend","status":"ok","items":[1,2,3,4,5,6,7,8],"note":"fixed 100-byte body"}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:18444", "listen address")
	cert := flag.String("cert", "", "PEM certificate chain")
	key := flag.String("key", "", "PEM private key")
	h1 := flag.Bool("h1", false, "offer only http/1.1 in ALPN (no HTTP/2)")
	clientCA := flag.String("client-ca", "", "PEM CA bundle: require a client certificate that chains to it (mTLS)")
	flag.Parse()
	if *cert == "" || *key == "" {
		fmt.Fprintln(os.Stderr, "backend: -cert and -key are required")
		os.Exit(2)
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("backend: %v", err)
	}
	contentLength := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		hdr := w.Header()
		hdr["Content-Type"] = []string{"application/json"}
		hdr["Content-Length"] = []string{contentLength}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
	protos := []string{"h2", "http/1.1"}
	if *h1 {
		protos = []string{"http/1.1"}
	}
	srv := &http.Server{
		Handler: h,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{pair},
			NextProtos:   protos,
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(os.Stderr, "backend: ", 0),
	}
	if *clientCA != "" {
		pemBytes, err := os.ReadFile(*clientCA)
		if err != nil {
			log.Fatalf("backend: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			log.Fatalf("backend: %s: no PEM certificates", *clientCA)
		}
		srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLSConfig.ClientCAs = pool
	}
	if *h1 {
		// A non-nil empty map disables net/http's automatic HTTP/2.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("backend: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "backend: listening on https://%s\n", ln.Addr())
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("backend: %v", err)
	}
}
