package mtls_test

import (
	"fmt"
	"github.com/wardengw/warden/internal/policy"
	"net/http"

	"github.com/wardengw/warden/internal/auth/mtls"
)

// The gateway strips client-sent identity headers on every route, whether
// or not the route has an mtls policy: an upstream reading Client-Cert must
// only ever see the gateway's.
func ExampleStripIdentityHeaders() {
	h := http.Header{}
	h.Set("Client-Cert", ":MIIB...forged...:")
	h.Set("Client-Cert-Chain", ":MIIC...:")
	h.Set("X-Client-Identity", `{"consumer":"admin"}`)
	h.Set("Accept", "application/json")
	h.Set("Connection", "keep-alive, Client-Cert") // would make a proxy drop the real one
	mtls.StripIdentityHeaders(h, "X-Client-Identity")
	fmt.Println(h)
	// Output: map[Accept:[application/json] Connection:[keep-alive]]
}

// A route's policy, as the config's policy block decodes into it.
func ExampleConfig() {
	cfg := mtls.Config{
		CAFiles:    []policy.FilePath{"/etc/warden/partners-root.pem"},
		Revocation: mtls.RevocationHardFail,
		Consumers: []mtls.ConsumerRule{
			{Name: "billing", Match: mtls.Match{SPIFFEID: "spiffe://acme.example/billing/**"}},
		},
		Allow: []mtls.Match{
			{Consumer: "billing"},
			{Subject: &mtls.SubjectMatch{CN: "ops-*", O: "Acme"}},
		},
		Forward: mtls.Forward{IdentityHeader: "X-Client-Identity"},
	}
	_, err := mtls.New(cfg) // reads the CA files; here they do not exist
	fmt.Println(err != nil)
	// Output: true
}
