package mtls

import (
	"encoding/base64"
	"encoding/json"
	"github.com/wardengw/warden/internal/policy"
	"net/http"
	"net/textproto"
	"strings"
)

// RFC 9440 header fields carrying the client certificate to the upstream.
const (
	HeaderClientCert      = "Client-Cert"
	HeaderClientCertChain = "Client-Cert-Chain"
)

// StripIdentityHeaders deletes the headers through which the gateway tells
// upstreams who the client is: RFC 9440 Client-Cert and Client-Cert-Chain,
// and identityHeader if not empty. A client must never be able to send
// them: the gateway calls it on every request of every route, before any
// policy, with each identity header name any mtls policy of the config
// uses; the mtls policy calls it again with its own.
//
// It also removes those names from the Connection header, where a client
// could list them to have the reverse proxy drop them as hop-by-hop after
// the policy set them.
func StripIdentityHeaders(h http.Header, identityHeader string) {
	h.Del(HeaderClientCert)
	h.Del(HeaderClientCertChain)
	if identityHeader != "" {
		h.Del(identityHeader)
	}
	conn := h["Connection"]
	if len(conn) == 0 {
		return
	}
	kept := conn[:0:0]
	for _, v := range conn {
		var tokens []string
		for _, tok := range strings.Split(v, ",") {
			tok = textproto.TrimString(tok)
			if tok == "" || strings.EqualFold(tok, HeaderClientCert) || strings.EqualFold(tok, HeaderClientCertChain) ||
				identityHeader != "" && strings.EqualFold(tok, identityHeader) {
				continue
			}
			tokens = append(tokens, tok)
		}
		if len(tokens) > 0 {
			kept = append(kept, strings.Join(tokens, ", "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = kept
}

// sfBinary encodes b as an RFC 9651 (structured field) byte sequence:
// ":" base64 ":".
func sfBinary(b []byte) string {
	return ":" + base64.StdEncoding.EncodeToString(b) + ":"
}

// chainHeaders returns the Client-Cert value of the leaf and the
// Client-Cert-Chain value of the certificates above it, the trust anchor
// excluded (RFC 9440 lets it be omitted: the upstream must know it
// anyway); chainValue is "" when there is no intermediate.
func chainHeaders(verified [][]byte) (certValue, chainValue string) {
	certValue = sfBinary(verified[0])
	if len(verified) > 2 {
		items := make([]string, 0, len(verified)-2)
		for _, der := range verified[1 : len(verified)-1] {
			items = append(items, sfBinary(der))
		}
		chainValue = strings.Join(items, ", ")
	}
	return certValue, chainValue
}

// identityDoc is the identity header's JSON object.
type identityDoc struct {
	Consumer   string `json:"consumer,omitempty"`
	SPIFFEID   string `json:"spiffe_id,omitempty"`
	Subject    string `json:"subject"`
	Serial     string `json:"serial"`
	SPKISHA256 string `json:"spki_sha256"`
}

// identityValue renders the identity header: compact JSON, ASCII only
// (everything from DEL up is \u-escaped), so that it is a valid header value
// whatever the certificate's subject holds.
func identityValue(f *facts, consumer string) string {
	d := identityDoc{
		Consumer:   consumer,
		Subject:    f.leaf.Subject.String(),
		Serial:     serialHex(f.leaf),
		SPKISHA256: base64.StdEncoding.EncodeToString(f.spki[:]),
	}
	if f.spiffe.td != "" {
		d.SPIFFEID = f.leaf.URIs[0].String()
	}
	b, _ := json.Marshal(d) // strings only: cannot fail
	return policy.ASCIIJSON(b)
}
