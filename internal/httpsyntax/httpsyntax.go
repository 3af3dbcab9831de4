// Package httpsyntax holds the byte-level pieces of HTTP/1.1 message
// syntax shared by Warden's lean parsers (internal/h1server for requests,
// internal/proxy for upstream responses): the byte classes of a header
// section, field-name canonicalisation and value trimming, each as
// net/textproto does them for the bytes it accepts. The parsers accept
// only a strict subset of what net/http accepts and hand everything else
// to net/http; their fuzz tests hold them to net/http's results.
package httpsyntax

import (
	"encoding/binary"
	"math/bits"
	"net/http"
	"strings"
)

var (
	// lineByte: what a header-section line may hold: VCHAR, SP, HT and
	// obs-text (textproto's validHeaderValueByte); no CR, LF, other
	// control bytes or DEL.
	lineByte [256]bool
	// tokenByte: what a token (a method, a field name) may hold: RFC
	// 9110 tchar.
	tokenByte [256]bool
)

func init() {
	for c := 0; c < 256; c++ {
		lineByte[c] = c == '\t' || c >= ' ' && c != 0x7f
		tokenByte[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
}

// IsTokenByte reports whether b may appear in a token (a method, a field
// name): RFC 9110 tchar, what net/textproto accepts in names.
func IsTokenByte(b byte) bool { return tokenByte[b] }

// IsValueByte reports whether b may appear in a field value: VCHAR,
// obs-text, SP and HTAB, what net/textproto accepts in values.
func IsValueByte(b byte) bool { return lineByte[b] }

// ParseLength parses a Content-Length of 1 to 18 decimal digits and nothing
// else (no sign, no space, no comma); ok is false for anything else. 18
// digits keep it below 2^63.
func ParseLength[T string | []byte](v T) (n int64, ok bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// HeaderSection returns the length of the start line and header section
// at the start of buf, up to and including the CRLF of its last line
// (the empty line's CRLF follows), and its number of lines, start line
// included. ok is false if buf does not hold the whole section, or if
// a line does not end in CRLF or holds a control byte other than HT, or
// DEL: such input is left to net/http.
func HeaderSection(buf []byte) (n, lines int, ok bool) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	start := 0 // of the current line
	for i := 0; i < len(buf); {
		// Eight bytes at a time: m flags the bytes below 0x20 and DEL.
		// Bytes above a flagged one may be flagged wrongly (borrows), the
		// lowest flagged byte never is: skip to it.
		if i+8 <= len(buf) {
			x := binary.LittleEndian.Uint64(buf[i:])
			del := x ^ 0x7f*ones
			m := (x-0x20*ones)&^x&highs | (del-ones)&^del&highs
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		}
		c := buf[i]
		if lineByte[c] {
			i++
			continue
		}
		if c != '\r' || i+1 == len(buf) || buf[i+1] != '\n' {
			return 0, 0, false
		}
		if i == start { // the empty line
			return start, lines, lines > 0
		}
		lines++
		i += 2
		start = i
	}
	return 0, 0, false
}

// IsToken reports whether s is a non-empty token.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return s != ""
}

// CanonicalKey returns the canonical form of the field name (as
// http.CanonicalHeaderKey), without allocating when name already has it,
// the usual case; false if name is not a token.
func CanonicalKey(name string) (string, bool) {
	switch name { // the usual names, canonical tokens already
	case "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie",
		"Connection", "Content-Type", "Content-Length", "Date", "Server", "Cache-Control", "Vary",
		"Etag", "Last-Modified", "Set-Cookie", "X-Request-Id", "X-Forwarded-For":
		return name, true
	}
	upper, canonical := true, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !tokenByte[c] {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if name == "" {
		return "", false
	}
	if !canonical {
		return http.CanonicalHeaderKey(name), true
	}
	return name, true
}

// TrimSPHT trims spaces and tabs at both ends of s, as textproto trims
// field values.
func TrimSPHT(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// EachField calls fn with the canonical key and the trimmed value of each
// field line in s (each ending in CRLF, as HeaderSection checked), in
// order. It returns false at once for a line that is not "token: value",
// or when fn does.
func EachField(s string, fn func(key, value string) bool) bool {
	for s != "" {
		i := strings.IndexByte(s, '\r')
		line := s[:i]
		s = s[i+2:]
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return false
		}
		key, ok := CanonicalKey(line[:colon])
		if !ok || !fn(key, TrimSPHT(line[colon+1:])) {
			return false
		}
	}
	return true
}

// Fields parses the header section's field lines in s (each ending in
// CRLF, as HeaderSection checked) into h. The values are stored in vals,
// the caller's backing array, which must hold a string for every line of
// s (the caller passes one it allocated with the message, so that the
// values cost no allocation of their own); see Add. visit sees each
// canonical key and its trimmed value before it is stored; false from
// visit, or a line that is not "token: value", makes Fields return false.
func Fields(s string, h http.Header, vals []string, visit func(key, value string) bool) bool {
	return EachField(s, func(key, v string) bool {
		if !visit(key, v) {
			return false
		}
		vals = Add(h, key, v, vals)
		return true
	})
}

// Add adds v to h's values of key: appended to them if key has some,
// else as a one-value slice of vals[0], capped so that a later append
// copies instead of overwriting the next value. It returns what is left
// of vals.
func Add(h http.Header, key, v string, vals []string) []string {
	if vv := h[key]; vv != nil {
		h[key] = append(vv, v)
		return vals
	}
	vals[0] = v
	h[key] = vals[:1:1]
	return vals[1:]
}
