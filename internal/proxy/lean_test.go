package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wardengw/warden/internal/policy"
)

// seen is what the upstream received.
type seen struct {
	Method, URI, Host string
	Header            http.Header
	Body              string
	ContentLength     int64
	TE                []string
}

// got is what the client received.
type got struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
}

// summary is a body short enough for a failure message.
func summary(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// TestLeanForwardMatchesStd sends the same requests through the lean
// forward path and through httputil.ReverseProxy (ReverseProxyOnly), to
// the same upstream, and requires the upstream to receive the same
// request and the client the same response: hop-by-hop fields and those
// the Connection field lists dropped both ways, forwarding headers and the
// request ID replaced, spoofable headers dropped, TE: trailers kept, no
// default User-Agent, HSTS and Alt-Svc from the upstream dropped, trailers
// (announced and not) passed on, streaming bodies flushed.
func TestLeanForwardMatchesStd(t *testing.T) {
	var mu sync.Mutex
	var last seen
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), summary(body), r.ContentLength, r.TransferEncoding}
		mu.Unlock()
		h := w.Header()
		switch r.URL.Path {
		case "/hop":
			h.Set("Connection", "X-Up-Hop")
			h.Set("X-Up-Hop", "1")
			h.Set("Keep-Alive", "timeout=5")
			h.Set("Proxy-Authenticate", "Basic")
			h.Set("Strict-Transport-Security", "max-age=0")
			h.Set("Alt-Svc", `h3=":443"`)
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			h.Set("X-Request-Id", "upstream-id")
			_, _ = io.WriteString(w, "hop")
		case "/trailers":
			h.Set("Trailer", "X-T1")
			_, _ = io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			h.Set("X-T1", "one")
			h.Set(http.TrailerPrefix+"X-T2", "two")
		case "/stream":
			h.Set("Content-Type", "text/event-stream")
			for _, s := range []string{"data: a\n\n", "data: b\n\n"} {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		default:
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok "+r.URL.Path)
		}
	}
	p := newPKI(t)
	b := newBackend(t, p.good.TLS(), nil, handler)
	lean := mustNew(t, p.config(t, b))
	stdCfg := p.config(t, b)
	stdCfg.ReverseProxyOnly = true
	std := mustNew(t, stdCfg)
	if !lean.lean || std.lean {
		t.Fatalf("lean %v, std %v", lean.lean, std.lean)
	}
	var taken sync.Map // paths that took the lean path
	front := func(u *Upstream) *httptest.Server {
		e := newEnv()
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000")
			w.Header().Set("X-Request-Id", "req-1")
			x := &policy.Exchange{ID: "req-1", Env: &policy.Env{Metrics: e.metrics}}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
			var lr leanRequest
			if u.leanEligible(r, &lr) {
				taken.Store(r.URL.EscapedPath(), true)
			}
			u.ServeHTTP(w, r)
		}))
		t.Cleanup(s.Close)
		return s
	}
	frontLean, frontStd := front(lean), front(std)

	type req struct {
		method, path, body string
		header             http.Header
		lean               bool // expected to take the lean path
	}
	reqs := []req{
		{"GET", "/hop?x=1&y=%20z", "", http.Header{
			"Connection": {"X-Hop, keep-alive"}, "X-Hop": {"secret"}, "Keep-Alive": {"5"},
			"Proxy-Authorization": {"Basic eA=="}, "Te": {"trailers"}, "X-Real-Ip": {"6.6.6.6"},
			"X-Forwarded-For": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6"}, "X-Request-Id": {"client"},
			"X-Multi": {"a", "b"}, "Accept": {"*/*"}, "User-Agent": {"agent/1"},
		}, true},
		{"GET", "/no-ua", "", http.Header{"User-Agent": {""}}, true},
		{"GET", "/enc%2Fpath/x", "", nil, true},
		{"POST", "/post", "hello", http.Header{"Content-Type": {"text/plain"}}, true},
		{"POST", "/empty", "", nil, true},
		{"PUT", "/put", "", nil, true},
		{"HEAD", "/head", "", nil, true},
		{"GET", "/trailers", "", http.Header{"Te": {"trailers"}}, true},
		{"GET", "/stream", "", nil, true},
		{"GET", "/204", "", nil, true},
		{"GET", "/semi?a=1;b=2", "", nil, false}, // ReverseProxy re-encodes such a query
		{"POST", "/big", strings.Repeat("x", maxBufferedBody+1), nil, false},
		{"GET", "/upgrade", "", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, false},
	}
	send := func(s *httptest.Server, rq req) (seen, got) {
		t.Helper()
		var body io.Reader
		if rq.body != "" {
			body = strings.NewReader(rq.body)
		}
		r, err := http.NewRequest(rq.method, s.URL+rq.path, body)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = "gw.example" // the same for both fronts
		for k, vv := range rq.header {
			r.Header[k] = vv
		}
		res, err := s.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Header.Del("Date")
		mu.Lock()
		defer mu.Unlock()
		up := last
		last = seen{}
		return up, got{res.StatusCode, res.Header, summary(b), res.Trailer}
	}
	for _, rq := range reqs {
		t.Run(rq.method+rq.path, func(t *testing.T) {
			upL, resL := send(frontLean, rq)
			upS, resS := send(frontStd, rq)
			if _, ok := taken.Load(strings.SplitN(rq.path, "?", 2)[0]); ok != rq.lean {
				t.Fatalf("lean path taken: %v, want %v", ok, rq.lean)
			}
			if !reflect.DeepEqual(upL, upS) {
				t.Errorf("upstream received\nlean %+v\nstd  %+v", upL, upS)
			}
			if !reflect.DeepEqual(resL, resS) {
				t.Errorf("client received\nlean %+v\nstd  %+v", resL, resS)
			}
			if resL.Header.Get("Strict-Transport-Security") != "max-age=63072000" || resL.Header.Get("Alt-Svc") != "" {
				t.Errorf("gateway-owned fields: %v", resL.Header)
			}
		})
	}
	// Spot checks that the comparison is about something.
	upL, resL := send(frontLean, reqs[0])
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "X-Real-Ip", "Connection"} {
		if v, ok := upL.Header[k]; ok {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if upL.Header.Get("X-Forwarded-For") != "127.0.0.1" || upL.Header.Get("X-Request-Id") != "req-1" ||
		upL.Header.Get("Te") != "trailers" || upL.URI != "/hop?x=1&y=%20z" {
		t.Errorf("upstream received %+v", upL)
	}
	if resL.Header.Get("X-Up-Hop") != "" || resL.Header.Get("Keep-Alive") != "" || len(resL.Header["Set-Cookie"]) != 2 {
		t.Errorf("client received %v", resL.Header)
	}
	if _, resL := send(frontLean, reqs[7]); resL.Trailer.Get("X-T1") != "one" || resL.Trailer.Get("X-T2") != "two" {
		t.Errorf("trailers %v", resL.Trailer)
	}
}

// TestLeanEarlyHintsKeepGatewayFields: after a 1xx the final response
// still carries the fields the gateway set before forwarding (HSTS and the
// request ID), which ReverseProxy's 1xx handling clears.
func TestLeanEarlyHintsKeepGatewayFields(t *testing.T) {
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "done")
	}, nil)
	e := newEnv()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000")
		x := e.request(r.Method, "https://gw.example"+r.URL.Path, "192.0.2.1:1234")
		u.ServeHTTP(w, r.WithContext(x.Context()))
	}))
	t.Cleanup(front.Close)
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h.Get("Link"))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/", nil)
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(hints) != 1 || res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("hints %q, final %d %v", hints, res.StatusCode, res.Header)
	}
}

// TestLeanForwardingFieldsInPlace: for an untrusted peer, the lean path
// writes the forwarding fields in place; they must be forwardedValues'
// (which the ReverseProxy path sends), for IPv4, IPv6 and unparsable
// peers and hosts that need quoting or are empty, whether the client IP
// is parsed from RemoteAddr or was noted once for the connection (the
// Exchange's Peer and PeerIP, as the gateway notes them).
func TestLeanForwardingFieldsInPlace(t *testing.T) {
	u, _ := leanUpstream(t, nil, nil)
	for _, remote := range []string{"192.0.2.1:1234", "[2001:db8::1]:443", "[::ffff:192.0.2.9]:1", "[fe80::1%eth0]:1", "@unix"} {
		for _, host := range []string{"gw.example", "gw.example:8443", "[2001:db8::2]:8443", `a"b\c`, "caf\xc3\xa9", ""} {
			for _, noted := range []bool{false, true} {
				in := httptest.NewRequest("GET", "https://gw.example/x", nil)
				in.Host, in.RemoteAddr = host, remote
				lr := leanRequest{u: u, in: in}
				if noted {
					x := &policy.Exchange{Remote: remote, Peer: peerAddr(remote)}
					if x.Peer.IsValid() {
						x.PeerIP = x.Peer.String()
					}
					in = in.WithContext(policy.WithExchange(in.Context(), x))
					lr.in = in
				}
				lr.peer, lr.peerIP = peerOf(in)
				if noted && lr.peer.IsValid() && lr.peerIP == "" {
					t.Fatalf("%s: the noted peer was not used", remote)
				}
				if lr.trusted = u.isTrusted(lr.peer); lr.trusted {
					t.Fatalf("%s is trusted", remote)
				}
				var out strings.Builder
				bw := bufio.NewWriter(&out)
				if err := lr.writeTo(bw); err != nil {
					t.Fatal(err)
				}
				sent, err := http.ReadRequest(bufio.NewReader(strings.NewReader(out.String())))
				if err != nil {
					t.Fatalf("%s %q: %v in %q", remote, host, err, out.String())
				}
				var want [4]string
				forwardedValues(&want, in.Header, false, lr.peer, host)
				for i, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
					vv, ok := sent.Header[k]
					if want[i] == "" { // no peer, or an empty Host: the field is left out, as setForwarded does
						if ok {
							t.Errorf("%s %q: %s %q sent, want none", remote, host, k, vv)
						}
						continue
					}
					if len(vv) != 1 || vv[0] != strings.TrimSpace(want[i]) {
						t.Errorf("%s %q (noted %v): %s %q, want %q", remote, host, noted, k, vv, want[i])
					}
				}
			}
		}
	}
}

// TestFieldInjectionNeverReachesUpstream: a request field whose name or
// value holds CR/LF (set by a policy, say; clients cannot send one) never
// takes the lean path, whose writer copies fields as they are, and no
// path splits it into a second field or request upstream.
func TestFieldInjectionNeverReachesUpstream(t *testing.T) {
	var injected atomic.Int32
	u, _ := leanUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Injected") != "" || r.URL.Path == "/smuggled" {
			injected.Add(1)
		}
	}, nil)
	for _, tt := range []struct{ name, key, value, host string }{
		{"CRLF in a value", "X-Note", "a\r\nX-Injected: 1", ""},
		{"LF in a value", "X-Note", "a\nX-Injected: 1", ""},
		{"CRLF in a name", "X-Note\r\nX-Injected", "1", ""},
		{"a request in a value", "X-Note", "a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"CRLF in Host", "X-Note", "ok", "gw.example\r\nX-Injected: 1"},
	} {
		r := newEnv().request("GET", "https://gw.example/x", "192.0.2.1:1234")
		r.Header[tt.key] = []string{tt.value}
		if tt.host != "" {
			r.Host = tt.host
		}
		var lr leanRequest
		if u.leanEligible(r, &lr) {
			t.Errorf("%s: eligible for the lean path", tt.name)
		}
		rec := httptest.NewRecorder()
		u.ServeHTTP(rec, r)
		if rec.Code == http.StatusOK {
			t.Errorf("%s: forwarded: %d", tt.name, rec.Code)
		}
	}
	if n := injected.Load(); n != 0 {
		t.Fatalf("the upstream saw %d injected fields or requests", n)
	}
}
