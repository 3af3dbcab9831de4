package enroll

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// TokenPrefix starts every enrollment token, so that a leaked one is
// recognisable (secret scanners) and a wrong credential is refused
// without a store lookup.
const TokenPrefix = "wenr_"

// tokenLen is the length of a token: the prefix and 32 bytes in unpadded
// base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// MaxTokenTTL bounds the lifetime of an enrollment token.
const MaxTokenTTL = 30 * 24 * time.Hour

// Constraints are what a certificate obtained with a token may name, and
// whom the token is for. A CSR may ask for any subset of the names; it may
// not ask for an IP address or email SAN, nor for a common name other
// than CommonName.
type Constraints struct {
	// Consumer is whom the token is for (recorded; required).
	Consumer string
	// CommonName is the only common name allowed; empty for none.
	CommonName string
	// DNSNames are the DNS SANs allowed, matched exactly (ignoring case;
	// no wildcard matching).
	DNSNames []string
	// URIs are the URI SANs allowed (SPIFFE IDs, typically), matched
	// exactly after parsing.
	URIs []string
}

// TokenStore records tokens; *store.Store satisfies it.
type TokenStore interface {
	CreateEnrollToken(ctx context.Context, t store.EnrollToken) error
}

var _ TokenStore = (*store.Store)(nil)

// record validates c and returns it as a store record (without hash and
// times).
func (c Constraints) record() (store.EnrollToken, error) {
	rec := store.EnrollToken{Consumer: c.Consumer, CommonName: c.CommonName}
	if strings.TrimSpace(c.Consumer) == "" || strings.ContainsAny(c.Consumer, "\r\n") {
		return rec, errors.New("enrollment token: empty consumer or one with a line break")
	}
	if strings.ContainsAny(c.CommonName, "\r\n") {
		return rec, errors.New("enrollment token: common name contains a line break")
	}
	for _, d := range c.DNSNames {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if d == "" || strings.ContainsAny(d, " \t\r\n/") {
			return rec, fmt.Errorf("enrollment token: DNS name %q is not a host name", d)
		}
		rec.Names = append(rec.Names, "dns:"+d)
	}
	for _, s := range c.URIs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || strings.ContainsAny(s, " \t\r\n") {
			return rec, fmt.Errorf("enrollment token: URI %q is not an absolute URI", s)
		}
		rec.Names = append(rec.Names, "uri:"+u.String())
	}
	if c.CommonName == "" && len(rec.Names) == 0 {
		return rec, errors.New("enrollment token: allows no name (set a common name, DNS names or URIs)")
	}
	return rec, nil
}

// CreateToken makes a one-time enrollment token for c, created at now (the
// caller's clock) and valid for ttl (at most MaxTokenTTL), records its hash
// in st and returns it. The token is returned only once its record is
// committed; it cannot be recovered afterwards.
func CreateToken(ctx context.Context, st TokenStore, c Constraints, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", fmt.Errorf("enrollment token: lifetime %v: want more than 0 and at most %v", ttl, MaxTokenTTL)
	}
	rec, err := c.record()
	if err != nil {
		return "", err
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("enrollment token: %w", err)
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	rec.Hash, rec.CreatedAt, rec.ExpiresAt = HashToken(tok), now, now.Add(ttl)
	if err := st.CreateEnrollToken(ctx, rec); err != nil {
		return "", err
	}
	return tok, nil
}

// HashToken is what the store keeps of a token: the lowercase hex SHA-256
// of the whole token string.
func HashToken(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// wellFormed reports whether tok looks like a token CreateToken makes.
func wellFormed(tok string) bool {
	if len(tok) != tokenLen || !strings.HasPrefix(tok, TokenPrefix) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok[len(TokenPrefix):])
	return err == nil && len(b) == 32
}
