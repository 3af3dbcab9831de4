package gateway

import (
	"io"
	"net/http"
	"testing"

	"github.com/wardengw/warden/internal/audit"
)

// TestAdminAPI: the admin API answers only clients with a certificate
// from the admin CA; without admin CAs configured it is off.
func TestAdminAPI(t *testing.T) {
	e := newEnv(t, map[string]any{"AdminCA": true})
	e.g.Admin().Handle("GET /api/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "pong")
	}))
	_, _, admin := e.g.Addrs()
	url := "https://" + admin.String() + "/api/ping"

	resp, err := e.client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "admin_client_certificate_required" {
		t.Fatalf("without a certificate: %d %s", resp.StatusCode, p.Reason)
	}
	e.waitEvent(audit.OfType("admin_api_refused"))
	other := newEnv(t, nil).clientCert // another CA
	resp, err = e.clientWith(other, false).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body.Close(); resp.StatusCode != 401 {
		t.Fatalf("certificate from another CA: %d", resp.StatusCode)
	}
	resp, err = e.clientWith(e.clientCert, false).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "pong" {
		t.Fatalf("admin client: %d %q", resp.StatusCode, body)
	}
	e.waitEvent(audit.OfType("admin_api_call"))
	// Metrics stay readable without a client certificate.
	resp, err = e.client().Get("https://" + admin.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body.Close(); resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}

	off := newEnv(t, nil)
	_, _, admin = off.g.Addrs()
	resp, err = off.clientWith(off.clientCert, false).Get("https://" + admin.String() + "/api/ping")
	if err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, resp); resp.StatusCode != 404 || p.Reason != "admin_api_disabled" {
		t.Fatalf("admin API without CAs: %d %s", resp.StatusCode, p.Reason)
	}
}

// TestAdminAPIRefusesRevokedCertificate: an admin client certificate on
// the CRL is refused.
func TestAdminAPIRefusesRevokedCertificate(t *testing.T) {
	e := newEnvWith(t, map[string]any{"AdminCA": true, "CRL": true}, func(e *env) { writeCRL(t, e, 0, e.clientCert.Cert.SerialNumber) })
	e.g.Admin().Handle("GET /api/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	_, _, admin := e.g.Addrs()
	resp, err := e.clientWith(e.clientCert, false).Get("https://" + admin.String() + "/api/ping")
	if err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "admin_client_certificate_required" {
		t.Fatalf("revoked admin certificate: %d %s", resp.StatusCode, p.Reason)
	}
}
