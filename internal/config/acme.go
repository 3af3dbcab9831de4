package config

import (
	"fmt"
	"slices"

	"github.com/wardengw/warden/internal/pki/acme"
)

// ACME is the account at an ACME CA (RFC 8555) that the certificates of
// tls.certificates[].acme entries are obtained from and renewed with.
type ACME struct {
	// DirectoryURL is the CA's https directory URL.
	DirectoryURL string `yaml:"directory_url"`
	// Email is the account's contact.
	Email string `yaml:"email"`
	// AgreeTerms must be true: agreeing to the CA's terms of service.
	AgreeTerms bool `yaml:"agree_terms"`
	// CAFile is a PEM bundle verifying the directory's TLS certificate (a
	// private ACME CA); default: the system roots.
	CAFile string `yaml:"ca_file"`
	// Challenges answered: http-01 (needs server.http) and tls-alpn-01.
	// Default: both with server.http, tls-alpn-01 without.
	Challenges []string `yaml:"challenges"`
	// Storage is the directory of the account key, certificate keys and
	// certificates; default: acme next to store.path.
	Storage string `yaml:"storage"`
}

// CertificateACME is a tls.certificates[] entry obtained from the ACME CA:
// one certificate per name.
type CertificateACME struct {
	Names []string `yaml:"names"`
}

// acmeCertificate validates tls.certificates[i], which has acme.
func (v *validator) acmeCertificate(i int, c Certificate) {
	p := fmt.Sprintf("tls.certificates[%d]", i)
	if v.c.ACME == nil {
		v.errorf(p+".acme", "needs the top-level acme block (the CA and account to use)")
	}
	if len(c.ACME.Names) == 0 {
		v.errorf(p+".acme.names", "at least one name is required")
	}
	for j, n := range c.ACME.Names {
		np := fmt.Sprintf("%s.acme.names[%d]", p, j)
		if err := acme.ValidName(n); err != nil {
			v.errorf(np, "%v", err)
		}
		for k, other := range v.c.TLS.Certificates[:i] {
			if other.ACME != nil && slices.Contains(other.ACME.Names, n) {
				v.errorf(np, "%s is already requested by tls.certificates[%d]", n, k)
			}
		}
	}
}

// acme validates the top-level acme block.
func (v *validator) acme() {
	a := v.c.ACME
	if a == nil {
		return
	}
	if err := acme.ValidDirectoryURL(a.DirectoryURL); err != nil {
		v.errorf("acme.directory_url", "%v", err)
	}
	if a.Email == "" {
		v.errorf("acme.email", "the account's contact address is required")
	} else if err := acme.ValidEmail(a.Email); err != nil {
		v.errorf("acme.email", "%v", err)
	}
	if !a.AgreeTerms {
		v.errorf("acme.agree_terms", "must be true: using an ACME CA means agreeing to its terms of service")
	}
	if a.CAFile != "" {
		if _, err := LoadCertPool(v.c.PathOf(a.CAFile)); err != nil {
			v.errorf("acme.ca_file", "%v", err)
		}
	}
	for i, ch := range a.Challenges {
		p := fmt.Sprintf("acme.challenges[%d]", i)
		switch acme.Challenge(ch) {
		case acme.HTTP01:
			if v.c.Server.HTTP == nil {
				v.errorf(p, "http-01 is answered on the plain-HTTP listener: configure server.http or remove http-01")
			}
		case acme.TLSALPN01:
		default:
			v.errorf(p, "%q is not one of http-01, tls-alpn-01 (dns-01 is not supported)", ch)
		}
	}
	if slices.Contains(a.Challenges, string(acme.HTTP01)) && slices.Contains(a.Challenges, string(acme.TLSALPN01)) && v.c.Server.HTTP != nil {
		if _, err := acme.ListenHost(v.c.Server.HTTP.Address, v.c.Server.HTTPS.Address); err != nil {
			v.errorf("acme.challenges", "%v (or answer only one challenge)", err)
		}
	}
	used := slices.ContainsFunc(v.c.TLS.Certificates, func(c Certificate) bool { return c.ACME != nil })
	if !used {
		v.warnf("acme", "no tls.certificates entry uses acme")
	}
}
