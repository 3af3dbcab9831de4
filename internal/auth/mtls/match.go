package mtls

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Match selects certificates. Every key given must match (AND); a Match
// with no key is a config error. A list of Matches (allow, consumers)
// matches when any one of them does (OR).
type Match struct {
	// SPIFFEID is a SPIFFE ID pattern, "spiffe://<trust domain>/<path>":
	// the trust domain is exact; in the path, a "*" segment matches exactly
	// one segment and a final "**" one or more. A certificate has a SPIFFE
	// ID when its only URI SAN is one (the X.509-SVID rule).
	SPIFFEID string `yaml:"spiffe_id"`
	// Subject matches fields of the leaf's subject; see SubjectMatch.
	Subject *SubjectMatch `yaml:"subject"`
	// DNS matches any DNS SAN: exact, or "*.<domain>" for exactly one
	// label below <domain>. Case-insensitive.
	DNS string `yaml:"dns"`
	// URI matches any URI SAN exactly.
	URI string `yaml:"uri"`
	// Email matches any email SAN: exact, or "*@<domain>" for any mailbox
	// at exactly <domain>. The domain is case-insensitive.
	Email string `yaml:"email"`
	// Consumer matches the request's consumer name (after the consumers
	// mapping). Only in allow rules.
	Consumer string `yaml:"consumer"`
	// SPKISHA256 is the standard base64 SHA-256 of the leaf's
	// SubjectPublicKeyInfo ("sha256/" prefix optional), compared in
	// constant time.
	SPKISHA256 string `yaml:"spki_sha256"`
	// Serial is the leaf's serial number in hex (colons allowed). Serials
	// are unique per issuer only: combine with a subject or SAN key when the
	// bundle holds several CAs.
	Serial string `yaml:"serial"`
}

// SubjectMatch matches the leaf's subject. Each given field is a simple
// glob ("*" matches any run of characters, everything else is literal,
// case-sensitive); O and OU match when any of the subject's values does.
type SubjectMatch struct {
	CN string `yaml:"cn"`
	O  string `yaml:"o"`
	OU string `yaml:"ou"`
}

// facts are what matchers look at: derived once per verified chain.
type facts struct {
	leaf     *x509.Certificate
	spiffe   spiffeID // zero when the leaf has no SPIFFE ID
	spki     [sha256.Size]byte
	consumer string // set per request: the consumer after mapping
}

func newFacts(leaf *x509.Certificate) facts {
	f := facts{leaf: leaf, spki: sha256.Sum256(leaf.RawSubjectPublicKeyInfo)}
	if len(leaf.URIs) == 1 && leaf.URIs[0].Scheme == "spiffe" {
		f.spiffe, _ = parseSPIFFEID(leaf.URIs[0].String(), false)
	}
	return f
}

// matcher is a compiled Match: every test must pass.
type matcher []func(*facts) bool

func (m matcher) match(f *facts) bool {
	for _, t := range m {
		if !t(f) {
			return false
		}
	}
	return true
}

// anyMatch reports whether any of ms matches.
func anyMatch(ms []matcher, f *facts) bool {
	for _, m := range ms {
		if m.match(f) {
			return true
		}
	}
	return false
}

// compileMatch parses m once, at config time. path prefixes its errors.
func compileMatch(m Match, path string, allowConsumer bool) (matcher, error) {
	var out matcher
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("%s.%s: %w", path, key, err)) }
	if m.SPIFFEID != "" {
		p, err := parseSPIFFEID(m.SPIFFEID, true)
		if err != nil {
			bad("spiffe_id", err)
		}
		out = append(out, func(f *facts) bool { return p.matches(f.spiffe) })
	}
	if s := m.Subject; s != nil {
		if s.CN == "" && s.O == "" && s.OU == "" {
			bad("subject", errors.New("give at least one of cn, o, ou"))
		}
		if s.CN != "" {
			g := compileGlob(s.CN)
			out = append(out, func(f *facts) bool { return g.match(f.leaf.Subject.CommonName) })
		}
		if s.O != "" {
			g := compileGlob(s.O)
			out = append(out, func(f *facts) bool { return g.matchAny(f.leaf.Subject.Organization) })
		}
		if s.OU != "" {
			g := compileGlob(s.OU)
			out = append(out, func(f *facts) bool { return g.matchAny(f.leaf.Subject.OrganizationalUnit) })
		}
	}
	if m.DNS != "" {
		p, err := parseDNSPattern(m.DNS)
		if err != nil {
			bad("dns", err)
		}
		out = append(out, func(f *facts) bool { return p.matchAny(f.leaf.DNSNames) })
	}
	if m.URI != "" {
		want := m.URI
		out = append(out, func(f *facts) bool {
			for _, u := range f.leaf.URIs {
				if u.String() == want {
					return true
				}
			}
			return false
		})
	}
	if m.Email != "" {
		p, err := parseEmailPattern(m.Email)
		if err != nil {
			bad("email", err)
		}
		out = append(out, func(f *facts) bool { return p.matchAny(f.leaf.EmailAddresses) })
	}
	if m.Consumer != "" {
		if !allowConsumer {
			bad("consumer", errors.New("a consumer can only be matched in allow rules"))
		}
		want := m.Consumer
		out = append(out, func(f *facts) bool { return f.consumer == want })
	}
	if m.SPKISHA256 != "" {
		want, err := parseSPKI(m.SPKISHA256)
		if err != nil {
			bad("spki_sha256", err)
		}
		out = append(out, func(f *facts) bool { return subtle.ConstantTimeCompare(want[:], f.spki[:]) == 1 })
	}
	if m.Serial != "" {
		want, err := parseSerial(m.Serial)
		if err != nil {
			bad("serial", err)
		}
		out = append(out, func(f *facts) bool { return f.leaf.SerialNumber != nil && f.leaf.SerialNumber.Cmp(want) == 0 })
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: a match needs at least one key (spiffe_id, subject, dns, uri, email, consumer, spki_sha256, serial)", path))
	}
	return out, errors.Join(errs...)
}

// spiffeID is a parsed SPIFFE ID, or an ID pattern whose segments may be
// "*" (one segment) and, last, "**" (one or more).
type spiffeID struct {
	td   string // trust domain; "" for none
	segs []string
}

// matches reports whether the pattern p matches the ID id.
func (p spiffeID) matches(id spiffeID) bool {
	if id.td == "" || id.td != p.td {
		return false
	}
	for i, s := range p.segs {
		if s == "**" {
			return len(id.segs) > i
		}
		if i >= len(id.segs) || (s != "*" && s != id.segs[i]) {
			return false
		}
	}
	return len(id.segs) == len(p.segs)
}

// parseSPIFFEID parses a SPIFFE ID as the SPIFFE spec defines it (lowercase
// trust domain of [a-z0-9.-_], path segments of [a-zA-Z0-9.-_], no empty,
// "." or ".." segment, no trailing slash, no query, fragment, port or
// userinfo). As a pattern, a segment may also be "*", and the last "**".
func parseSPIFFEID(s string, pattern bool) (spiffeID, error) {
	const scheme = "spiffe://"
	if len(s) > 2048 {
		return spiffeID{}, errors.New("longer than 2048 bytes")
	}
	rest, ok := strings.CutPrefix(s, scheme)
	if !ok {
		return spiffeID{}, fmt.Errorf("%q does not start with %s", s, scheme)
	}
	td, path, hasPath := strings.Cut(rest, "/")
	if td == "" || !allBytes(td, isTrustDomainByte) {
		return spiffeID{}, fmt.Errorf("%q: the trust domain must be lowercase letters, digits, '.', '-', '_' (no wildcards)", s)
	}
	id := spiffeID{td: td}
	if !hasPath {
		return id, nil
	}
	id.segs = strings.Split(path, "/")
	for i, seg := range id.segs {
		switch {
		case pattern && seg == "*":
		case pattern && seg == "**":
			if i != len(id.segs)-1 {
				return spiffeID{}, fmt.Errorf("%q: \"**\" may only be the last segment", s)
			}
		case seg == "" || seg == "." || seg == "..":
			return spiffeID{}, fmt.Errorf("%q: empty, \".\" or \"..\" path segment", s)
		case !allBytes(seg, isPathByte):
			return spiffeID{}, fmt.Errorf("%q: path segments are letters, digits, '.', '-', '_'%s", s,
				map[bool]string{true: `, or a whole "*" or final "**" segment`}[pattern])
		}
	}
	return id, nil
}

func isTrustDomainByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == '_'
}

func isPathByte(b byte) bool {
	return isTrustDomainByte(b) || 'A' <= b && b <= 'Z'
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// glob is a simple glob: the literal pieces between "*"s.
type glob []string

func compileGlob(s string) glob { return strings.Split(s, "*") }

func (g glob) match(s string) bool {
	if len(g) == 1 {
		return s == g[0]
	}
	first, last := g[0], g[len(g)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, piece := range g[1 : len(g)-1] { // leftmost-first is exact for "*"-only globs
		i := strings.Index(s, piece)
		if i < 0 {
			return false
		}
		s = s[i+len(piece):]
	}
	return true
}

func (g glob) matchAny(ss []string) bool {
	for _, s := range ss {
		if g.match(s) {
			return true
		}
	}
	return false
}

// dnsPattern is an exact DNS name or "*." + a domain.
type dnsPattern struct {
	wildcard bool
	name     string // lowercase, without the "*." and any final dot
}

func parseDNSPattern(s string) (dnsPattern, error) {
	p := dnsPattern{name: strings.ToLower(strings.TrimSuffix(s, "."))}
	p.name, p.wildcard = strings.CutPrefix(p.name, "*.")
	for _, label := range strings.Split(p.name, ".") {
		if label == "" || !allBytes(label, func(b byte) bool { return isTrustDomainByte(b) && b != '.' }) {
			return p, fmt.Errorf("%q: want a DNS name, or \"*.\" and a domain (a wildcard only as the whole leftmost label)", s)
		}
	}
	return p, nil
}

func (p dnsPattern) match(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if !p.wildcard {
		return name == p.name
	}
	label, rest, ok := strings.Cut(name, ".")
	return ok && label != "" && label != "*" && rest == p.name
}

func (p dnsPattern) matchAny(names []string) bool {
	for _, n := range names {
		if p.match(n) {
			return true
		}
	}
	return false
}

// emailPattern is an exact address or "*@" + a domain.
type emailPattern struct {
	local  string // "*" for any
	domain string
}

func parseEmailPattern(s string) (emailPattern, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 || strings.Contains(s[i+1:], "*") || (strings.Contains(s[:i], "*") && s[:i] != "*") {
		return emailPattern{}, fmt.Errorf("%q: want an email address, or \"*@\" and a domain", s)
	}
	return emailPattern{local: s[:i], domain: s[i+1:]}, nil
}

func (p emailPattern) matchAny(addrs []string) bool {
	for _, a := range addrs {
		i := strings.LastIndexByte(a, '@')
		if i > 0 && (p.local == "*" || a[:i] == p.local) && strings.EqualFold(a[i+1:], p.domain) {
			return true
		}
	}
	return false
}

// parseSPKI parses a base64 SHA-256 SPKI digest, with or without "sha256/".
func parseSPKI(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(s, "sha256/"))
	if err != nil {
		return d, fmt.Errorf("%q: not standard base64: %w", s, err)
	}
	if len(raw) != sha256.Size {
		return d, fmt.Errorf("%q: %d bytes, a SHA-256 digest has %d", s, len(raw), sha256.Size)
	}
	copy(d[:], raw)
	return d, nil
}

// parseSerial parses a hex serial number; colons and a 0x prefix are allowed.
func parseSerial(s string) (*big.Int, error) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || h == "" || strings.ContainsAny(h, "+-") {
		return nil, fmt.Errorf("%q: want a hex serial number", s)
	}
	return n, nil
}
