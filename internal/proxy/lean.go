package proxy

import (
	"bufio"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/wardengw/warden/internal/policy"
)

// The lean forward path does, for the common HTTP/1.x exchange, what
// httputil.ReverseProxy with rewrite and modifyResponse does, without
// cloning the request and its header map, without a client-trace context
// and without canonicalising header names again: the outbound header
// block is written straight from the inbound header map, skipping what
// ReverseProxy would delete, and the response header fields are moved to
// the client's response in one pass. It serves exactly the requests the
// lean transport serves (leanEligible); everything else (HTTP/2 clients,
// upgrades, 100-continue, chunked or large request bodies, trailers,
// rebased targets) keeps the ReverseProxy path. TestLeanForwardMatchesStd
// holds the two paths to the same upstream request and client response.

// hopByHop are the fields ReverseProxy removes in both directions (its
// hopHeaders), by canonical name.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// connectionTokens returns the canonical names a Connection field lists,
// which are hop-by-hop too (RFC 9110 section 7.6.1).
func connectionTokens(h http.Header) []string {
	vv := h["Connection"]
	if len(vv) == 0 {
		return nil
	}
	var names []string
	for _, v := range vv {
		for sf := range strings.SplitSeq(v, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				names = append(names, http.CanonicalHeaderKey(sf))
			}
		}
	}
	return names
}

func listed(names []string, k string) bool {
	for _, n := range names {
		if n == k {
			return true
		}
	}
	return false
}

// leanRequest is one request on the lean forward path.
type leanRequest struct {
	u       *Upstream
	in      *http.Request
	body    *[]byte
	conn    []string // canonical names listed in the inbound Connection field
	te      bool     // the client accepts trailers ("TE: trailers")
	trusted bool
	peer    netip.Addr
	peerIP  string              // peer's text when the gateway noted it, else ""
	sink    responseSink        // the client's header map, for the response's fields
	w       http.ResponseWriter // the client's, for 1xx responses
}

// got1xx passes an informational response on to the client, as
// ReverseProxy's Got1xxResponse does, but keeps the gateway's own fields
// (HSTS, request ID) for the final response.
func (lr *leanRequest) got1xx(code int, h http.Header) error {
	dst := lr.w.Header()
	saved := dst.Clone()
	copyResponseHeader(dst, h, connectionTokens(h))
	lr.w.WriteHeader(code)
	clear(dst)
	for k, vv := range saved {
		dst[k] = vv
	}
	return nil
}

// leanEligible reports whether r can take the lean forward path, and
// prepares it: nothing is sent yet.
func (u *Upstream) leanEligible(r *http.Request, lr *leanRequest) bool {
	if u.h1 == nil || !u.lean || r.ProtoMajor != 1 || r.URL == nil || r.URL.Opaque != "" || r.Header == nil ||
		!strings.HasPrefix(r.URL.Path, "/") {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && (r.ContentLength < 0 || r.ContentLength > maxBufferedBody) {
		return false
	}
	if !cleanQuery(r.URL.RawQuery) || !httpguts.ValidHeaderFieldValue(r.Host) || !plainRequest(r) {
		return false
	}
	if te := r.Header["Te"]; len(te) > 0 {
		lr.te = httpguts.HeaderValuesContainsToken(te, "trailers")
	}
	lr.u, lr.in = u, r
	lr.conn = connectionTokens(r.Header)
	lr.peer, lr.peerIP = peerOf(r)
	lr.trusted = u.isTrusted(lr.peer)
	return true
}

// cleanQuery reports whether ReverseProxy would forward the query as it
// is (its cleanQueryParams re-encodes one with a ';' or a bad escape).
func cleanQuery(s string) bool {
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return false
			}
			i += 3
		default:
			i++
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// writeTo writes the outbound request: what ReverseProxy, u.rewrite and
// Request.Write would send, with one flush.
func (lr *leanRequest) writeTo(bw *bufio.Writer) error {
	in, u := lr.in, lr.u
	// The target has no base path and no query: the URI is the client's own.
	if err := writeRequestHead(bw, in.Method, in.URL.RequestURI(), u.target.Host); err != nil {
		return err
	}
	// ReverseProxy sets an absent User-Agent to "", so none is sent.
	if ua := in.Header["User-Agent"]; len(ua) > 0 && !listed(lr.conn, "User-Agent") && textproto.TrimString(ua[0]) != "" {
		writeField(bw, "User-Agent", ua[0])
	}
	n := int64(0)
	if lr.body != nil {
		n = in.ContentLength
	}
	writeContentLength(bw, in.Method, n)
	for k, vv := range in.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer",
			"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id":
			continue
		}
		if hopByHop(k) || listed(lr.conn, k) || (!lr.trusted && isSpoofable(k)) || dropAlias(k, lr.trusted, lr.u.omit) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if lr.te {
		bw.WriteString("Te: trailers\r\n")
	}
	omit := lr.u.omit
	if lr.trusted {
		var fwd [4]string
		forwardedValues(&fwd, in.Header, lr.trusted, lr.peer, in.Host)
		for i, name := range forwardFields {
			if fwd[i] == "" || omit&(1<<i) != 0 {
				continue
			}
			if !httpguts.ValidHeaderFieldValue(fwd[i]) {
				return errBadForwarding
			}
			writeField(bw, name, fwd[i])
		}
	} else {
		// forwardedValues' fields for an untrusted peer, written in place.
		// They are valid by construction: an IP's text, in.Host (checked
		// by leanEligible) and the element, which quotes the host and
		// drops control bytes.
		if lr.peer.IsValid() && omit&ForwardFor == 0 {
			bw.WriteString("X-Forwarded-For: ")
			bw.Write(appendPeer(bw.AvailableBuffer(), lr.peer, lr.peerIP))
			bw.WriteString("\r\n")
		}
		if omit&ForwardHost == 0 && in.Host != "" {
			writeField(bw, "X-Forwarded-Host", in.Host)
		}
		if omit&ForwardProto == 0 {
			bw.WriteString("X-Forwarded-Proto: https\r\n")
		}
		if omit&ForwardForwarded == 0 {
			bw.WriteString("Forwarded: ")
			bw.Write(appendForwardedElement(bw.AvailableBuffer(), lr.peer, lr.peerIP, in.Host))
			bw.WriteString("\r\n")
		}
	}
	if x := policy.ExchangeOf(in); x != nil && x.ID != "" && omit&ForwardRequestID == 0 {
		writeField(bw, "X-Request-Id", x.ID)
	}
	bw.WriteString("\r\n")
	if lr.body != nil {
		bw.Write((*lr.body)[:in.ContentLength])
	}
	return bw.Flush()
}

func isSpoofable(k string) bool {
	for _, s := range spoofable {
		if s == k {
			return true
		}
	}
	return false
}

// serveLean forwards r on the lean path; r passed leanEligible into lr.
func (u *Upstream) serveLean(w http.ResponseWriter, r *http.Request, lr *leanRequest) {
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > 0 {
			b, err := readBody(r.Body, r.ContentLength)
			if err != nil {
				u.handleError(w, r, err)
				return
			}
			defer buffers.Put(b)
			lr.body = b
		} else {
			defer r.Body.Close()
		}
	}
	lr.w = w
	lr.sink.h = w.Header()
	res, err := u.h1.exchange(r, lr, false)
	if err != nil {
		u.handleError(w, r, err)
		return
	}
	defer res.Body.Close()
	dst := w.Header()
	if res.Header != nil { // else its fields are in dst already (lr.sink)
		copyResponseHeader(dst, res.Header, connectionTokens(res.Header))
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	if res.Body != http.NoBody {
		if err := copyBody(w, res.Body, streaming(res, &lr.sink)); err != nil {
			u.bodyFailed(r, res.StatusCode, err)
			// As ReverseProxy: a response cut short must not look complete.
			if r.Context().Value(http.ServerContextKey) != nil {
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
	res.Body.Close() // populates res.Trailer
	if len(res.Trailer) == 0 {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	for k, vv := range res.Trailer {
		if len(res.Trailer) != announced {
			k = http.TrailerPrefix + k
		}
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// dropResponseField reports whether the gateway drops an upstream
// response field of this (canonical) name: hop-by-hop ones and those the
// gateway owns (modifyResponse). Fields listed in Connection are dropped
// too (copyResponseHeader); the lean parse declines a response with one.
func dropResponseField(k string) bool {
	return hopByHop(k) || k == "Strict-Transport-Security" || k == "Alt-Svc"
}

// copyResponseHeader adds the upstream's fields to dst, less those
// dropResponseField drops and those listed in Connection.
func copyResponseHeader(dst, src http.Header, conn []string) {
	for k, vv := range src {
		if dropResponseField(k) || listed(conn, k) {
			continue
		}
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
		} else {
			dst[k] = vv
		}
	}
}

// streaming reports whether ReverseProxy would flush after every write:
// a body of unknown length, or server-sent events. The Content-Type is
// res.Header's, or sink's when the response's fields went there.
func streaming(res *http.Response, sink *responseSink) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct, ok := sink.contentType, sink.hasType
	if res.Header != nil {
		vv := res.Header["Content-Type"]
		ct, ok = first(vv), len(vv) > 0
	}
	if !ok {
		return false
	}
	const sse = "text/event-stream"
	if v := strings.TrimLeft(ct, " \t"); len(v) < len(sse) || !strings.EqualFold(v[:len(sse)], sse) {
		return false // ParseMediaType (which allocates) would not say SSE either
	}
	base, _, _ := mime.ParseMediaType(ct)
	return base == sse
}

func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}

// copyBody copies the response body to the client, flushing after each
// write when flush is set.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	b := buffers.Get().(*[]byte)
	defer buffers.Put(b)
	buf := *b
	f, _ := w.(http.Flusher)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush && f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
