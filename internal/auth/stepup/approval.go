package stepup

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// IDPrefix starts every approval id.
const IDPrefix = "apr_"

// idLen is the length of an approval id: the prefix and 128 random bits
// in lowercase hex.
const idLen = len(IDPrefix) + 32

// NewApprovalID returns a new approval id: IDPrefix and 128 bits from
// crypto/rand, in lowercase hex.
func NewApprovalID() (string, error) { return newApprovalID(rand.Reader) }

func newApprovalID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("approval id: %w", err)
	}
	return IDPrefix + hex.EncodeToString(b[:]), nil
}

// ValidApprovalID reports whether s has the shape of an approval id, so
// that garbage never reaches the store.
func ValidApprovalID(s string) bool {
	if len(s) != idLen || s[:len(IDPrefix)] != IDPrefix {
		return false
	}
	for i := len(IDPrefix); i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Digest returns the request digest an approval is bound to: SHA-256
// over the route name, the method, the request target (escaped path and
// raw query, as the gateway received them after earlier policies) and the
// body, each length-prefixed so that no two requests share an encoding.
func Digest(route, method, target string, body []byte) []byte {
	h := sha256.New()
	var n [8]byte
	for _, f := range [][]byte{[]byte("warden-stepup-v1"), []byte(route), []byte(method), []byte(target), body} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	return h.Sum(nil)
}

// target is the request's path and query.
func target(r *http.Request) string { return r.URL.RequestURI() }

// errBodyTooLarge: the body exceeds the approval limit.
var errBodyTooLarge = errors.New("request body too large to approve")

// readBody buffers the request body up to limit bytes and puts it back
// on the request for the upstream. A declared or actual length over limit
// is errBodyTooLarge; the request is then spent.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return b, nil
}

// refusal says why an approval that exists could not be used for this
// request at now, in the order that leaks least: another consumer's or
// another request's approval says only "mismatch", whatever its state.
// It returns "" when the approval is usable (a race: it was approved
// after the use was attempted), for the caller to ask for a retry.
func refusal(a store.Approval, consumer string, digest []byte, now time.Time) string {
	switch {
	case a.Consumer != consumer || !bytes.Equal(a.Digest, digest):
		return ReasonApprovalMismatch
	case a.State == store.ApprovalUsed:
		return ReasonApprovalUsed
	case a.State == store.ApprovalDenied:
		return ReasonApprovalDenied
	case !now.Before(a.ExpiresAt):
		return ReasonApprovalExpired
	case a.State == store.ApprovalPending:
		return ReasonApprovalPending
	}
	return ""
}

// State returns the approval's state as operators see it at now: its
// stored state, or "expired" for a pending or approved one past its
// deadline.
func State(a store.Approval, now time.Time) string {
	if (a.State == store.ApprovalPending || a.State == store.ApprovalApproved) && !now.Before(a.ExpiresAt) {
		return StateExpired
	}
	return a.State
}

// StateExpired is the state State reports for an approval past its
// deadline that was not denied or used.
const StateExpired = "expired"
