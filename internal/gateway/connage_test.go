package gateway

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"
)

// TestMaxConnectionAgeThroughTheGateway: with max_connection_age, a client
// keeps using its connection while it is young and is refused (401
// connection_too_old, connection closed) once it is older, over HTTP/1.1
// and HTTP/2; a new connection works again. The gateway records each
// connection's start on its own clock.
func TestMaxConnectionAgeThroughTheGateway(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http/1.1", true: "h2"}[h2], func(t *testing.T) {
			t0 := time.Now()
			e := newEnvWith(t, map[string]any{"MaxConnectionAge": "1h"}, func(e *env) { e.clock.Store(&t0) })
			c := e.clientWith(e.clientCert, h2)
			var reused bool
			get := func() *http.Response {
				t.Helper()
				req, _ := http.NewRequest("GET", e.httpsURL("/secure/age"), nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == 200 { // read to the end, so the connection can be reused
					_, _ = io.Copy(io.Discard, resp.Body)
				}
				return resp
			}
			if resp := get(); resp.StatusCode != 200 {
				t.Fatalf("young connection: %d", resp.StatusCode)
			} else {
				resp.Body.Close()
			}
			later := t0.Add(59 * time.Minute)
			e.clock.Store(&later)
			if resp := get(); resp.StatusCode != 200 || !reused {
				t.Fatalf("59 minutes old: %d (reused %v)", resp.StatusCode, reused)
			} else {
				resp.Body.Close()
			}
			old := t0.Add(61 * time.Minute)
			e.clock.Store(&old)
			resp := get()
			if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "connection_too_old" || !reused {
				t.Fatalf("61 minutes old: %d %s (reused %v)", resp.StatusCode, p.Reason, reused)
			}
			if resp := get(); resp.StatusCode != 200 || reused {
				t.Fatalf("a new connection: %d (reused %v)", resp.StatusCode, reused)
			} else {
				resp.Body.Close()
			}
		})
	}
}
