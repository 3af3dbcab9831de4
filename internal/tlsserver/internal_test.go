package tlsserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

func TestEventLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	e := newEventLimiter(2)
	e.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false, false, false} {
		if ok, _ := e.allow(); ok != want {
			t.Fatalf("event %d: allow = %v, want %v", i, ok, want)
		}
	}
	now = now.Add(time.Second)
	if ok, suppressed := e.allow(); !ok || suppressed != 3 {
		t.Fatalf("next window: allow = %v, suppressed = %d; want true, 3", ok, suppressed)
	}
	if _, suppressed := e.allow(); suppressed != 0 {
		t.Fatalf("suppressed reported twice")
	}
	now = now.Add(-time.Hour) // a clock stepping back opens a new window
	if ok, _ := e.allow(); !ok {
		t.Fatal("clock step back blocked events")
	}
}

// TestClassify covers errors that real-handshake tests do not produce.
func TestClassify(t *testing.T) {
	remote := func(text string) error {
		return &net.OpError{Op: "remote error", Err: errors.New(text)}
	}
	tests := []struct {
		err  error
		want string
	}{
		{io.EOF, ReasonEOF},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ReasonEOF},
		{context.DeadlineExceeded, ReasonTimeout},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ReasonNotTLS},
		{tls.RecordHeaderError{Msg: "unsupported SSLv2 handshake received"}, ReasonProtocolVersion},
		{remote("tls: bad certificate"), ReasonPeerRejectedCertificate},
		{remote("tls: unknown certificate authority"), ReasonPeerRejectedCertificate},
		{remote("tls: protocol version not supported"), ReasonProtocolVersion},
		{remote("tls: user canceled"), ReasonPeerAlert},
		{errors.New("tls: client using inappropriate protocol fallback"), ReasonInappropriateFallback},
		{errors.New("tls: peer doesn't support any of the certificate's signature algorithms"), ReasonNoSharedSignature},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}}, ReasonBadCertificate},
		{errors.New("tls: invalid signature by the client certificate: x"), ReasonBadCertificate},
		{errors.New("something else"), ReasonOther},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h…" {
		t.Errorf("truncate split a rune: %q", got)
	}
	if got := truncate("abc", 3); got != "abc" {
		t.Errorf("truncate(abc, 3) = %q", got)
	}
}
