package stepup

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 with the defaults authenticator apps assume).
const (
	// SecretSize is the size of a TOTP secret: 160 bits, the HMAC-SHA1
	// output size RFC 4226 recommends.
	SecretSize = 20
	// Digits is the number of digits of a code.
	Digits = 6
	// Period is the length of a time step.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one are
	// accepted, for clock drift and typing time.
	Skew = 1
)

// ErrCodeMalformed: the code is not exactly Digits ASCII digits.
var ErrCodeMalformed = errors.New("totp code: want 6 digits")

// NewSecret draws a TOTP secret from crypto/rand.
func NewSecret() ([]byte, error) { return newSecret(rand.Reader) }

func newSecret(r io.Reader) ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	return b, nil
}

// Step returns the time step of t: Unix seconds divided by the period.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// hotp is RFC 4226 HOTP with HMAC-SHA1: the digits-long decimal code of
// counter, zero-padded, written into dst (len(dst) == digits).
func hotp(secret []byte, counter uint64, dst []byte) {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	var buf [sha1.Size]byte
	sum := m.Sum(buf[:0])
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// Code returns the 6-digit TOTP code of secret for time step step.
func Code(secret []byte, step int64) string {
	var c [Digits]byte
	hotp(secret, uint64(step), c[:])
	return string(c[:])
}

// ParseCode returns the code of a header value: exactly 6 ASCII digits,
// surrounding spaces and tabs trimmed; ErrCodeMalformed otherwise.
func ParseCode(s string) (string, error) {
	s = strings.Trim(s, " \t")
	if len(s) != Digits {
		return "", ErrCodeMalformed
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", ErrCodeMalformed
		}
	}
	return s, nil
}

// Match returns the time step, among those within Skew of now's, whose
// code equals code, and whether there is one. Every candidate is computed
// and compared in constant time, whichever matches; if several match (a
// one-in-a-million coincidence), the latest wins.
func Match(secret []byte, code string, now time.Time) (step int64, ok bool) {
	cur := Step(now)
	var c [Digits]byte
	for s := cur - Skew; s <= cur+Skew; s++ {
		hotp(secret, uint64(s), c[:])
		if subtle.ConstantTimeCompare(c[:], []byte(code)) == 1 {
			step, ok = s, true
		}
	}
	return step, ok
}

// EncodeSecret returns the secret as authenticator apps take it: base32
// without padding.
func EncodeSecret(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// URI returns the otpauth:// URI of an enrollment (the Key Uri Format of
// Google Authenticator, which every authenticator app reads, e.g. from a
// QR code): label "issuer:account", SHA1, 6 digits, 30 seconds.
func URI(issuer, account string, secret []byte) string {
	q := url.Values{}
	q.Set("secret", EncodeSecret(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", "30")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return u.String()
}
