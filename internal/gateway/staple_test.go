package gateway

import (
	"crypto/tls"
	"net"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
)

// TestOCSPStapling: a served certificate that names an OCSP responder is
// stapled, after a reload brings it in.
func TestOCSPStapling(t *testing.T) {
	e := newEnv(t, nil)
	// Served chains carry their intermediate, against which the OCSP
	// response is verified.
	inter := e.ca.NewIntermediate(t, "Gateway Test Intermediate", pkitest.Options{})
	resp := revocationtest.NewResponder(t, inter)
	cert := inter.Issue(t, pkitest.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		OCSPServer: []string{resp.URL}})
	cert.WriteFiles(t, e.dir, "server")
	if err := e.g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	a, _, _ := e.g.Addrs()
	conn, err := tls.Dial("tcp", a.String(), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if len(st.OCSPResponse) == 0 {
		t.Fatal("no OCSP staple")
	}
	r, err := ocsp.ParseResponseForCert(st.OCSPResponse, cert.Cert, inter.Cert)
	if err != nil || r.Status != ocsp.Good {
		t.Fatalf("staple: %v %+v", err, r)
	}
}
