package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// TestCAAdminAPIIssue: the CA admin API issues from a CSR only to admin
// clients, with ca.Issue's checks; every bad request is a 400 (413 for an
// oversized body) with a precise reason, and nothing is recorded.
func TestCAAdminAPIIssue(t *testing.T) {
	c := newCAEnv(t)
	adm := c.adminClient(t)
	_, good := newCSR(t, "svc-c")
	_, outside := newCSR(t, "svc-d", "api.evil.example")
	_, server := newCSR(t, "api", "api.internal.test")

	// Not admins: a client certificate of another CA, and one of the
	// internal CA (the admin CAs here are the test CA only).
	other := pkitest.NewRootCA(t, "Other CA", pkitest.Options{}).Issue(t, pkitest.Options{CommonName: "client-a",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	internal, key := c.issueCLI(t, "svc-x")
	for name, cl := range map[string]*http.Client{
		"no certificate":              c.client(),
		"another CA's certificate":    c.clientWith(other, false),
		"the internal CA's, no admin": c.keptAliveClient(t, [][]byte{internal.Raw, c.inter.Raw}, key, c.ca.Pool()).c,
	} {
		nonAdmin := &adminAPI{c: cl, base: adm.base}
		resp := nonAdmin.post(t, "/api/ca/certificates?profile=client", "application/pkcs10", good)
		if p := readProblem(t, resp); resp.StatusCode != 401 || p.Reason != "admin_client_certificate_required" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, p.Reason)
		}
	}

	for _, bad := range []struct {
		name, query string
		body        []byte
		status      int
		reason      string
	}{
		{"no profile", "", good, 400, "bad_request"},
		{"unknown profile", "?profile=ca", good, 400, "bad_request"},
		{"lifetime over the profile's", "?profile=client&lifetime=25h", good, 400, "bad_request"},
		{"negative lifetime", "?profile=client&lifetime=-1h", good, 400, "bad_request"},
		{"unparsable lifetime", "?profile=client&lifetime=1d", good, 400, "bad_request"},
		{"unknown parameter", "?profile=client&ca=true", good, 400, "bad_request"},
		{"repeated parameter", "?profile=client&profile=server", good, 400, "bad_request"},
		{"empty body", "?profile=client", nil, 400, "bad_request"},
		{"not a CSR", "?profile=client", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 400, "csr_invalid"},
		{"garbage", "?profile=client", []byte("hello"), 400, "csr_invalid"},
		{"name outside the CA's constraints", "?profile=client", outside, 400, "names_not_allowed"},
		{"server certificate without a DNS name", "?profile=server", good, 400, "csr_invalid"},
		{"oversized body", "?profile=client", bytes.Repeat([]byte("A"), ca.MaxCSRBytes+1), 413, "body_too_large"},
	} {
		resp := adm.post(t, "/api/ca/certificates"+bad.query, "application/pkcs10", bad.body)
		if p := readProblem(t, resp); resp.StatusCode != bad.status || p.Reason != bad.reason {
			t.Errorf("%s: %d %s, want %d %s", bad.name, resp.StatusCode, p.Reason, bad.status, bad.reason)
		}
	}
	recs, err := c.cli.ListIssued(context.Background(), ca.IssuerID(c.inter), 0)
	if err != nil || len(recs) != 1 || recs[0].Subject != "CN=svc-x" { // the CLI's, only
		t.Fatalf("recorded after refusals: %d records, %v", len(recs), err)
	}
	c.waitEvent(func(e audit.Event) bool { return e.Type == "ca_admin_refused" && e.Reason == "names_not_allowed" })

	resp := adm.post(t, "/api/ca/certificates?profile=server", "application/pkcs10", server)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("server certificate: %d %s", resp.StatusCode, body)
	}
	cert, err := x509.ParseCertificate(pemCerts(t, body)[0])
	if err != nil || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || cert.DNSNames[0] != "api.internal.test" {
		t.Fatalf("server certificate: %v %v", cert.ExtKeyUsage, err)
	}
	c.waitEvent(func(e audit.Event) bool {
		sans, _ := e.Fields["sans"].([]string)
		return e.Type == "ca_certificate_issued" && e.Fields["serial"] == ca.SerialString(cert.SerialNumber) &&
			e.Fields["by"] == c.clientCert.Cert.Subject.String() && len(sans) == 2 && sans[0] == "api.internal.test" && sans[1] == "spiffe://test.internal/svc/api"
	})
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?state=revoked"} {
		resp := adm.get(t, "/api/ca/certificates"+q)
		if p := readProblem(t, resp); resp.StatusCode != 400 || p.Reason != "bad_request" {
			t.Errorf("list%s: %d %s", q, resp.StatusCode, p.Reason)
		}
	}
}

// TestCAAdminAPITokens: a token made through the admin API enrolls a
// client once at the gateway; it is returned once and never audited; bad
// requests are refused and record nothing.
func TestCAAdminAPITokens(t *testing.T) {
	c := newCAEnv(t)
	adm := c.adminClient(t)
	for _, bad := range []string{
		`{}`, `{"consumer": "svc-e"}`, `{"consumer": "svc-e", "cn": "svc-e", "ttl": "800h"}`,
		`{"consumer": "svc-e", "cn": "svc-e", "ttl": "0s"}`, `{"consumer": "svc-e", "cn": "svc-e", "admin": true}`,
		`{"consumer": "svc-e", "uris": ["not a uri"]}`, `{"consumer": "svc-e", "cn": "svc-e"} {}`, `[]`,
	} {
		resp := adm.post(t, "/api/ca/tokens", "application/json", []byte(bad))
		if p := readProblem(t, resp); resp.StatusCode != 400 || p.Reason != "bad_request" {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, p.Reason)
		}
	}
	resp := adm.post(t, "/api/ca/tokens", "application/json", []byte(`{"consumer": "svc-e", "cn": "svc-e", "uris": ["spiffe://test.internal/svc/svc-e"], "ttl": "10m"}`))
	var out struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 || !strings.HasPrefix(out.Token, "wenr_") {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, out, err)
	}
	resp.Body.Close()
	c.waitEvent(func(e audit.Event) bool {
		return e.Type == "ca_enroll_token_created" && e.Fields["consumer"] == "svc-e"
	})
	for _, e := range c.sink.Events() {
		if strings.Contains(fmt.Sprint(e), out.Token) {
			t.Fatalf("token in the audit log: %+v", e)
		}
	}
	_, csr := newCSR(t, "svc-e")
	enroll := func() *http.Response {
		req, _ := http.NewRequest("POST", c.httpsURL("/.well-known/warden/pki/enroll"), bytes.NewReader(csr))
		req.Header.Set("Authorization", "Bearer "+out.Token)
		resp, err := c.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if code, body := status(t, enroll()); code != 200 {
		t.Fatalf("enroll with the admin API's token: %d %s", code, body)
	}
	if p := readProblem(t, enroll()); p.Reason != "token_used" {
		t.Fatalf("second use: %s", p.Reason)
	}
}
