package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// result is the outcome of verifying one presented chain against one
// policy's bundle, with what the request path derives from it, computed
// once: a keep-alive request pays a hash and a map lookup.
type result struct {
	expires time.Time
	err     *Error // non-nil: refused (cached for negativeTTL)

	chain      []*x509.Certificate // verified: leaf first, trust anchor last
	facts      facts               // consumer empty: set per request
	consumer   string              // from the consumers mapping, "" if none matched
	certValue  string              // Client-Cert
	chainValue string              // Client-Cert-Chain, "" without intermediates
	identity   string              // identity header for consumer, "" if not configured

	lastSoftFail atomic.Int64 // unix nanoseconds of the last revocation_soft_fail event
}

// cacheKey identifies a presented chain: SHA-256 over each certificate's
// length and DER.
type cacheKey [sha256.Size]byte

func keyOf(presented []*x509.Certificate) cacheKey {
	h := sha256.New()
	var n [4]byte
	for _, c := range presented {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k cacheKey
	h.Sum(k[:0])
	return k
}
