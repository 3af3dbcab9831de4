// Package acme obtains and renews the gateway's server certificates from an
// ACME CA (RFC 8555), such as Let's Encrypt or a private CA, with certmagic.
// Domain control is proven with the http-01 challenge, answered on the
// gateway's plain-HTTP listener ([Manager.HTTPHandler]), and with the
// tls-alpn-01 challenge (RFC 8737), answered on its TLS listener
// ([Manager.TLSALPNChallenge], plugged into tlsserver.Settings.ACMEChallenge).
//
// Threat model and the decisions it leads to:
//
//   - Only the configured names are ever requested. There is no on-demand
//     issuance: a ClientHello naming some other host never makes the
//     gateway talk to the CA, so nobody can make it request certificates
//     (and burn its rate limits) by choosing an SNI.
//   - Challenges are answered only while this Manager has one pending, for
//     a configured name and the challenge type asked for; every other
//     /.well-known/acme-challenge/ request gets 404, and a ClientHello
//     offering acme-tls/1 with no pending challenge fails its handshake.
//     Tokens are never echoed blindly.
//   - The directory URL must be https and its certificate is verified:
//     against the system roots, or against CARoots for a private ACME CA
//     (Pebble in the tests). There is no option to skip verification.
//   - The ACME account key and the certificate keys are stored by
//     certmagic's file storage under Config.StorageDir, files 0600 in
//     directories 0700. Certificate keys are ECDSA P-256 unless configured
//     otherwise, and a new key is made at each renewal.
//   - A failed renewal changes nothing: the current certificate keeps being
//     served, certmagic retries, and each failure is an audit event.
//
// [Manager.Start] obtains every missing certificate, bounded by its context,
// and returns a clear error when the CA is unreachable or refuses. certmagic's
// maintenance then renews each certificate when the configured fraction of
// its lifetime remains (RenewalRatio, default one third) or when the CA's
// renewal information (ARI) says so. After each certificate obtained or
// renewed, Config.OnChange is called so that the gateway can re-apply its
// TLS settings with [Manager.Certificates].
//
// Challenges are answered by the instance that started them: storage is not
// meant to be shared by several gateways.
package acme
