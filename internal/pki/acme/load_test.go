package acme_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestRotationUnderLoad renews the certificate through Pebble several times
// while clients keep sending requests to a real tlsserver listener: two
// over keep-alive connections, two with a new connection (and handshake)
// per request. No request may fail, and the per-connection clients must
// see every new certificate.
func TestRotationUnderLoad(t *testing.T) {
	const (
		renewals    = 3
		maxRequests = 5000 // per client
		keepAlive   = 2
		perConn     = 2
	)
	name := "app." + testDomain
	g := listen(t)
	p := startPebble(t, port(g.httpLn), port(g.tlsLn), 0)
	g.serve(t, g.config(t, p, name))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	roots := p.IssuingRoots()
	url := "https://" + g.tlsLn.Addr().String() + "/"

	type sighting struct {
		client int
		serial string
	}
	seen := make(chan sighting, (keepAlive+perConn)*(renewals+2))
	stop := make(chan struct{})
	type result struct {
		ok, failed int
		firstErr   error
		serials    map[string]bool
	}
	results := make([]result, keepAlive+perConn)
	var wg sync.WaitGroup
	for i := range results {
		fresh := i >= keepAlive
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: name}, // no session cache: full handshakes
			DisableKeepAlives: fresh,
			MaxConnsPerHost:   1,
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			r := &results[i]
			r.serials = map[string]bool{}
			for range maxRequests {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				serial, err := get(client, url)
				if err != nil {
					r.failed++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				r.ok++
				if !r.serials[serial] {
					r.serials[serial] = true
					seen <- sighting{i, serial}
				}
			}
		}()
	}

	// waitAll waits until each of clients has seen serial.
	waitAll := func(serial string, clients ...int) {
		t.Helper()
		pending := map[int]bool{}
		for _, c := range clients {
			pending[c] = true
		}
		for len(pending) > 0 {
			select {
			case s := <-seen:
				if s.serial == serial {
					delete(pending, s.client)
				}
			case <-ctx.Done():
				t.Fatalf("clients %v never saw certificate %s", pending, serial)
			}
		}
	}
	current := func() string {
		c, ok := g.m.Certificate(name)
		if !ok {
			t.Fatal("no current certificate")
		}
		return c.Leaf.SerialNumber.Text(16)
	}
	all := []int{0, 1, 2, 3}
	waitAll(current(), all...) // the load is running
	for range renewals {
		t0 := time.Now()
		if err := g.m.RenewNow(ctx); err != nil {
			t.Fatalf("RenewNow: %v", err)
		}
		t.Logf("renewed in %v", time.Since(t0))
		waitAll(current(), all[keepAlive:]...)
	}
	close(stop)
	wg.Wait()

	for i, r := range results {
		kind := "keep-alive"
		if i >= keepAlive {
			kind = "new connection per request"
		}
		t.Logf("client %d (%s): %d requests, %d failed, %d certificates seen", i, kind, r.ok+r.failed, r.failed, len(r.serials))
		if r.failed > 0 {
			t.Errorf("client %d (%s): %d failed requests, first: %v", i, kind, r.failed, r.firstErr)
		}
		if i >= keepAlive && len(r.serials) != renewals+1 {
			t.Errorf("client %d saw %d certificates, want %d", i, len(r.serials), renewals+1)
		}
	}
	if got := p.Orders(); got != renewals+1 {
		t.Errorf("orders = %d, want %d", got, renewals+1)
	}
}

// get does one request and returns the serial of the certificate the
// connection was made with.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return "", fmt.Errorf("status %d, body %q", resp.StatusCode, body)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Text(16), nil
}
