// Package enroll lets a client get its first certificate from Warden's
// internal CA with a one-time token, and renew it over mTLS with the
// certificate it holds.
//
// # Tokens
//
// CreateToken makes an enrollment token: "wenr_" followed by 256 random
// bits (base64url). Only its SHA-256 is stored (store.EnrollToken), with
// what a certificate obtained with it may name: a common name, DNS names
// and URIs (SPIFFE IDs), matched exactly. A token works once, until it
// expires. It is shown once, by whoever called CreateToken.
//
// # Enrollment: POST /enroll
//
// The client sends "Authorization: Bearer <token>" and a PEM (or DER)
// PKCS#10 CSR of at most ca.MaxCSRBytes. The handler reads the body, then
// consumes the token (one conditional UPDATE: of concurrent uses exactly
// one wins), and only then parses the CSR, checks its names against the
// token's and issues a client certificate (ca.ProfileClient).
//
// The token is consumed before anything in the CSR is looked at, so a
// request with a valid token and a malformed CSR or a name outside the
// token's burns the token: the operator makes a new one. This is
// deliberate: it is simpler (one atomic step decides), and whoever holds
// a stolen token gets exactly one try, so it cannot be used to probe what
// the token allows or raced against the legitimate client. A request
// refused before the token is looked at (no or malformed Authorization
// header, body too large or unreadable) leaves it unused.
//
// # Renewal: POST /renew
//
// Over TLS with a client certificate. The handler does not trust the
// listener's verification: it verifies the presented certificate itself
// against the CA's root and intermediate only, for clientAuth, at the
// handler's clock; looks its serial up in the CA's records (it must be a
// client certificate this intermediate issued, byte for byte, and not
// revoked); and issues a new client certificate from the CSR in the body,
// whose names (common name and every SAN) must equal the current
// certificate's. The old certificate stays valid until it expires.
//
// # Responses
//
// Success is 200 with Content-Type application/pem-certificate-chain: the
// new certificate then the intermediate, PEM (the root is not included;
// clients get it out of band). A refusal is an RFC 9457 problem+json
// document (through policy.Deny) whose "reason" is one of the Reason
// constants.
package enroll
