package policy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"unicode/utf16"
)

func init() { RegisterConfig("identity", NewIdentity) }

// IdentityConfig is the config block of the identity policy.
type IdentityConfig struct {
	// Header receives the request's identity as compact JSON.
	Header string `yaml:"header"`
	// Claims are the token claims copied into it (none by default).
	Claims []string `yaml:"claims"`
}

// IdentityForward tells the upstream who the client is, as established by
// the authentication policies before it: consumer, methods used and
// selected claims, in one header. Whatever a client sent under that name is
// dropped by the gateway on every route.
type IdentityForward struct {
	header string
	claims []string
}

var _ Policy = (*IdentityForward)(nil)

// NewIdentity builds the policy.
func NewIdentity(c IdentityConfig) (*IdentityForward, error) {
	if c.Header == "" {
		return nil, fmt.Errorf("header is required")
	}
	name, err := checkName("header", c.Header)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(name) {
	case "authorization", "cookie", "proxy-authorization":
		return nil, fmt.Errorf("header %s carries credentials; pick another name", name)
	}
	return &IdentityForward{header: textproto.CanonicalMIMEHeaderKey(name), claims: c.Claims}, nil
}

// IdentityHeader names the header, for the gateway to strip from clients.
func (p *IdentityForward) IdentityHeader() string { return p.header }

type identityJSON struct {
	Consumer string         `json:"consumer,omitempty"`
	Methods  []string       `json:"methods"`
	Claims   map[string]any `json:"claims,omitempty"`
}

// Wrap implements Policy.
func (p *IdentityForward) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delete(r.Header, p.header)
		if x := ExchangeOf(r); x != nil {
			v := identityJSON{Consumer: x.Identity.Consumer, Methods: x.Identity.Methods}
			if v.Methods == nil {
				v.Methods = []string{}
			}
			for _, c := range p.claims {
				if val, ok := x.Identity.Claims[c]; ok {
					if v.Claims == nil {
						v.Claims = map[string]any{}
					}
					v.Claims[c] = val
				}
			}
			b, err := json.Marshal(v)
			if err == nil {
				r.Header[p.header] = []string{ASCIIJSON(b)}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ASCIIJSON escapes every rune of valid JSON text b that is not printable
// ASCII, so that it is a valid header value. json.Marshal already escapes control characters and replaces
// invalid UTF-8 with U+FFFD.
func ASCIIJSON(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	const hexDigits = "0123456789abcdef"
	for _, r := range string(b) {
		if r < 0x7f {
			sb.WriteRune(r)
			continue
		}
		units := []rune{r}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			units = []rune{r1, r2}
		}
		for _, u := range units {
			sb.WriteString(`\u`)
			sb.WriteByte(hexDigits[u>>12&0xf])
			sb.WriteByte(hexDigits[u>>8&0xf])
			sb.WriteByte(hexDigits[u>>4&0xf])
			sb.WriteByte(hexDigits[u&0xf])
		}
	}
	return sb.String()
}
