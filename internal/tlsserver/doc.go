// Package tlsserver is Warden's inbound TLS termination layer.
//
// It turns a small, typed policy ([Settings]) into a [tls.Config] that can
// only speak what the threat model allows: TLS 1.3, or TLS 1.2 restricted to
// ECDHE key exchange with AEAD ciphers; post-quantum hybrid key exchange
// (X25519MLKEM768) offered first. Weak choices (SSLv3, TLS 1.0/1.1, CBC, RC4,
// 3DES, static RSA key exchange, P-224, RSA keys under 2048 bits) cannot be
// configured at all: the pure helpers [ParseProfile], [CipherSuiteByName],
// [CurveByName], [CheckCertificate] and [Settings.Validate] reject them with a
// reason, and the config validator uses the same helpers. The server sets
// every security-relevant field of the [tls.Config] explicitly, so its
// behaviour does not depend on GODEBUG settings (tlsrsakex, tls3des,
// tls10server) of the binary.
//
// A [Server] holds the current settings behind an atomic pointer. [Server.Update]
// validates new settings, builds their [tls.Config] once and swaps it in:
// new handshakes use it, open connections are untouched (hot reload). A
// failed update keeps the old settings and says why. Session-ticket keys are
// rotated every Settings.TicketRotation (default 24h); the previous key stays
// valid for decryption for one more period, so a ticket lives at most two
// periods. Ticket keys are per process: nodes of a cluster do not share them,
// so resumption works only against the node that issued the ticket.
//
// [NewListener] wraps a TCP listener and owns the handshake: each accepted
// connection is handshaken in its own goroutine under a timeout, and Accept
// returns only *tls.Conn whose handshake has completed, so a slow or silent
// client never delays others. It caps live connections (MaxConns), counts
// every handshake in telemetry, captures the ClientHello ([ClientHelloOf]),
// and records failed handshakes as rate-limited audit events with a stable
// reason code (see the Reason constants). The listener works with
// [net/http.Server.Serve], including HTTP/2 negotiated by ALPN, when the
// http.Server's TLSConfig is [Server.TLSConfig].
//
// ACME tls-alpn-01 validation (RFC 8737) is answered through
// Settings.ACMEChallenge: a ClientHello whose ALPN list is exactly
// ["acme-tls/1"], on a connection of this package's listener, gets the
// challenge certificate from the hook (or fails if it has none), and the
// listener closes the connection after the handshake instead of returning
// it from Accept, so it never reaches HTTP serving. Such handshakes are
// counted with the result "acme_challenge".
package tlsserver
