package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/acme/acmetest"
)

// TestACMEThroughTheGateway: a gateway whose certificate for
// api.warden.test comes from an ACME CA (Pebble, in process, validating
// the challenges against the gateway's own listeners) obtains it in the
// background after start, serves it, and renews it while three clients
// send requests, with zero failures; the new-connection client sees each
// certificate. The plain-HTTP listener answers only pending challenges.
func TestACMEThroughTheGateway(t *testing.T) {
	const name = "api." + acmetest.Domain
	pebble := acmetest.New(t, 0)
	e := newEnvWith(t, map[string]any{
		"ServerCerts": "    - cert_file: server.pem\n      key_file: server-key.pem\n    - acme:\n        names: [" + name + "]",
		"ExtraYAML": "acme:\n  directory_url: " + pebble.Directory() + "\n  email: ops@example.org\n  agree_terms: true\n" +
			"  ca_file: acme-ca.pem\n  storage: acme\n",
	}, func(e *env) {
		if err := os.WriteFile(filepath.Join(e.dir, "acme-ca.pem"), pebble.DirectoryRoots(), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	httpsAddr, plainAddr, _ := e.g.Addrs()
	httpsPort, plainPort := httpsAddr.(*net.TCPAddr).Port, plainAddr.(*net.TCPAddr).Port

	// Before the CA can be reached, the gateway serves its file certificate
	// and no ACME challenge is answered.
	if resp, err := e.client().Get(e.httpsURL("/public/x")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("file certificate while ACME is pending: %v %v", resp, err)
	}
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/acme-challenge/forged-token", plainPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown challenge token: %d, want 404", resp.StatusCode)
	}

	applied := func(n int) audit.Event {
		t.Helper()
		var seen atomic.Int64
		return e.waitEvent(func(ev audit.Event) bool {
			return ev.Type == EventACMEApplied && seen.Add(1) == int64(n)
		})
	}
	pebble.Validate(plainPort, httpsPort)
	applied(1)
	if got := pebble.Orders(); got != 1 {
		t.Fatalf("%d orders, want 1", got)
	}

	var (
		seen    serialTracker
		current atomic.Value // serial of the certificate last applied
	)
	run := startLoad(rotationClients(t, &tls.Config{RootCAs: pebble.IssuingRoots(), ServerName: name}, &seen), func(i, n int) string {
		return fmt.Sprintf("https://127.0.0.1:%d/public/acme/%d/%d", httpsPort, i, n)
	})
	load := &run.progress
	wait := func(ch <-chan struct{}, what string) { t.Helper(); waitFor(t, ch, 20*time.Second, what) }
	wait(load.whenOK(50), "load to start")
	const renewals = 2
	for i := range renewals {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.g.acme.Load().m.RenewNow(ctx); err != nil {
			cancel()
			t.Fatalf("renewal %d: %v", i+1, err)
		}
		cancel()
		ev := applied(i + 2)
		serials, _ := ev.Fields["serials"].([]string)
		if len(serials) != 1 || serials[0] == current.Load() {
			t.Fatalf("renewal %d applied %v", i+1, serials)
		}
		current.Store(serials[0])
		wait(seen.when(serials[0]), "the new-connection client to get the renewed certificate")
		wait(load.whenOK(load.ok()+50), "more load")
	}
	run.finish(t, "ACME renewals")
	if n := seen.count(); n < renewals {
		t.Fatalf("the new-connection client saw %d certificates, want at least %d", n, renewals)
	}
	if got := pebble.Orders(); got != 1+renewals {
		t.Fatalf("%d orders, want %d", got, 1+renewals)
	}

	// The plain-HTTP listener redirects for the ACME name now that a
	// certificate covers it.
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/public/x", plainPort), nil)
	req.Host = name
	if resp, err = plain.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("redirect for the ACME name: %d", resp.StatusCode)
	}
}
