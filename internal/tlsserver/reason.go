package tlsserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Stable reason codes of failed handshakes, used in audit events.
const (
	ReasonProtocolVersion         = "protocol_version"          // client offered no allowed version
	ReasonInappropriateFallback   = "inappropriate_fallback"    // TLS_FALLBACK_SCSV: a downgrade attempt
	ReasonNoSharedCipher          = "no_shared_cipher"          // no allowed cipher suite in common
	ReasonNoSharedGroup           = "no_shared_group"           // no allowed key exchange in common
	ReasonNoSharedSignature       = "no_shared_signature"       // no certificate the client can verify
	ReasonNoApplicationProtocol   = "no_application_protocol"   // ALPN mismatch
	ReasonNoClientCertificate     = "no_client_certificate"     // mTLS required, none sent
	ReasonBadCertificate          = "bad_certificate"           // client certificate invalid
	ReasonUnknownAuthority        = "unknown_authority"         // client certificate from an untrusted CA
	ReasonExpiredCertificate      = "expired_certificate"       // client certificate expired or not yet valid
	ReasonPeerRejectedCertificate = "peer_rejected_certificate" // the client refused our certificate
	ReasonPeerAlert               = "peer_alert"                // the client aborted with another alert
	ReasonTimeout                 = "timeout"                   // handshake not done within HandshakeTimeout
	ReasonEOF                     = "eof"                       // the client went away
	ReasonNotTLS                  = "not_tls"                   // not a TLS record (e.g. plain HTTP)
	ReasonOther                   = "other"
)

// errorReasons maps fragments of crypto/tls server error texts, which have
// no types, to reasons. TestClassify pins them against real handshakes.
var errorReasons = []struct{ fragment, reason string }{
	{"client offered only unsupported versions", ReasonProtocolVersion},
	{"unsupported SSLv2 handshake", ReasonProtocolVersion},
	{"client offered TLS version older than TLS 1.3", ReasonProtocolVersion},
	{"inappropriate protocol fallback", ReasonInappropriateFallback},
	{"no cipher suite supported by both", ReasonNoSharedCipher},
	{"no key exchanges supported by both", ReasonNoSharedGroup},
	{"no ECDHE curve", ReasonNoSharedGroup},
	{"signature algorithms", ReasonNoSharedSignature},
	{"unsupported application protocols", ReasonNoApplicationProtocol},
	{"did not request an application protocol", ReasonNoApplicationProtocol},
	{"client didn't provide a certificate", ReasonNoClientCertificate},
	{"client certificate", ReasonBadCertificate},
	{"client sent certificate", ReasonBadCertificate},
}

// peerAlertReasons maps the text of alerts received from the client.
var peerAlertReasons = map[string]string{
	"tls: bad certificate":                 ReasonPeerRejectedCertificate,
	"tls: unsupported certificate":         ReasonPeerRejectedCertificate,
	"tls: revoked certificate":             ReasonPeerRejectedCertificate,
	"tls: expired certificate":             ReasonPeerRejectedCertificate,
	"tls: unknown certificate":             ReasonPeerRejectedCertificate,
	"tls: unknown certificate authority":   ReasonPeerRejectedCertificate,
	"tls: protocol version not supported":  ReasonProtocolVersion,
	"tls: insufficient security level":     ReasonNoSharedCipher,
	"tls: no application protocol":         ReasonNoApplicationProtocol,
	"tls: inappropriate fallback":          ReasonInappropriateFallback,
	"tls: bad certificate hash value":      ReasonPeerRejectedCertificate,
	"tls: bad certificate status response": ReasonPeerRejectedCertificate,
}

// classify returns the reason code of a server handshake error.
func classify(err error) string {
	if re, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		if strings.Contains(re.Msg, "SSLv2") {
			return ReasonProtocolVersion
		}
		return ReasonNotTLS
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return ReasonTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ReasonTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return ReasonEOF
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "remote error" && oe.Err != nil {
		if r, ok := peerAlertReasons[oe.Err.Error()]; ok {
			return r
		}
		return ReasonPeerAlert
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return ReasonUnknownAuthority
	}
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok && ci.Reason == x509.Expired {
		return ReasonExpiredCertificate
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return ReasonBadCertificate
	}
	msg := err.Error()
	for _, r := range errorReasons {
		if strings.Contains(msg, r.fragment) {
			return r.reason
		}
	}
	return ReasonOther
}
