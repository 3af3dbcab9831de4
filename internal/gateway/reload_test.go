package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// nth returns a matcher for the n-th event of a type (counting from the
// first event ever recorded).
func nth(typ string, n int) func(audit.Event) bool {
	seen := 0
	return func(e audit.Event) bool {
		if e.Type == typ {
			seen++
		}
		return seen == n
	}
}

func countEvents(s *audit.MemorySink, typ string) int {
	n := 0
	for _, e := range s.Events() {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestHotReloadUnderLoad replaces the server certificate and the config
// while clients keep sending requests, over kept-alive HTTP/1.1 and HTTP/2
// connections and over a new connection per request. No request may fail.
// A broken replacement is then refused and the old config keeps serving.
func TestHotReloadUnderLoad(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.g.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	clients := []*http.Client{e.clientWith(nil, false), e.clientWith(nil, true), e.clientWith(nil, false)}
	clients[2].Transport.(*http.Transport).DisableKeepAlives = true
	run := startLoad(clients, func(i, n int) string { return e.httpsURL(fmt.Sprintf("/public/load/%d/%d", i, n)) })
	load := &run.progress
	wait := func(ch <-chan struct{}, what string) { t.Helper(); waitFor(t, ch, 10*time.Second, what) }
	wait(load.whenOK(50), "load to start")

	// 1. Replace the certificate files, as a deploy tool would (atomic renames).
	newCert := e.ca.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	newCert.WriteFiles(t, e.dir, "server")
	e.waitEvent(nth("config_reloaded", 1))
	a, _, _ := e.g.Addrs()
	conn, err := tls.Dial("tcp", a.String(), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(newCert.Cert.SerialNumber) != 0 {
		t.Fatalf("new connections still get the old certificate")
	}
	conn.Close()

	// 2. Change the config: the header policy's value.
	reloadsBefore := countEvents(e.sink, "config_reloaded")
	e.writeConfig(map[string]any{"PolicyValue": "two"})
	e.waitEvent(nth("config_reloaded", reloadsBefore+1))
	wait(load.whenSeen("two"), "the new policy value at the upstream")
	wait(load.whenOK(load.ok()+50), "more load")

	// 3. A broken replacement is refused; the running config keeps serving.
	failsBefore := countEvents(e.sink, "config_reload_failed")
	writeAtomic(t, e.cfgPath, strings.Replace(renderedConfig(t, e), "path_prefix: /ro/", "path_prefx: /ro/", 1))
	ev := e.waitEvent(nth("config_reload_failed", failsBefore+1))
	if !strings.Contains(ev.Detail, "path_prefx") || ev.Severity != audit.Critical {
		t.Errorf("reload failure event: %+v", ev)
	}
	load.forget("two")
	wait(load.whenSeen("two"), "requests served by the old config after a refused reload")
	// SIGHUP takes the same path: still refused.
	if err := e.g.Reload("sighup"); err == nil {
		t.Fatal("reload of a broken config succeeded")
	}

	run.finish(t, "reloads")
	if !load.seen("one") {
		t.Error("no request was served by the first config")
	}
	t.Logf("%d requests, 0 failed, across 2 reloads and 2 refused ones", load.ok())
}

func renderedConfig(t *testing.T, e *env) string {
	t.Helper()
	data, err := readFile(filepath.Join(e.dir, "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestNoReloadAfterShutdown: once Shutdown has begun, a reload (SIGHUP, a
// file change) starts nothing: it could otherwise start background work
// that Shutdown no longer waits for.
func TestNoReloadAfterShutdown(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload("test"); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("reload after shutdown: %v", err)
	}
}
