package framing_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/framing"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/tlsserver"
)

// seen is what the handler saw.
type seen struct {
	mu      sync.Mutex
	reqs    []string // "METHOD path proto tls=bool"
	guarded []string // "proto guarded=bool": whether the conn was wrapped
}

func (s *seen) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// serve runs the gateway wiring the package documents: the guard listener
// over inner, ConnContext, and a handler whose first step is the violation
// check.
func serve(t *testing.T, inner net.Listener, lim framing.Limits) *seen {
	t.Helper()
	s := new(seen)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason, bad := framing.Violated(r); bad {
			_, idx, _ := framing.FromContext(r.Context()).Violation()
			s.mu.Lock()
			s.reqs = append(s.reqs, fmt.Sprintf("violation %s %d", reason, idx))
			s.mu.Unlock()
			w.Header().Set("Strict-Transport-Security", "max-age=63072000")
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":400,"reason":%q}`, reason)
			return
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, fmt.Sprintf("%s %s %s tls=%v body=%q trailer=%q",
			r.Method, r.URL.Path, r.Proto, r.TLS != nil, body, r.Trailer.Get("T")))
		s.guarded = append(s.guarded, fmt.Sprintf("%s guarded=%v", r.Proto, framing.FromContext(r.Context()) != nil))
		s.mu.Unlock()
		io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: h, ConnContext: framing.ConnContext, ReadHeaderTimeout: 5 * time.Second}
	ln := framing.GuardListener(inner, lim)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// exchange writes raw to c and reads responses until the server closes.
func exchange(t *testing.T, c net.Conn, raw string) []*http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out []*http.Response
	br := bufio.NewReader(c)
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(res.Body)
		res.Body = io.NopCloser(nil)
		res.Status = string(body)
		out = append(out, res)
	}
}

const smuggle = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"0\r\n\r\n" +
	"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

func checkRefused(t *testing.T, res []*http.Response, s *seen, want []string) {
	t.Helper()
	if len(res) == 0 {
		t.Fatal("no response")
	}
	last := res[len(res)-1]
	if last.StatusCode != 400 || !last.Close || last.Header.Get("Strict-Transport-Security") == "" ||
		last.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("last response: %d close=%v %v", last.StatusCode, last.Close, last.Header)
	}
	if got := s.list(); !slices.Equal(got, want) {
		t.Fatalf("handler saw %q, want %q", got, want)
	}
}

func TestEndToEndPlain(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, inner, framing.Limits{})
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := exchange(t, c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"+
		"PUT /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n"+
		smuggle)
	if len(res) != 3 {
		t.Fatalf("%d responses, want 3", len(res))
	}
	checkRefused(t, res, s, []string{
		`GET /first HTTP/1.1 tls=false body="" trailer=""`,
		`PUT /chunked HTTP/1.1 tls=false body="abc" trailer="v"`,
		"violation te_and_cl 2",
	})
}

// TestEndToEndTLS runs the gateway's layering: the guard over tlsserver's
// listener, which owns the handshake. (That a stalled handshake does not
// block Accept is tlsserver's to test: see its TestHandshakeTimeout.)
func TestEndToEndTLS(t *testing.T) {
	ca := pkitest.NewRootCA(t, "Framing Test CA", pkitest.Options{})
	leaf := ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	tlsSrv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: []tls.Certificate{leaf.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tlsSrv.Close() })
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := tlsserver.NewListener(tcp, tlsSrv, tlsserver.ListenerOptions{Name: "framing-test", HandshakeTimeout: 5 * time.Second})
	s := serve(t, inner, framing.Limits{})
	addr := tcp.Addr().String()
	pool := ca.Pool()

	t.Run("http1 smuggle", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res := exchange(t, c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"+smuggle)
		checkRefused(t, res, s, []string{`GET /first HTTP/1.1 tls=true body="" trailer=""`, "violation te_and_cl 1"})
	})

	t.Run("h2 untouched, r.TLS set on both", func(t *testing.T) {
		for _, h2 := range []bool{true, false} {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: h2}
			if !h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			res, err := (&http.Client{Transport: tr}).Get("https://" + addr + framing.ViolationPath)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			tr.CloseIdleConnections()
			want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
			if res.StatusCode != 200 || res.Proto != want {
				t.Fatalf("h2=%v: %d %s", h2, res.StatusCode, res.Proto)
			}
		}
		got := s.list()
		if !slices.Contains(got, `GET `+framing.ViolationPath+` HTTP/2.0 tls=true body="" trailer=""`) ||
			!slices.Contains(got, `GET `+framing.ViolationPath+` HTTP/1.1 tls=true body="" trailer=""`) {
			t.Fatalf("handler saw %q", got)
		}
		s.mu.Lock()
		guarded := slices.Clone(s.guarded)
		s.mu.Unlock()
		if !slices.Contains(guarded, "HTTP/2.0 guarded=false") || slices.Contains(guarded, "HTTP/2.0 guarded=true") ||
			!slices.Contains(guarded, "HTTP/1.1 guarded=true") || slices.Contains(guarded, "HTTP/1.1 guarded=false") {
			t.Fatalf("conns wrapped: %q", guarded)
		}
	})
}

// TestControlUnguarded shows the attack the guard exists for: net/http on
// its own serves the smuggled request.
func TestControlUnguarded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var paths []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, smuggle)
	br := bufio.NewReader(c)
	for range 2 {
		if _, err := http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(paths, []string{"/", "/smuggled"}) {
		t.Fatalf("unguarded server saw %q", paths)
	}
}
