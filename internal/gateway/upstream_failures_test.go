package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/audit"
)

// rawAnswers replaces the env's upstream handler: a request for one of
// answers' paths gets those bytes, written on the hijacked connection as
// they are; the connection is closed if closeAfter is set, else held open until
// the test ends (only its bytes may decide). Other paths are served as
// before.
func (e *env) rawAnswers(t *testing.T, answers map[string]string, closeAfter map[string]bool) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) }) // before the upstream's Close: registered later
	up := e.upstream.Config.Handler
	e.upstream.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := answers[r.URL.Path]
		if !ok {
			up.ServeHTTP(w, r)
			return
		}
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = bw.WriteString(raw)
		_ = bw.Flush()
		if !closeAfter[r.URL.Path] {
			<-done
		}
	})
}

// upstreamErrors returns warden_upstream_errors_total for the env's
// upstream and reason, from the admin listener's /metrics.
func (e *env) upstreamErrors(reason string) string {
	e.t.Helper()
	for line := range strings.Lines(e.metrics()) {
		if strings.HasPrefix(line, "warden_upstream_errors_total{") && strings.Contains(line, `reason="`+reason+`"`) &&
			strings.Contains(line, `upstream="up"`) {
			return strings.TrimSpace(line[strings.LastIndexByte(line, ' ')+1:])
		}
	}
	return "0"
}

// TestUpstreamFailuresThroughGateway: through the whole gateway, with an
// HTTP/1.1 client (the lean forward path, or ReverseProxy with
// ReverseProxyOnly) and an HTTP/2 client (ReverseProxy), an upstream that
// answers with a malformed response gets the client a 502
// upstream_protocol_error problem carrying nothing of that answer, nor of
// the response smuggled behind it; one that closes the connection without
// answering, 502 upstream_connection_closed; each with an audit event with
// the reason and the cause, and counted. A malformed chunk after the status
// line cuts the response off: the client never sees it end, and the
// failure is audited as the body's.
func TestUpstreamFailuresThroughGateway(t *testing.T) {
	const smuggled = "HTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nContent-Length: 8\r\n\r\nsmuggled"
	for _, rpxOnly := range []bool{false, true} {
		e := newEnv(t, map[string]any{"ReverseProxyOnly": rpxOnly})
		e.rawAnswers(t, map[string]string{
			"/public/malformed": "HTTP/1.1 2OO OK\r\nX-Leak: upstream\r\nContent-Length: 4\r\n\r\nevil" + smuggled,
			"/public/closed":    "",
			"/public/chunk":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
		}, map[string]bool{"/public/closed": true})
		for _, h2 := range []bool{false, true} {
			name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
			if rpxOnly {
				name += ", ReverseProxyOnly"
			}
			c := e.clientWith(nil, h2)
			for _, tt := range []struct{ path, reason string }{
				{"/public/malformed", "upstream_protocol_error"},
				{"/public/closed", "upstream_connection_closed"},
			} {
				resp, err := c.Get(e.httpsURL(tt.path))
				if err != nil {
					t.Fatalf("%s %s: %v", name, tt.path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var p problem
				_ = json.Unmarshal(body, &p)
				if resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] || resp.StatusCode != http.StatusBadGateway ||
					resp.Header.Get("Content-Type") != "application/problem+json" || p.Reason != tt.reason || p.RequestID == "" {
					t.Fatalf("%s %s: HTTP/%d %d %v %s, want 502 %s", name, tt.path, resp.ProtoMajor, resp.StatusCode, resp.Header, body, tt.reason)
				}
				if resp.Header.Get("X-Leak") != "" || resp.Header.Get("X-Smuggled") != "" ||
					strings.Contains(string(body), "evil") || strings.Contains(string(body), "smuggled") {
					t.Fatalf("%s %s: the upstream's answer reached the client: %v %s", name, tt.path, resp.Header, body)
				}
				ev := e.waitEvent(func(ev audit.Event) bool { return ev.RequestID == p.RequestID && ev.Type == tt.reason })
				line, _ := json.Marshal(ev)
				if cause, _ := ev.Fields["cause"].(string); ev.Reason != tt.reason || ev.Status != http.StatusBadGateway || cause == "" ||
					ev.Route != "public" || ev.Fields["upstream"] != "up" || !strings.Contains(string(line), `"cause":`) {
					t.Fatalf("%s %s: audit event %s", name, tt.path, line)
				}
			}

			resp, err := c.Get(e.httpsURL("/public/chunk"))
			if err != nil {
				t.Fatalf("%s chunk: %v", name, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err == nil || strings.Contains(string(body), "world") {
				t.Fatalf("%s chunk: %d %q, read error %v: want a 200 cut off", name, resp.StatusCode, body, err)
			}
			id := resp.Header.Get("X-Request-Id")
			ev := e.waitEvent(func(ev audit.Event) bool { return ev.RequestID == id && ev.Type == "upstream_protocol_error" })
			if cause, _ := ev.Fields["cause"].(string); ev.Fields["phase"] != "body" || ev.Status != http.StatusOK || cause == "" {
				t.Fatalf("%s chunk: audit event %+v", name, ev)
			}
		}
		if n := e.upstreamErrors("upstream_protocol_error"); n != "4" { // two clients: a malformed answer and a malformed chunk each
			t.Fatalf("ReverseProxyOnly %v: warden_upstream_errors_total{reason=upstream_protocol_error} = %s, want 4", rpxOnly, n)
		}
		if n := e.upstreamErrors("upstream_connection_closed"); n != "2" {
			t.Fatalf("ReverseProxyOnly %v: warden_upstream_errors_total{reason=upstream_connection_closed} = %s, want 2", rpxOnly, n)
		}
		if n := e.upstreamErrors("upstream_unavailable"); n != "0" {
			t.Fatalf("ReverseProxyOnly %v: warden_upstream_errors_total{reason=upstream_unavailable} = %s, want 0", rpxOnly, n)
		}
	}
}
