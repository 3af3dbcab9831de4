package proxy

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"

	"github.com/wardengw/warden/internal/httpsyntax"
	"github.com/wardengw/warden/internal/policy"
)

// spoofable are client-settable headers some upstreams read as the client's
// address or the original URL. They are kept only from trusted proxies.
var spoofable = []string{"X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix"}

// ForwardFields is a set of the fields the gateway sets on every request
// to an upstream: who the client is, which host and scheme it asked for,
// and the request's ID.
type ForwardFields uint8

// The fields of a ForwardFields set.
const (
	ForwardFor       ForwardFields = 1 << iota // X-Forwarded-For
	ForwardHost                                // X-Forwarded-Host
	ForwardProto                               // X-Forwarded-Proto
	ForwardForwarded                           // Forwarded (RFC 7239)
	ForwardRequestID                           // X-Request-Id

	// ForwardAll is every field, the default.
	ForwardAll = ForwardFor | ForwardHost | ForwardProto | ForwardForwarded | ForwardRequestID
)

// forwardKeys are the fields' canonical names, in ForwardFields' bit
// order; forwardFields, the first four, are those forwardedValues
// computes. In the config each is named in lower case.
var (
	forwardKeys   = [5]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Request-Id"}
	forwardFields = [4]string(forwardKeys[:4])
)

// ParseForwardFields returns the set named by names, the config's
// forward_headers list: each one of x-forwarded-for, x-forwarded-host,
// x-forwarded-proto, forwarded and x-request-id, at most once.
func ParseForwardFields(names []string) (ForwardFields, error) {
	var set ForwardFields
	for _, n := range names {
		bit := ForwardFields(0)
		for i, known := range forwardKeys {
			if n == strings.ToLower(known) {
				bit = 1 << i
			}
		}
		switch {
		case bit == 0:
			return 0, fmt.Errorf("unknown forwarding header %q: one of x-forwarded-for, x-forwarded-host, x-forwarded-proto, forwarded, x-request-id", n)
		case set&bit != 0:
			return 0, fmt.Errorf("forwarding header %q is listed twice", n)
		}
		set |= bit
	}
	return set, nil
}

// rewrite is the ReverseProxy.Rewrite hook. ReverseProxy has already
// removed hop-by-hop headers and the client's Forwarded/X-Forwarded-*
// from pr.Out, so whatever is set here reaches the upstream.
func (u *Upstream) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(u.target)
	pr.Out.Host = u.target.Host

	peer, _ := peerOf(pr.In)
	trusted := u.isTrusted(peer)
	h := pr.Out.Header
	if !trusted {
		for _, k := range spoofable {
			delete(h, k) // the keys are canonical
		}
	}
	for k := range h {
		if dropAlias(k, trusted, u.omit) {
			delete(h, k)
		}
	}
	in := pr.In.Header
	setForwarded(h, in, trusted, peer, pr.In.Host, u.omit)

	delete(h, "X-Request-Id")
	if x := policy.ExchangeOf(pr.In); x != nil && x.ID != "" && u.omit&ForwardRequestID == 0 {
		h["X-Request-Id"] = []string{x.ID}
	}
}

// setForwarded sets X-Forwarded-For/-Host/-Proto and RFC 7239 Forwarded
// on out for a request from peer for host, but for those in omit, which
// are removed. The client leg is always HTTPS: the gateway serves plain
// HTTP only as a redirect. From a trusted peer the existing chains are
// kept and appended to.
func setForwarded(out, in http.Header, trusted bool, peer netip.Addr, host string, omit ForwardFields) {
	// One backing array for the four fields; the keys are canonical.
	v := new([4]string)
	forwardedValues(v, in, trusted, peer, host)
	for i, k := range forwardFields {
		if v[i] == "" || omit&(1<<i) != 0 {
			delete(out, k)
		} else {
			out[k] = v[i : i+1 : i+1]
		}
	}
}

// forwardedValues computes the values setForwarded sets: X-Forwarded-For
// (empty: none), X-Forwarded-Host, X-Forwarded-Proto and Forwarded.
func forwardedValues(v *[4]string, in http.Header, trusted bool, peer netip.Addr, host string) {
	xff, fwd := "", forwardedElement(peer, host)
	if peer.IsValid() {
		xff = peer.String()
	}
	xfHost, xfProto := host, "https"
	if trusted {
		if prior := in.Values("X-Forwarded-For"); len(prior) > 0 {
			xff = joinChain(strings.Join(prior, ", "), xff)
		}
		if prior := in.Values("Forwarded"); len(prior) > 0 {
			fwd = joinChain(strings.Join(prior, ", "), fwd)
		}
		if v := in.Get("X-Forwarded-Host"); v != "" {
			xfHost = v
		}
		if v := in.Get("X-Forwarded-Proto"); v != "" {
			xfProto = v
		}
	}
	*v = [4]string{xff, xfHost, xfProto, fwd}
}

func joinChain(prior, next string) string {
	if next == "" {
		return prior
	}
	return prior + ", " + next
}

// dropAlias reports whether k, if it spells a field with underscores for
// dashes (X_Forwarded_For), is to be dropped: CGI-style upstreams read it
// as the field itself (HTTP_X_FORWARDED_FOR). From a client that is not a
// trusted proxy every such spelling of a forwarding or spoofable field is
// dropped; from a trusted proxy, those of the forwarding fields the
// upstream does not receive (omit), so that the upstream never reads a
// value in a field the gateway does not set. A name without an underscore
// costs one scan.
func dropAlias(k string, trusted bool, omit ForwardFields) bool {
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	k = http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
	bit := ForwardFields(0)
	for i, f := range forwardKeys {
		if k == f {
			bit = 1 << i
		}
	}
	if trusted {
		return bit&omit != 0
	}
	return bit != 0 || isSpoofable(k)
}

// peerOf returns the client's IP, and its text when the gateway noted
// both once for the connection (policy.Exchange), else the IP parsed from
// r.RemoteAddr and "".
func peerOf(r *http.Request) (netip.Addr, string) {
	if x := policy.ExchangeOf(r); x != nil && x.Peer.IsValid() && x.Remote == r.RemoteAddr {
		return x.Peer, x.PeerIP
	}
	return peerAddr(r.RemoteAddr), ""
}

// appendPeer appends peer's text: text if set (peer's, noted before), else
// peer formatted.
func appendPeer(dst []byte, peer netip.Addr, text string) []byte {
	if text != "" {
		return append(dst, text...)
	}
	return peer.AppendTo(dst)
}

// peerAddr returns the IP of a RemoteAddr ("ip:port"), unmapped and
// without zone, or the zero Addr if it is not one.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

func (u *Upstream) isTrusted(peer netip.Addr) bool {
	if !peer.IsValid() {
		return false
	}
	for _, p := range u.trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// forwardedElement returns this hop's RFC 7239 forwarded-element. IPv6
// node names are bracketed and quoted (section 6); an unparsable peer is
// "unknown".
func forwardedElement(peer netip.Addr, host string) string {
	var buf [128]byte
	return string(appendForwardedElement(buf[:0], peer, "", host))
}

// appendForwardedElement appends forwardedElement's value to dst; peerText
// is peer's text if known, else "" (see appendPeer).
func appendForwardedElement(dst []byte, peer netip.Addr, peerText, host string) []byte {
	dst = append(dst, "for="...)
	switch {
	case !peer.IsValid():
		dst = append(dst, "unknown"...)
	case peer.Is6():
		dst = append(dst, `"[`...)
		dst = appendPeer(dst, peer, peerText)
		dst = append(dst, `]"`...)
	default:
		dst = appendPeer(dst, peer, peerText)
	}
	dst = append(dst, ";proto=https"...)
	if host != "" {
		dst = append(dst, ";host="...)
		dst = appendQuoteValue(dst, host)
	}
	return dst
}

// appendQuoteValue appends v as an RFC 7230 token if it is one, else as
// a quoted-string, so no value can end the element or start another.
func appendQuoteValue(dst []byte, v string) []byte {
	token := v != ""
	for i := 0; i < len(v) && token; i++ {
		token = httpsyntax.IsTokenByte(v[i])
	}
	if token {
		return append(dst, v...)
	}
	plain := true // nothing to escape or drop, the usual host:port
	for i := 0; i < len(v) && plain; i++ {
		c := v[i]
		plain = c != '"' && c != '\\' && (c == '\t' || c >= 0x20 && c != 0x7f)
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, v...)
		return append(dst, '"')
	}
	dst = append(dst, '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			dst = append(dst, c)
		default: // control characters cannot be quoted; drop them
		}
	}
	return append(dst, '"')
}
