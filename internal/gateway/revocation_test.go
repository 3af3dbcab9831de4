package gateway

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
)

// TestRevocationThroughTheGateway: a client certificate with an OCSP
// responder is admitted while good; once revoked (and the cached answer
// expires within the refresh bound), the same kept-alive connection is
// refused at its next request and closed. A responder that is down makes
// hard_fail refuse.
func TestRevocationThroughTheGateway(t *testing.T) {
	e := newEnv(t, map[string]any{"Revocation": "hard_fail"})
	now := time.Now()
	e.clock.Store(&now)
	resp := revocationtest.NewResponder(t, e.ca)
	resp.SetClock(e.now)
	leaf := e.ca.Issue(t, pkitest.Options{CommonName: "client-a", OCSPServer: []string{resp.URL},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	c := e.clientWith(leaf, false)
	var reused bool
	get := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.httpsURL("/secure/x"), nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := get()
	io.Copy(io.Discard, first.Body)
	first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("good certificate: %d", first.StatusCode)
	}
	second := get() // cached: the responder is not asked again
	io.Copy(io.Discard, second.Body)
	second.Body.Close()
	if second.StatusCode != 200 || resp.Hits() != 1 {
		t.Fatalf("second request: %d, responder hits %d", second.StatusCode, resp.Hits())
	}

	resp.Revoke(leaf.Cert.SerialNumber, 1 /* keyCompromise */, now)
	later := now.Add(6 * time.Minute) // past the 5m refresh bound
	e.clock.Store(&later)
	r := get()
	if p := readProblem(t, r); r.StatusCode != 401 || p.Reason != "revoked" || !r.Close || !reused {
		t.Fatalf("after revocation: %d %s close=%v on the kept-alive connection=%v", r.StatusCode, p.Reason, r.Close, reused)
	}
	ev := e.waitEvent(func(ev audit.Event) bool { return ev.Type == "client_cert_rejected" && ev.Reason == "revoked" })
	if ev.Fields["revocation_reason_text"] != "keyCompromise" {
		t.Errorf("event %+v", ev)
	}

	// Responder down: hard_fail refuses a certificate it has not seen.
	resp.Close()
	other := e.ca.Issue(t, pkitest.Options{CommonName: "client-b", OCSPServer: []string{resp.URL},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	r2, err := e.clientWith(other, false).Get(e.httpsURL("/secure/x"))
	if err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, r2); r2.StatusCode != 401 || p.Reason != "revocation_unavailable" {
		t.Fatalf("responder down: %d %s", r2.StatusCode, p.Reason)
	}
	e.waitEvent(audit.OfType("revocation_source_unavailable"))
}
