package policy

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientKeyMatchesAddrKey: the key from the client IP the gateway
// noted once per connection is the key parsed from RemoteAddr, for every
// kind of address and prefix; a noted IP that is not this request's
// RemoteAddr's is not used.
func TestClientKeyMatchesAddrKey(t *testing.T) {
	for _, remote := range []string{"192.0.2.1:1234", "[2001:db8::1]:443", "[::ffff:192.0.2.9]:1", "[fe80::1%eth0]:1", "@unix", ""} {
		for _, prefix := range []int{48, 64, 128} {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = remote
			x := &Exchange{Remote: remote}
			if ap, err := netip.ParseAddrPort(remote); err == nil {
				x.Peer = ap.Addr().Unmap().WithZone("")
				x.PeerIP = x.Peer.String()
			}
			if got, want := ClientKey(r, x, prefix), AddrKey(remote, prefix); got != want {
				t.Errorf("%q /%d: %q, want %q", remote, prefix, got, want)
			}
			if got, want := ClientKey(r, nil, prefix), AddrKey(remote, prefix); got != want {
				t.Errorf("%q /%d without an Exchange: %q, want %q", remote, prefix, got, want)
			}
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	other := &Exchange{Remote: "198.51.100.7:2", Peer: netip.MustParseAddr("198.51.100.7"), PeerIP: "198.51.100.7"}
	if got := ClientKey(r, other, 64); got != "192.0.2.1" {
		t.Fatalf("another connection's noted IP was used: %q", got)
	}
}
