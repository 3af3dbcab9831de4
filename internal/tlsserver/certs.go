package tlsserver

import (
	"crypto/dsa" //nolint:staticcheck // recognised only to be refused
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// MinRSABits is the smallest RSA modulus CheckCertificate accepts.
const MinRSABits = 2048

// CheckCertificate refuses certificates whose key or signature is too weak
// to terminate TLS with: RSA under MinRSABits bits, ECDSA on curves below
// P-256, DSA, MD5 or SHA-1 signatures, and unknown key types. Ed25519 is
// allowed. A nil error means the certificate is acceptable.
func CheckCertificate(c *x509.Certificate) error {
	if c == nil {
		return fmt.Errorf("no certificate")
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too small (minimum %d)", n, MinRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("ECDSA curve %s is too weak (minimum P-256)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *dsa.PublicKey:
		return fmt.Errorf("DSA keys are not allowed")
	default:
		return fmt.Errorf("unsupported public key type %T", c.PublicKey)
	}
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.DSAWithSHA256:
		return fmt.Errorf("certificate signed with %s is not allowed", c.SignatureAlgorithm)
	}
	return nil
}

// CertSource names a PEM certificate chain (leaf first) and its private key.
type CertSource struct {
	CertFile string
	KeyFile  string
}

// LoadCertificates loads each source, fills in Leaf, and runs
// CheckCertificate on the leaf. Errors name the file. The order is kept:
// for a ClientHello, the first certificate that fits its server name and
// algorithms is chosen, and the first overall is the default.
func LoadCertificates(srcs []CertSource) ([]tls.Certificate, error) {
	out := make([]tls.Certificate, 0, len(srcs))
	for _, s := range srcs {
		c, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate %s (key %s): %w", s.CertFile, s.KeyFile, err)
		}
		if c.Leaf == nil { // x509keypairleaf=0
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("load certificate %s: %w", s.CertFile, err)
			}
		}
		if err := CheckCertificate(c.Leaf); err != nil {
			return nil, fmt.Errorf("load certificate %s: %w", s.CertFile, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// leafOf returns c.Leaf, parsing it if needed.
func leafOf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, fmt.Errorf("empty certificate chain")
	}
	return x509.ParseCertificate(c.Certificate[0])
}
