package mtls_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

// TestVerify covers what the end-to-end test cannot present through a TLS
// client (P-224 keys), and the depth and key-usage rules, at a fixed time.
func TestVerify(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	expiredInter := p.root.NewIntermediate(t, "Expired Intermediate", pkitest.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	good := p.client(t, pkitest.Options{})
	notCA := &pkitest.CA{Cert: good.Cert, Key: good.Key, Parents: []*x509.Certificate{p.inter.Cert, p.root.Cert}}
	pinned := pkitest.SelfSigned(t, pkitest.Options{CommonName: "pinned"})
	opts := func(roots ...*x509.Certificate) mtls.VerifyOptions {
		o := mtls.VerifyOptions{Roots: x509.NewCertPool(), Now: now, MaxChainDepth: 5, MinRSABits: 2048}
		for _, r := range roots {
			o.Roots.AddCert(r)
		}
		if len(roots) == 0 {
			o.Roots.AddCert(p.root.Cert)
		}
		return o
	}
	tests := []struct {
		name      string
		presented []*x509.Certificate
		opts      mtls.VerifyOptions
		reason    string // "" means verified
		depth     int    // verified chain length
		faulty    *x509.Certificate
	}{
		{"good", good.Chain, opts(), "", 3, nil},
		{"good with the root sent along", append(append([]*x509.Certificate{}, good.Chain...), p.root.Cert), opts(), "", 3, nil},
		{"nothing", nil, opts(), mtls.ReasonCertificateRequired, 0, nil},
		{"verified chain too deep", good.Chain, func() mtls.VerifyOptions { o := opts(); o.MaxChainDepth = 2; return o }(), mtls.ReasonChainTooDeep, 0, nil},
		{"presented chain too deep", append(append([]*x509.Certificate{}, good.Chain...), p.root.Cert, p.other.Cert, p.inter.Cert, p.root.Cert),
			opts(), mtls.ReasonChainTooDeep, 0, nil},
		{"P-224 leaf", p.client(t, pkitest.Options{KeyType: pkitest.ECDSAP224}).Chain, opts(), mtls.ReasonWeakKey, 0, nil},
		{"P-384 leaf", p.client(t, pkitest.Options{KeyType: pkitest.ECDSAP384}).Chain, opts(), "", 3, nil},
		{"Ed25519 leaf", p.client(t, pkitest.Options{KeyType: pkitest.Ed25519}).Chain, opts(), "", 3, nil},
		{"RSA-2048 below a 3072 minimum", p.client(t, pkitest.Options{KeyType: pkitest.RSA2048}).Chain,
			func() mtls.VerifyOptions { o := opts(); o.MinRSABits = 3072; return o }(), mtls.ReasonWeakKey, 0, nil},
		{"no digitalSignature", p.client(t, pkitest.Options{KeyUsage: x509.KeyUsageKeyEncipherment}).Chain, opts(), mtls.ReasonWrongKeyUsage, 0, nil},
		{"expired intermediate", expiredInter.Issue(t, pkitest.Options{NotBefore: now.Add(-47 * time.Hour), NotAfter: now.Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).Chain, opts(), mtls.ReasonExpired, 0, expiredInter.Cert},
		// Basic constraints: crypto/x509 will not use a non-CA as an issuer,
		// so no chain reaches the bundle.
		{"issued by a non-CA", notCA.Issue(t, pkitest.Options{CommonName: "grandchild"}).Chain, opts(), mtls.ReasonUnknownCA, 0, nil},
		{"pinned self-signed leaf", pinned.Chain, opts(pinned.Cert), "", 1, nil},
		{"later: expired", good.Chain, func() mtls.VerifyOptions { o := opts(); o.Now = now.Add(25 * time.Hour); return o }(), mtls.ReasonExpired, 0, good.Cert},
		{"earlier: not yet valid", good.Chain, func() mtls.VerifyOptions { o := opts(); o.Now = now.Add(-2 * time.Hour); return o }(), mtls.ReasonNotYetValid, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, err := mtls.Verify(tt.presented, tt.opts)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if len(chain) != tt.depth || chain[0] != tt.presented[0] {
					t.Errorf("verified chain of %d, want %d starting at the leaf", len(chain), tt.depth)
				}
				return
			}
			e, ok := errors.AsType[*mtls.Error](err)
			if !ok {
				t.Fatalf("Verify = %v, want *mtls.Error", err)
			}
			if e.Reason != tt.reason {
				t.Fatalf("reason %q (%v), want %q", e.Reason, e, tt.reason)
			}
			if tt.faulty != nil && e.Cert != tt.faulty {
				t.Errorf("faulty certificate %v, want %v", e.Cert.Subject, tt.faulty.Subject)
			}
			if !strings.HasPrefix(e.Error(), "client certificate: "+tt.reason) {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}
