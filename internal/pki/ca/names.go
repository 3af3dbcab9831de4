package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// NameError reports a requested name the CA will not certify. Nothing is
// issued or recorded.
type NameError struct {
	SAN    string // the offending name, "dns:…", "ip:…", "uri:…", "email:…" or "cn:…"
	Reason string
}

func (e *NameError) Error() string { return fmt.Sprintf("name %s refused: %s", e.SAN, e.Reason) }

// checkDNSName checks a DNS SAN's syntax: lowercase letters, digits and
// hyphens in labels of 1 to 63 characters, at least two labels, at most
// 253 characters, a leading "*." allowed when wildcard is set.
func checkDNSName(name string, wildcard bool) error {
	if wildcard {
		name = strings.TrimPrefix(name, "*.")
	}
	if len(name) == 0 || len(name) > 253 {
		return errors.New("empty or longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 && name != "localhost" {
		return errors.New("want a fully qualified name (two labels at least)")
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return errors.New("empty label or label longer than 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("label starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				if c == '*' {
					return errors.New("wildcard only as the whole leftmost label of a server name")
				}
				return fmt.Errorf("character %q not allowed (lowercase letters, digits, hyphens)", c)
			}
		}
	}
	return nil
}

// checkDomainConstraint checks a permitted DNS or URI domain: a DNS name,
// optionally with a leading dot.
func checkDomainConstraint(d string) error {
	d = strings.ToLower(d)
	return checkDNSName(strings.TrimPrefix(d, "."), false)
}

// checkEmailConstraint checks a permitted email constraint: a mailbox
// "user@host", a host, or ".domain".
func checkEmailConstraint(e string) error {
	if local, host, ok := strings.Cut(e, "@"); ok {
		if local == "" {
			return errors.New("empty local part")
		}
		return checkDNSName(strings.ToLower(host), false)
	}
	return checkDomainConstraint(e)
}

// matchDomain reports whether name is within the constraint (RFC 5280
// §4.2.1.10 as crypto/x509 reads it): "example.com" matches itself and
// its subdomains, ".example.com" only its subdomains.
func matchDomain(name, constraint string) bool {
	name, constraint = strings.ToLower(name), strings.ToLower(constraint)
	name = strings.TrimPrefix(name, "*.") // a wildcard stands for subdomains of the rest
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint) && len(name) > len(constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

// constraints are the intermediate's permitted subtrees.
type constraints struct {
	dns, uri, email []string
	ips             []*net.IPNet
}

func constraintsOf(c *x509.Certificate) constraints {
	return constraints{dns: c.PermittedDNSDomains, uri: c.PermittedURIDomains, email: c.PermittedEmailAddresses, ips: c.PermittedIPRanges}
}

func (k constraints) any() bool {
	return len(k.dns)+len(k.uri)+len(k.email)+len(k.ips) > 0
}

// names are a certificate's subject alternative names, checked.
type names struct {
	dns    []string
	ips    []net.IP
	uris   []*url.URL
	emails []string
}

func (n names) count() int { return len(n.dns) + len(n.ips) + len(n.uris) + len(n.emails) }

// list returns the names in the store's "type:value" form.
func (n names) list() []string {
	var out []string
	for _, d := range n.dns {
		out = append(out, "dns:"+d)
	}
	for _, ip := range n.ips {
		out = append(out, "ip:"+ip.String())
	}
	for _, u := range n.uris {
		out = append(out, "uri:"+u.String())
	}
	for _, e := range n.emails {
		out = append(out, "email:"+e)
	}
	return out
}

// checkNames checks every requested SAN's syntax and that the CA's
// constraints permit it, returning the names to certify (DNS names
// lowercased) or a *NameError naming the first offending SAN.
func checkNames(req *x509.CertificateRequest, k constraints, profile Profile) (names, error) {
	var out names
	constrained := k.any()
	for _, d := range req.DNSNames {
		san := "dns:" + d
		d = strings.ToLower(d)
		if err := checkDNSName(d, profile == ProfileServer); err != nil {
			return names{}, &NameError{SAN: san, Reason: err.Error()}
		}
		if constrained && !permittedDomain(d, k.dns) {
			return names{}, &NameError{SAN: san, Reason: fmt.Sprintf("outside the CA's permitted DNS domains %v", k.dns)}
		}
		out.dns = append(out.dns, d)
	}
	for _, ip := range req.IPAddresses {
		san := "ip:" + ip.String()
		if ip.IsUnspecified() || ip.IsMulticast() {
			return names{}, &NameError{SAN: san, Reason: "unspecified or multicast address"}
		}
		if constrained && !permittedIP(ip, k.ips) {
			return names{}, &NameError{SAN: san, Reason: fmt.Sprintf("outside the CA's permitted IP ranges %v", k.ips)}
		}
		out.ips = append(out.ips, ip)
	}
	for _, u := range req.URIs {
		san := "uri:" + u.String()
		host, err := checkURI(u)
		if err != nil {
			return names{}, &NameError{SAN: san, Reason: err.Error()}
		}
		if constrained && !permittedDomain(host, k.uri) {
			return names{}, &NameError{SAN: san, Reason: fmt.Sprintf("host %q outside the CA's permitted URI domains %v", host, k.uri)}
		}
		out.uris = append(out.uris, u)
	}
	for _, e := range req.EmailAddresses {
		san := "email:" + e
		local, host, ok := strings.Cut(e, "@")
		if !ok || local == "" || strings.ContainsAny(local, " \t\r\n<>\"\\@") || checkDNSName(strings.ToLower(host), false) != nil {
			return names{}, &NameError{SAN: san, Reason: "not a plain mailbox user@host"}
		}
		if constrained && !permittedEmail(local, strings.ToLower(host), k.email) {
			return names{}, &NameError{SAN: san, Reason: fmt.Sprintf("outside the CA's permitted email addresses %v", k.email)}
		}
		out.emails = append(out.emails, e)
	}
	// The common name is not a SAN, but some verifiers still read a
	// hostname in it: one that looks like a DNS name must be permitted.
	if cn := req.Subject.CommonName; cn != "" && constrained && strings.Contains(cn, ".") &&
		checkDNSName(strings.ToLower(cn), true) == nil && !permittedDomain(strings.ToLower(cn), k.dns) {
		return names{}, &NameError{SAN: "cn:" + cn, Reason: fmt.Sprintf("common name looks like a DNS name outside the CA's permitted DNS domains %v", k.dns)}
	}
	return out, nil
}

func permittedDomain(name string, permitted []string) bool {
	for _, c := range permitted {
		if matchDomain(name, c) {
			return true
		}
	}
	return false
}

func permittedIP(ip net.IP, permitted []*net.IPNet) bool {
	for _, n := range permitted {
		if len(n.IP) == net.IPv4len && ip.To4() == nil || len(n.IP) == net.IPv6len && ip.To4() != nil && len(ip) == net.IPv4len {
			continue
		}
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func permittedEmail(local, host string, permitted []string) bool {
	for _, c := range permitted {
		if cl, ch, ok := strings.Cut(c, "@"); ok {
			if cl == local && strings.EqualFold(ch, host) {
				return true
			}
			continue
		}
		if strings.HasPrefix(c, ".") {
			if matchDomain(host, c) {
				return true
			}
		} else if strings.EqualFold(host, c) {
			return true
		}
	}
	return false
}

// checkURI checks a URI SAN: absolute, with a DNS host, no user info, and
// for SPIFFE IDs (spiffe://trust-domain/path) the SPIFFE rules: no port,
// query or fragment, a path. It returns the host.
func checkURI(u *url.URL) (string, error) {
	switch {
	case u.Scheme == "" || u.Opaque != "":
		return "", errors.New("want an absolute URI with a host")
	case u.User != nil:
		return "", errors.New("user info not allowed")
	}
	host := u.Hostname()
	if host == "" || net.ParseIP(host) != nil {
		return "", errors.New("want a DNS host (name constraints cannot apply to an IP or empty host)")
	}
	if u.Scheme == "spiffe" {
		if u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return "", errors.New("a SPIFFE ID has no port, query or fragment")
		}
		if host != strings.ToLower(host) {
			return "", errors.New("a SPIFFE trust domain is lowercase")
		}
		if u.Path == "" || u.Path == "/" || strings.HasSuffix(u.Path, "/") || strings.Contains(u.Path, "//") {
			return "", errors.New("a SPIFFE ID has a path of non-empty segments")
		}
	}
	if err := checkDNSName(strings.ToLower(host), false); err != nil && host != "localhost" {
		return "", fmt.Errorf("host %q: %v", host, err)
	}
	return strings.ToLower(host), nil
}

// CheckServerNames checks the names of a server certificate (DNS names and
// IP addresses, one per string) as Issue checks the SANs of a server
// request: their syntax and, when inter is not nil, inter's name
// constraints. The error is a *NameError naming the first refused name.
// It lets a config be checked before anything is issued.
func CheckServerNames(names []string, inter *x509.Certificate) error {
	req := &x509.CertificateRequest{}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			req.IPAddresses = append(req.IPAddresses, ip)
		} else {
			req.DNSNames = append(req.DNSNames, n)
		}
	}
	var k constraints
	if inter != nil {
		k = constraintsOf(inter)
	}
	_, err := checkNames(req, k, ProfileServer)
	return err
}
