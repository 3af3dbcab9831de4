// Command gencerts writes a throwaway benchmark PKI into a folder: a CA and
// ECDSA P-256 server certificates for 127.0.0.1 and localhost, all with the
// standard library. It is for bench/run.sh and bench/mtls.sh only; the keys
// are not protected.
//
//	gencerts -dir /tmp/x
//
// writes ca.pem, server.pem, server-key.pem (the proxies' front cert) and
// upstream.pem, upstream-key.pem (the backend's cert), and for mTLS:
//
//   - client-ca.pem: a separate client CA (ECDSA P-256);
//   - client.pem, client-key.pem: a client certificate from it (ECDSA P-256,
//     EKU clientAuth, no OCSP or CRL distribution point URLs, so that no
//     check ever goes to the network);
//   - revoked.pem, revoked-key.pem: a second client certificate whose serial
//     is on the CRL (to prove revocation checking is really on);
//   - client-ca.crl: a PEM CRL signed by the client CA (x509.CreateRevocationList),
//     nextUpdate in a day, revoking revoked.pem's serial and -crl-entries − 1
//     other random serials; client.pem's serial is not on it.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", "", "output folder (created if missing)")
	crlEntries := flag.Int("crl-entries", 1000, "revoked serials on client-ca.crl (at least 1: revoked.pem's)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gencerts: -dir is required")
		os.Exit(2)
	}
	if *crlEntries < 1 || *crlEntries > 1_000_000 {
		fmt.Fprintln(os.Stderr, "gencerts: -crl-entries must be in 1..1000000")
		os.Exit(2)
	}
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
	if err := clientPKI(*dir, *crlEntries); err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Warden bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	for _, name := range []string{"server", "upstream"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: "localhost"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(7 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", keyDER); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// clientPKI writes the mTLS material: client CA, a good and a revoked client
// certificate, and the client CA's CRL.
func clientPKI(dir string, crlEntries int) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Warden bench client CA", Organization: []string{"Warden bench"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "client-ca.pem"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	var revokedSerial *big.Int
	for _, name := range []string{"client", "revoked"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		sn := serial()
		if name == "revoked" {
			revokedSerial = sn
		}
		// No OCSPServer, CRLDistributionPoints or IssuingCertificateURL:
		// revocation comes from the CRL file only, never the network.
		tmpl := &x509.Certificate{
			SerialNumber: sn,
			Subject:      pkix.Name{CommonName: "bench-" + name, Organization: []string{"Warden bench"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(7 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", keyDER); err != nil {
			return err
		}
	}
	entries := []x509.RevocationListEntry{{
		SerialNumber:   revokedSerial,
		RevocationTime: now.Add(-30 * time.Minute),
		ReasonCode:     1, // keyCompromise
	}}
	for len(entries) < crlEntries {
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   serial(),
			RevocationTime: now.Add(-30 * time.Minute),
			ReasonCode:     4, // superseded
		})
	}
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca, caKey)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "client-ca.crl"), "X509 CRL", crlDER)
}
