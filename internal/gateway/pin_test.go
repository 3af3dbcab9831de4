package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// TestUpstreamPinning runs the pin check end to end: a config whose pins
// do not match the upstream's key is a MITM as far as the gateway can
// tell, and the request never reaches the upstream; with the upstream's key
// as the backup pin it goes through.
func TestUpstreamPinning(t *testing.T) {
	other := pki.SPKIPin(pkitest.SelfSigned(t, pkitest.Options{DNSNames: []string{"x"}}).Cert).String()
	e := newEnv(t, map[string]any{"Pins": fmt.Sprintf("[%q, %q]", other, other)})
	resp, err := e.client().Get(e.httpsURL("/public/x"))
	if err != nil {
		t.Fatal(err)
	}
	p := readProblem(t, resp)
	if resp.StatusCode != http.StatusBadGateway || p.Reason != "upstream_pin_mismatch" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("%d %s", resp.StatusCode, p.Reason)
	}
	ev := e.waitEvent(audit.OfType("upstream_pin_mismatch"))
	presented := fmt.Sprint(ev.Fields["presented_pins"])
	if want := pki.SPKIPin(e.upstreamCert.Cert).String(); ev.Severity != audit.Critical || !strings.Contains(presented, want) {
		t.Fatalf("event %+v lacks the presented pin %s", ev, want)
	}
	if e.hits.Load() != 0 {
		t.Fatal("the upstream received the request")
	}

	// Rotate the config to list the upstream's real key as the backup pin.
	good := pki.SPKIPin(e.upstreamCert.Cert).String()
	e.writeConfig(map[string]any{"Pins": fmt.Sprintf("[%q, %q]", other, good)})
	if err := e.g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	resp, err = e.client().Get(e.httpsURL("/public/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || e.hits.Load() != 1 {
		t.Fatalf("with the backup pin: %d, upstream hits %d", resp.StatusCode, e.hits.Load())
	}
}
