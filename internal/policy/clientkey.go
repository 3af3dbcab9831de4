package policy

import (
	"net"
	"net/http"
	"net/netip"
)

// ClientKey is the key under which per-client state (rate limits,
// brute-force counts) is kept for r: AddrKey(r.RemoteAddr, v6prefix),
// from the client IP the gateway noted once for the connection (x.Peer,
// x.PeerIP) when it did: the text of an IPv4 address (or an IPv6 one keyed
// whole) is then used as it is instead of being parsed and formatted
// again.
func ClientKey(r *http.Request, x *Exchange, v6prefix int) string {
	if x != nil && x.Peer.IsValid() && x.PeerIP != "" && x.Remote == r.RemoteAddr && (x.Peer.Is4() || v6prefix >= 128) {
		return x.PeerIP
	}
	return AddrKey(r.RemoteAddr, v6prefix)
}

// AddrKey returns the key of a client address (ip:port, or a bare IP):
// the IP itself for IPv4 (also IPv4-mapped IPv6), the /v6prefix network
// for IPv6 (one client usually holds a whole /64 and would otherwise get a
// fresh key per address), remote unchanged (at most 256 bytes) if it is
// not an IP address.
func AddrKey(remote string, v6prefix int) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > 256 {
			host = host[:256]
		}
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is4() || v6prefix >= 128 {
		var buf [64]byte
		if b := a.AppendTo(buf[:0]); string(b) == host {
			return host // already in canonical form (the usual case): no copy
		}
		return a.String()
	}
	p, _ := a.Prefix(v6prefix)
	return p.String()
}
