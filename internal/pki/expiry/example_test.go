package expiry_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/expiry"
)

// The gateway hands the Watcher the certificates it uses at start and on
// every reload, and runs it; here the clock is moved by hand.
func ExampleWatcher() {
	notAfter := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	now := notAfter.Add(-40 * expiry.Day)
	sink := audit.NewMemorySink()
	w, err := expiry.New(expiry.Config{Audit: audit.New(sink), Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	w.SetCertificates([]expiry.Cert{{Use: "server", Name: "api.example.com", Serial: "1f", NotAfter: notAfter}})
	for _, left := range []time.Duration{40, 30, 29, 14, 7, 1, 0} {
		now = notAfter.Add(-left * expiry.Day)
		_ = w.Check(context.Background())
	}
	for _, e := range sink.Events() {
		fmt.Println(e.Type, e.Severity, e.Fields["threshold"])
	}
	// Output:
	// certificate_expiring warning 30d
	// certificate_expiring warning 14d
	// certificate_expiring critical 7d
	// certificate_expiring critical 1d
	// certificate_expired critical expired
}
