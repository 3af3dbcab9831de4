package gateway

import (
	"context"
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
		load     loadProgress
		failed   atomic.Int64
		mu       sync.Mutex
		failures []string
		stop     = make(chan struct{})
		wg       sync.WaitGroup
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
				load.served(echo.Header.Get("X-Policy"))
			}
		}()
	}
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
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

	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), failed.Load()+load.ok(), failures[0])
	}
	if !load.seen("one") {
		t.Error("no request was served by the first config")
	}
	t.Logf("%d requests, 0 failed, across 2 reloads and 2 refused ones", load.ok())
}

// loadProgress records the requests load workers got served and wakes the
// test when a milestone is reached, so that it waits on events, not time.
type loadProgress struct {
	mu      sync.Mutex
	n       int64
	policy  map[string]bool // X-Policy values the upstream saw
	waiters []loadWaiter
}

type loadWaiter struct {
	cond func() bool // called with mu held
	ch   chan struct{}
}

// served records one request served with the given X-Policy value.
func (p *loadProgress) served(policy string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.policy == nil {
		p.policy = map[string]bool{}
	}
	p.policy[policy] = true
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.cond() {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	p.waiters = kept
}

// when returns a channel closed once cond (evaluated with mu held) holds.
func (p *loadProgress) when(cond func() bool) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	if cond() {
		close(ch)
	} else {
		p.waiters = append(p.waiters, loadWaiter{cond, ch})
	}
	return ch
}

// whenOK: closed once more than n requests have been served.
func (p *loadProgress) whenOK(n int64) <-chan struct{} {
	return p.when(func() bool { return p.n > n })
}

// whenSeen: closed once a request has been served with X-Policy value
// (since the last forget of it).
func (p *loadProgress) whenSeen(value string) <-chan struct{} {
	return p.when(func() bool { return p.policy[value] })
}

func (p *loadProgress) forget(value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.policy, value)
}

func (p *loadProgress) seen(value string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.policy[value]
}

func (p *loadProgress) ok() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
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
