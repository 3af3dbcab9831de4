package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"strings"
)

// The key format. See the package documentation for the grammar.
const (
	// Prefix starts every key: it tells people and secret scanners what
	// the string is.
	Prefix = "wdn_"
	// LookupIDLen is the length of the lookup id, in base62 digits
	// (71 bits, random, not secret).
	LookupIDLen = 12
	// SecretLen is the length of the secret, in base62 digits: 43 digits
	// carry 256.03 bits.
	SecretLen = 43
	// ChecksumLen is the length of the checksum: CRC-32 in base62,
	// zero-padded.
	ChecksumLen = 6
	// Len is the length of every key.
	Len = len(Prefix) + LookupIDLen + 1 + SecretLen + 1 + ChecksumLen
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed is wrapped by every Parse error: the string is not a
// well-formed key, or its checksum does not match (a typo, a truncation).
var ErrMalformed = errors.New("malformed API key")

// Key is an API key. Its zero value is not a key.
//
// A Key never prints its secret: String, the fmt verbs, slog and GoString
// all give the redacted form "wdn_<lookup id>_…". Reveal returns the key
// text, for showing once to its owner.
type Key struct {
	id     string
	secret string
}

// Generate returns a new random key: a fresh lookup id and a 256-bit
// secret from crypto/rand.
func Generate() (Key, error) { return generate(rand.Reader) }

// generate draws the key's digits from r, uniformly (bytes from 248 up are
// rejected, so that every digit has probability 1/62).
func generate(r io.Reader) (Key, error) {
	digits := make([]byte, 0, LookupIDLen+SecretLen)
	var buf [64]byte
	for len(digits) < cap(digits) {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return Key{}, fmt.Errorf("generate API key: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(digits) < cap(digits) {
				digits = append(digits, base62[b%62])
			}
		}
	}
	return Key{id: string(digits[:LookupIDLen]), secret: string(digits[LookupIDLen:])}, nil
}

// Parse checks s against the key grammar and its checksum. It needs no
// store: a mistyped, truncated or invented key is refused here. Errors wrap
// ErrMalformed and never quote s.
func Parse(s string) (Key, error) {
	if len(s) != Len {
		return Key{}, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(s), Len)
	}
	if !strings.HasPrefix(s, Prefix) {
		return Key{}, fmt.Errorf("%w: does not start with %q", ErrMalformed, Prefix)
	}
	idEnd := len(Prefix) + LookupIDLen
	secretEnd := idEnd + 1 + SecretLen
	if s[idEnd] != '_' || s[secretEnd] != '_' {
		return Key{}, fmt.Errorf("%w: separators misplaced", ErrMalformed)
	}
	id, secret, sum := s[len(Prefix):idEnd], s[idEnd+1:secretEnd], s[secretEnd+1:]
	if !isBase62(id) || !isBase62(secret) || !isBase62(sum) {
		return Key{}, fmt.Errorf("%w: a character outside [0-9A-Za-z]", ErrMalformed)
	}
	// The checksum is public (it is derived from the key text), so a
	// plain comparison leaks nothing.
	if sum != checksum(s[:secretEnd]) {
		return Key{}, fmt.Errorf("%w: checksum mismatch", ErrMalformed)
	}
	return Key{id: id, secret: secret}, nil
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// checksum is the CRC-32 (IEEE) of body in ChecksumLen base62 digits,
// most significant first, zero-padded.
func checksum(body string) string {
	v := uint64(crc32.ChecksumIEEE([]byte(body)))
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// IsZero reports whether k is the zero Key (not a key).
func (k Key) IsZero() bool { return k.id == "" }

// LookupID returns the key's public lookup id: the id of its store record,
// safe to log.
func (k Key) LookupID() string { return k.id }

// Reveal returns the full key text. Show it to its owner once, after the
// record is committed; never log it.
func (k Key) Reveal() string {
	if k.IsZero() {
		return ""
	}
	body := Prefix + k.id + "_" + k.secret
	return body + "_" + checksum(body)
}

// Hash returns the SHA-256 digest of the key's secret, which is what the
// store keeps.
func (k Key) Hash() []byte {
	sum := sha256.Sum256([]byte(k.secret))
	return sum[:]
}

// String returns the redacted key: prefix and lookup id only.
func (k Key) String() string {
	if k.IsZero() {
		return "<no key>"
	}
	return Prefix + k.id + "_…"
}

// GoString returns the redacted key, for %#v.
func (k Key) GoString() string { return "apikey.Key(" + k.String() + ")" }

// Format prints the redacted key under every fmt verb.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, k.GoString())
		return
	}
	_, _ = io.WriteString(f, k.String())
}

// LogValue logs the redacted key.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

var (
	_ fmt.Formatter  = Key{}
	_ fmt.GoStringer = Key{}
	_ slog.LogValuer = Key{}
)
