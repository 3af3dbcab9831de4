package gateway

import (
	"testing"

	"github.com/wardengw/warden/internal/audit"
)

// TestExpiryWatchAtStart: the test PKI's certificates live 24 hours, so at
// start the gateway reports each one it uses or trusts as expiring within
// the 1-day threshold, once.
func TestExpiryWatchAtStart(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.waitEvent(audit.OfType("certificate_expiring"))
	if ev.Severity != audit.Critical {
		t.Errorf("a certificate 1 day from expiry: severity %s", ev.Severity)
	}
	seen := map[any]bool{}
	for _, x := range e.sink.Events() {
		if x.Type == "certificate_expiring" {
			if seen[x.Fields["serial"]] {
				t.Fatalf("certificate %v reported twice", x.Fields["serial"])
			}
			seen[x.Fields["serial"]] = true
		}
	}
}
