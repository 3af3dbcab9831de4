package gateway

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCRL writes an empty-but-for-one-entry CRL of the env's CA, as
// revocation.crl_files would name it.
func writeCRL(t testing.TB, e *env, entries int, serials ...*big.Int) {
	t.Helper()
	var revoked []x509.RevocationListEntry
	for _, s := range serials {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	for i := range entries {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: big.NewInt(int64(1_000_000 + i)), RevocationTime: time.Now().Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: revoked,
	}, e.ca.Cert, e.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "crl.pem"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMTLSKeepAlive measures a kept-alive mTLS request through the
// whole gateway (TLS, routing, the mtls policy, the upstream hop), with
// revocation off and on (a 1000-entry CRL, cached), in the same run: the
// cost of revocation checking on the request path.
func BenchmarkMTLSKeepAlive(b *testing.B) {
	for _, mode := range []string{"off", "hard_fail"} {
		b.Run("revocation="+mode, func(b *testing.B) {
			e := newEnvWith(b, map[string]any{"Revocation": mode, "CRL": true}, func(e *env) { writeCRL(b, e, 1000) })
			c := e.clientWith(e.clientCert, false)
			url := e.httpsURL("/secure/bench")
			get := func() {
				resp, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			get() // handshake and verification cache warm
			b.ResetTimer()
			for b.Loop() {
				get()
			}
		})
	}
}
