package revocation

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
)

// FuzzParseCRL feeds arbitrary bytes to the CRL parser, verifier and
// indexer. It must never panic, and a CRL it accepts must be one the
// issuer signed.
func FuzzParseCRL(f *testing.F) {
	ca := pkitest.NewRootCA(f, "Fuzz CA", pkitest.Options{})
	other := pkitest.NewRootCA(f, "Other CA", pkitest.Options{})
	revoked := map[*big.Int]revocationtest.Revocation{big.NewInt(7): {At: time.Now(), Reason: 1}}
	f.Add(revocationtest.NewCRL(f, ca.Cert, ca.Key, revocationtest.CRLOptions{}))
	f.Add(revocationtest.NewCRL(f, ca.Cert, ca.Key, revocationtest.CRLOptions{Revoked: revoked}))
	f.Add(revocationtest.NewCRL(f, other.Cert, other.Key, revocationtest.CRLOptions{Revoked: revoked}))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add(idpValue("http://crl.example/1.crl")) // for parseIDP
	idp, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidIssuingDP, Critical: true, Value: idpValue("http://crl.example/1.crl")}},
	}, ca.Cert, ca.Key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(idp)
	f.Add([]byte{})
	leaf := ca.Issue(f, pkitest.Options{SerialNumber: big.NewInt(7), CRLDistributionPoints: []string{"http://crl.example/1.crl"}})
	now := time.Now()
	f.Fuzz(func(t *testing.T, der []byte) {
		idx, err := parseCRL(der, ca.Cert, "fuzz")
		if err == nil {
			_ = idx.status(leaf.Cert, now, 0)
			_ = idx.fresh(now, 0)
			if Reason(err) != "" {
				t.Fatal("accepted with a reason")
			}
		} else if Reason(err) == "" || Reason(err) == "revocation_error" {
			t.Fatalf("untyped error %v", err)
		}
		// The scope parser alone: in parseCRL it is only reached past the
		// signature check.
		if scope, err := parseIDP(der); err == nil {
			_ = scope.covers(leaf.Cert)
		}
	})
}

// FuzzOCSPResponse feeds arbitrary bytes to the OCSP response verifier. It
// must never panic and never accept a response the issuer did not sign or
// delegate.
func FuzzOCSPResponse(f *testing.F) {
	ca := pkitest.NewRootCA(f, "Fuzz CA", pkitest.Options{})
	leaf := ca.Issue(f, pkitest.Options{SerialNumber: big.NewInt(42)})
	now := time.Now()
	mk := func(signer *pkitest.Leaf, status int) []byte {
		tmpl := ocsp.Response{Status: status, SerialNumber: leaf.Cert.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), RevokedAt: now, RevocationReason: 1}
		issuer, key := ca.Cert, ca.Key
		if signer != nil {
			tmpl.Certificate, issuer, key = signer.Cert, signer.Cert, signer.Key
		}
		der, err := ocsp.CreateResponse(ca.Cert, issuer, tmpl, key)
		if err != nil {
			f.Fatal(err)
		}
		return der
	}
	delegate := ca.Issue(f, pkitest.Options{CommonName: "responder", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	f.Add(mk(nil, ocsp.Good))
	f.Add(mk(nil, ocsp.Revoked))
	f.Add(mk(nil, ocsp.Unknown))
	f.Add(mk(delegate, ocsp.Good))
	f.Add(ocsp.TryLaterErrorResponse)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		resp, err := verifyOCSP(der, leaf.Cert, ca.Cert, now, time.Hour)
		if err != nil {
			if Reason(err) == "" || Reason(err) == "revocation_error" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Accepted: re-check the signature independently.
		signer := ca.Cert
		if resp.Certificate != nil && !resp.Certificate.Equal(ca.Cert) {
			if err := resp.Certificate.CheckSignatureFrom(ca.Cert); err != nil {
				t.Fatalf("accepted a response from a responder the CA did not certify: %v", err)
			}
			signer = resp.Certificate
		}
		if err := resp.CheckSignatureFrom(signer); err != nil {
			t.Fatalf("accepted a response with a bad signature: %v", err)
		}
		if resp.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
			t.Fatal("accepted a response for another serial")
		}
		_ = statusOf(resp, leaf.Cert.SerialNumber)
	})
}
