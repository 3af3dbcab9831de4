package ca

import (
	"errors"
	"net"
	"testing"
)

// TestCheckServerNames: the names of a server certificate are checked as
// Issue checks a server CSR's SANs, constraints included, before anything
// is issued.
func TestCheckServerNames(t *testing.T) {
	_, ten, _ := net.ParseCIDR("10.0.0.0/8")
	dir := testInit(t, InitOptions{PermittedDNSDomains: []string{"example.com"}, PermittedIPRanges: []*net.IPNet{ten}})
	_, inter, err := LoadCertificates(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		names   []string
		inter   bool // check the constraints too
		refused string
	}{
		{[]string{"api.example.com", "*.svc.example.com", "10.1.2.3"}, true, ""},
		{[]string{"API.Example.com"}, true, ""}, // lowercased, as Issue does
		{[]string{"api.example.com", "api.evil.test"}, true, "dns:api.evil.test"},
		{[]string{"192.0.2.1"}, true, "ip:192.0.2.1"},
		{[]string{"api.evil.test", "localhost"}, false, ""}, // syntax only
		{[]string{"bad_name.example.com"}, false, "dns:bad_name.example.com"},
		{[]string{"a.*.example.com"}, false, "dns:a.*.example.com"},
		{[]string{"0.0.0.0"}, false, "ip:0.0.0.0"},
		{[]string{"single"}, false, "dns:single"},
	}
	for _, tt := range tests {
		in := inter
		if !tt.inter {
			in = nil
		}
		err := CheckServerNames(tt.names, in)
		var ne *NameError
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%v: %v", tt.names, err)
		case tt.refused != "" && (!errors.As(err, &ne) || ne.SAN != tt.refused):
			t.Errorf("%v: got %v, want %s refused", tt.names, err, tt.refused)
		}
	}
}
