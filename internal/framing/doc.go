// Package framing guards server-side HTTP/1.x connections against
// request-smuggling-shaped framing, and hands each rejection to the
// gateway's own handler instead of to net/http's built-in 400 writer.
//
// # Why
//
// net/http repairs ambiguous framing instead of refusing it: with both
// Transfer-Encoding: chunked and Content-Length it drops Content-Length,
// it merges identical duplicate Content-Length fields, it joins obs-fold
// continuation lines and accepts bare-LF line endings. A gateway must refuse
// all of these (as Envoy does), and must refuse them through its one deny
// path (HSTS, problem+json, audit event, metric).
//
// # Design note: where the guard sits
//
// The guard has to see plaintext, so it sits above TLS. net/http only does
// ALPN (HTTP/2) for a conn whose dynamic type is *tls.Conn, so the guard
// cannot wrap every conn. The choice is made per conn, after the handshake,
// by [Guard], which [GuardListener] applies to each accepted conn:
//
//   - the handshake is not the guard's: internal/tlsserver's listener owns
//     it (concurrently, off the Accept path, with its timeout, connection
//     cap, metrics and audit) and returns only *tls.Conn whose handshake
//     completed, so GuardListener can decide synchronously in Accept;
//   - a conn that negotiated an ALPN protocol net/http treats specially
//     (h2, or anything but "", "http/1.1", "http/1.0") is returned as the
//     untouched *tls.Conn, so net/http serves HTTP/2 exactly as it does today;
//   - every other conn is returned wrapped in the guard. The wrapper of a TLS
//     conn has a ConnectionState method, which net/http (server.go, "Set
//     Request.TLS if the conn is not a *tls.Conn, but implements
//     ConnectionState") uses to fill r.TLS. So r.TLS stays correct and the
//     gateway needs no TLS accessor of its own. Plain conns get no such
//     method, so r.TLS stays nil for them.
//
// Rejected alternatives: wrapping below TLS sees only ciphertext; wrapping
// the *tls.Conn for every conn loses HTTP/2 unless the gateway runs the h2
// server by hand; ConnContext and ConnState cannot replace the conn;
// handshaking in this package as well would give handshakes two owners.
// Costs of the chosen design, all small: net/http never sees a handshake,
// so http.Server.TLSHandshakeTimeout and Server.ErrorLog's handshake
// messages are replaced by tlsserver's HandshakeTimeout and its audit
// events; sendfile is not used for guarded conns.
//
// # How a violation reaches the handler
//
// The guard follows every request's framing exactly as net/http will
// (request line, header fields, then a chunked, Content-Length or empty
// body, including net/http's skipping of up to four CR/LF bytes after a
// POST), so request k seen by the guard is request k seen by the handler. A
// header block is held back until it is complete and valid; body bytes
// stream through, straight from the wire when nothing is buffered.
//
// When request k's header block violates a rule, the guard replaces it with
// the fixed request
//
//	GET /.warden/framing-violation HTTP/1.1
//	Host: invalid
//	Connection: close
//
// records the reason and k, and returns io.EOF afterwards, so nothing after
// the violation (the smuggled request) is ever parsed by net/http. The
// gateway's handler calls [Violated] and denies with 400 and
// Connection: close. A violation inside a chunked body (bad chunk line,
// bad trailer) cannot be replaced, since the request is already being
// served: the guard cuts the stream just before the bad bytes, so the body
// read fails and the connection ends.
//
// # Wiring in the gateway
//
//	tlsSrv, err := tlsserver.NewServer(tlsserver.Settings{Certificates: certs})
//	…
//	ln := framing.GuardListener(
//		tlsserver.NewListener(tcp, tlsSrv, tlsserver.ListenerOptions{Name: "https", MaxConns: 10000}),
//		framing.Limits{MaxHeaderBytes: 64 << 10})
//	srv := &http.Server{ConnContext: framing.ConnContext, MaxHeaderBytes: 1 << 20, Handler: h}
//	srv.Serve(ln)
//
// with no srv.TLSConfig (the listener owns the handshake; tlsserver's
// default NextProtos offer "h2" and "http/1.1"). The gateway itself gives
// net/http only the HTTP/2 conns (the untouched *tls.Conn) and serves the
// guarded ones with internal/h1server, which reads the same stream, with
// the same CR/LF tolerance after a POST, and sets r.TLS from the same
// ConnectionState method. First in h:
//
//	if reason, bad := framing.Violated(r); bad {
//		deny(w, r, http.StatusBadRequest, reason) // sets Connection: close
//		return
//	}
//
// A handler that hijacks a conn to switch protocols (WebSocket, CONNECT)
// must call framing.FromContext(r.Context()).Detach() after Hijack, or the
// guard would parse the new protocol as HTTP. Clients that send upgraded
// bytes before the 101 response break RFC 6455 and are cut as a violation.
package framing
