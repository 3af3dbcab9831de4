package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// maxLoadPerClient bounds the requests of each load client, whatever
// happens (a test that never stops its load still ends).
const maxLoadPerClient = 20000

// loadRun is a bounded load: one worker per client sending GETs until
// stopped, each response checked (status 200, an upstream echo), failures
// collected and successes recorded in progress.
type loadRun struct {
	progress loadProgress

	stopCh   chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
}

// startLoad starts one worker per client; worker i's n-th request goes to
// url(i, n). Stop it with finish.
func startLoad(clients []*http.Client, url func(client, n int) string) *loadRun {
	l := &loadRun{stopCh: make(chan struct{})}
	for i, c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := range maxLoadPerClient {
				select {
				case <-l.stopCh:
					return
				default:
				}
				echo, err := loadGet(c, url(i, n))
				if err != nil {
					l.mu.Lock()
					l.failures = append(l.failures, err.Error())
					l.mu.Unlock()
					continue
				}
				l.progress.served(echo.Header.Get("X-Policy"))
			}
		}()
	}
	return l
}

// loadGet sends one request and checks that the upstream answered it.
func loadGet(c *http.Client, url string) (upstreamEcho, error) {
	var echo upstreamEcho
	resp, err := c.Get(url)
	if err != nil {
		return echo, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&echo)
	if resp.StatusCode != 200 {
		return echo, fmt.Errorf("status %d (%v)", resp.StatusCode, err)
	}
	return echo, err
}

// finish stops the workers, waits for them, and fails the test if any
// request failed while the load ran (during says what was going on).
func (l *loadRun) finish(t *testing.T, during string) {
	t.Helper()
	close(l.stopCh)
	l.wg.Wait()
	if n := len(l.failures); n != 0 {
		t.Fatalf("%d of %d requests failed during %s; first: %s", n, int64(n)+l.progress.ok(), during, l.failures[0])
	}
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

// waitFor waits until ch is closed, at most d.
func waitFor(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// rotationClients returns the three clients of a certificate-rotation
// load, all verifying with base: kept-alive HTTP/1.1, kept-alive HTTP/2,
// and a new connection per request whose served serials seen records.
func rotationClients(t *testing.T, base *tls.Config, seen *serialTracker) []*http.Client {
	newClient := func(h2, keepAlive bool) *http.Client {
		cfg := base.Clone()
		if !keepAlive {
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				seen.add(serialOf(cs.PeerCertificates[0]))
				return nil
			}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DisableKeepAlives: !keepAlive}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	return []*http.Client{newClient(false, true), newClient(true, true), newClient(false, false)}
}

// serialTracker records the certificate serials a client was served.
type serialTracker struct {
	mu      sync.Mutex
	serials map[string]bool
	waiters map[string][]chan struct{}
}

func (s *serialTracker) add(serial string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serials == nil {
		s.serials = map[string]bool{}
	}
	s.serials[serial] = true
	for _, ch := range s.waiters[serial] {
		close(ch)
	}
	delete(s.waiters, serial)
}

// when returns a channel closed once serial has been seen.
func (s *serialTracker) when(serial string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.serials[serial] {
		close(ch)
		return ch
	}
	if s.waiters == nil {
		s.waiters = map[string][]chan struct{}{}
	}
	s.waiters[serial] = append(s.waiters[serial], ch)
	return ch
}

func (s *serialTracker) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.serials)
}
