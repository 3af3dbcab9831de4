// Package proxy owns the gateway-to-upstream hop: a reverse proxy per
// upstream whose connections are verified, pinned and pooled, and whose
// forwarding headers are set by the gateway alone.
//
// The hop is a man-in-the-middle target like the client side, so:
//
//   - Upstream TLS is verified by crypto/tls (chain to RootCAs, hostname
//     against ServerName, validity), never skipped, TLS 1.2 minimum with
//     AEAD ECDHE suites only.
//   - When pins are configured, a tls.Config.VerifyConnection hook demands
//     that a certificate of a verified chain carries a pinned SPKI; otherwise
//     the handshake fails with a *PinMismatchError before a request byte is
//     written.
//   - Plain-HTTP upstreams are refused unless explicitly allowed
//     (insecure_plaintext_upstream).
//   - Forwarding headers (X-Forwarded-*, RFC 7239 Forwarded, X-Request-Id)
//     are set by the gateway after hop-by-hop removal (ReverseProxy.Rewrite,
//     or the lean forward path, which writes them last), so a client's
//     Connection header cannot strip them; UpstreamConfig.OmitForward
//     (forward_headers) leaves some out. Client-sent forwarding headers,
//     and their spellings with underscores, are dropped unless the
//     immediate peer is a trusted proxy (dropAlias: an omitted field's
//     from anyone).
//   - The gateway owns Strict-Transport-Security and Alt-Svc: the
//     upstream's are removed from responses.
//   - Every failure is answered through policy.Deny with a stable reason
//     (upstream_pin_mismatch, upstream_tls_verify_failed,
//     upstream_tls_handshake_failed, upstream_timeout,
//     upstream_protocol_error, upstream_connection_closed,
//     upstream_unavailable), an audit event and the
//     warden_upstream_errors_total metric.
//   - The upstream's response is untrusted input. One whose status line
//     or header section cannot be parsed or violates HTTP framing is
//     refused whole, never passed on in part: a *ProtocolError, 502
//     upstream_protocol_error, with the parser's error as the audit
//     event's cause. A body that breaks framing is cut off.
//
// Failures are typed where they are detected, so that both forward paths
// classify alike (Envoy's response flags UF, UC and UPE): no connection
// (refused, unreachable, dropped in the handshake) is upstream_unavailable;
// an established connection the upstream closed or reset before its
// response was complete is upstream_connection_closed (the request may
// have reached it); an invalid response is upstream_protocol_error. The
// lean transport knows which error its connection returned (pconn.failure):
// http.ReadResponse and the body readers pass the reader's errors on as
// they are, so any other error of theirs is their verdict on the bytes.
// net/http's transport (stdTransport) is told apart by a client trace:
// after GotConn the connection was established, after
// GotFirstResponseByte an error that is not the connection's is the
// parser's. A failure after the status line went out can only cut the
// response off; it gets the same reason's audit event and count, with
// "phase": "body" (bodyFailed). A pooled connection the upstream closed
// while idle is resent on a new one only when that is safe (replayable):
// a request that is not replayable is never resent, and on the lean
// transport neither is one whose response was tampered with
// (*ProtocolError); net/http's transport resends a replayable request
// whose response's first byte it could not read, tampered or not.
//
// Each upstream keeps verified connections alive, so a handshake (and its
// verification) is paid once per connection, not once per request. The hop
// speaks HTTP/1.1 by default (UpstreamConfig.HTTP2 opts in to HTTP/2): a
// lean round tripper (transport.go) runs bodiless and small-body exchanges
// in the calling goroutine on its own pool, dialing with the same
// tls.Config and pin check; streaming bodies, 100-continue, upgrades and
// MaxConnsPerHost go to the standard *http.Transport. A pooled connection
// is reused only if the upstream has neither closed it nor sent anything
// since its last response, so a desynchronised upstream cannot answer
// another client's request.
//
// In front of that transport, the lean forward path (lean.go) replaces
// httputil.ReverseProxy for the HTTP/1.x requests the lean transport
// serves: it writes the outbound header block straight from the inbound
// request (no clone, no second canonicalisation) and moves the response
// fields in one pass; TestLeanForwardMatchesStd holds it to what
// ReverseProxy sends and answers. UpstreamConfig.ReverseProxyOnly turns
// it off for comparisons.
package proxy
