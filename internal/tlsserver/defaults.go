package tlsserver

import (
	"crypto/tls"
	"time"
)

// Defaults live here, in one place.
const (
	// DefaultProfile is the profile used when Settings.Profile is empty.
	DefaultProfile = Intermediate
	// DefaultTicketRotation is the session-ticket key rotation period used
	// when Settings.TicketRotation is zero.
	DefaultTicketRotation = 24 * time.Hour
	// DefaultHandshakeTimeout bounds a handshake when
	// ListenerOptions.HandshakeTimeout is zero.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultAuditPerSecond is the number of handshake-failure audit events
	// a listener emits per second when ListenerOptions.AuditPerSecond is zero.
	DefaultAuditPerSecond = 10
)

// DefaultCipherSuites returns the TLS 1.2 cipher suites used when
// Settings.CipherSuites is empty: every suite the policy allows, ECDHE with
// AEAD only. TLS 1.3 suites are fixed by the protocol.
func DefaultCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// DefaultCurves returns the key exchanges used when Settings.Curves is empty:
// the post-quantum hybrid first, then X25519 and P-256. Go 1.24+ ignores the
// order for its own preference; the set is what matters.
func DefaultCurves() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
}

// DefaultNextProtos returns the ALPN protocols used when Settings.NextProtos
// is empty.
func DefaultNextProtos() []string { return []string{"h2", "http/1.1"} }
