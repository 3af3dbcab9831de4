package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

func TestCertExpiryIsComputedAtScrape(t *testing.T) {
	m := New()
	ca := pkitest.NewRootCA(t, "Metrics CA", pkitest.Options{})
	leaf := ca.Issue(t, pkitest.Options{DNSNames: []string{"m.example"}, NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	m.Certs.now = func() time.Time { return time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC) }
	m.Certs.Set([]CertInfo{CertInfoOf("server", "", leaf.Cert), CertInfoOf("server", "", leaf.Cert)})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	want := `warden_certificate_expiry_seconds{name="m.example",serial="` + leaf.Cert.SerialNumber.Text(16) + `",use="server"} 86400`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %s:\n%s", want, body)
	}
	if strings.Count(string(body), "warden_certificate_expiry_seconds{") != 1 {
		t.Error("a certificate listed twice is exported twice")
	}
}
