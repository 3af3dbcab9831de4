package framing

import "github.com/wardengw/warden/internal/httpsyntax"

var (
	sp   = []byte{' '}
	semi = []byte{';'}
)

// trimCRLF strips the line's CRLF; ok is false for a bare LF ending.
func trimCRLF(line []byte) (l []byte, ok bool) {
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return nil, false
	}
	return line[:n-2], true
}

// fieldLine splits "name:value CRLF" and checks it strictly: token name
// right before the colon, valid value bytes, no obs-fold, CRLF ending.
// The value is returned without surrounding SP/HTAB.
func fieldLine(line []byte) (name, value []byte, ok bool) {
	l, ok := trimCRLF(line)
	if !ok || len(l) == 0 {
		return nil, nil, false
	}
	i := 0
	for i < len(l) && httpsyntax.IsTokenByte(l[i]) {
		i++
	}
	if i == 0 || i == len(l) || l[i] != ':' { // also obs-fold and "name :"
		return nil, nil, false
	}
	v := l[i+1:]
	for _, b := range v {
		if !httpsyntax.IsValueByte(b) {
			return nil, nil, false
		}
	}
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return l[:i], v, true
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hex parses a chunk size as net/http does: 1 to 16 hex digits.
func hex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}
