package mtls_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A small RFC 9651 parser for the two shapes RFC 9440 uses: a byte
// sequence (Client-Cert) and a list of byte sequences (Client-Cert-Chain).
// Strict: canonical padded base64 only.

// parseBinaryItem parses ":" base64 ":" at the start of s and returns the
// bytes and the rest of s.
func parseBinaryItem(s string) ([]byte, string, error) {
	if !strings.HasPrefix(s, ":") {
		return nil, s, errors.New("byte sequence must start with ':'")
	}
	end := strings.IndexByte(s[1:], ':')
	if end < 0 {
		return nil, s, errors.New("byte sequence has no closing ':'")
	}
	b64 := s[1 : 1+end]
	for i := 0; i < len(b64); i++ {
		c := b64[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, s, fmt.Errorf("byte %q outside base64", c)
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, s, err
	}
	return b, s[2+end:], nil
}

// parseSFBinaryField parses a whole field value holding one byte sequence.
func parseSFBinaryField(v string) ([]byte, error) {
	b, rest, err := parseBinaryItem(strings.Trim(v, " "))
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("trailing %q", rest)
	}
	return b, nil
}

// parseSFListField parses a whole field value holding a list of byte
// sequences (RFC 9651 §4.2.1, members without parameters).
func parseSFListField(v string) ([][]byte, error) {
	s := strings.Trim(v, " ")
	var out [][]byte
	for s != "" {
		b, rest, err := parseBinaryItem(s)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		s = strings.TrimLeft(rest, " \t")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("expected ',' at %q", s)
		}
		s = strings.TrimLeft(s[1:], " \t")
		if s == "" {
			return nil, errors.New("trailing comma")
		}
	}
	return out, nil
}

func parseSFBinary(t testing.TB, v string) []byte {
	t.Helper()
	b, err := parseSFBinaryField(v)
	if err != nil {
		t.Fatalf("parse %q: %v", v, err)
	}
	return b
}

func parseSFList(t testing.TB, v string) [][]byte {
	t.Helper()
	bs, err := parseSFListField(v)
	if err != nil {
		t.Fatalf("parse %q: %v", v, err)
	}
	return bs
}
