package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		failures   []string
		policySeen sync.Map // X-Policy values the upstream saw
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	clients := []*http.Client{e.clientWith(nil, false), e.clientWith(nil, true), e.clientWith(nil, false)}
	clients[2].Transport.(*http.Transport).DisableKeepAlives = true
	const maxPerWorker = 20000 // bounded, whatever happens
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < maxPerWorker; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(e.httpsURL(fmt.Sprintf("/public/load/%d/%d", i, n)))
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				var echo upstreamEcho
				err = json.NewDecoder(resp.Body).Decode(&echo)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("status %d %v", resp.StatusCode, err))
					mu.Unlock()
					continue
				}
				policySeen.Store(echo.Header.Get("X-Policy"), true)
				ok.Add(1)
			}
		}()
	}
	waitFor := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			runtimeGosched()
		}
	}
	waitFor(func() bool { return ok.Load() > 50 }, "load to start")

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
	waitFor(func() bool { _, seen := policySeen.Load("two"); return seen }, "the new policy value at the upstream")
	atTwo := ok.Load()
	waitFor(func() bool { return ok.Load() > atTwo+50 }, "more load")

	// 3. A broken replacement is refused; the running config keeps serving.
	failsBefore := countEvents(e.sink, "config_reload_failed")
	writeAtomic(t, e.cfgPath, strings.Replace(renderedConfig(t, e), "path_prefix: /ro/", "path_prefx: /ro/", 1))
	ev := e.waitEvent(nth("config_reload_failed", failsBefore+1))
	if !strings.Contains(ev.Detail, "path_prefx") || ev.Severity != audit.Critical {
		t.Errorf("reload failure event: %+v", ev)
	}
	policySeen.Delete("two")
	waitFor(func() bool { _, seen := policySeen.Load("two"); return seen }, "requests served by the old config after a refused reload")
	// SIGHUP takes the same path: still refused.
	if err := e.g.Reload("sighup"); err == nil {
		t.Fatal("reload of a broken config succeeded")
	}

	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), failures[0])
	}
	if _, seen := policySeen.Load("one"); !seen {
		t.Error("no request was served by the first config")
	}
	t.Logf("%d requests, 0 failed, across 2 reloads and 2 refused ones", ok.Load())
}

func renderedConfig(t *testing.T, e *env) string {
	t.Helper()
	data, err := readFile(filepath.Join(e.dir, "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
