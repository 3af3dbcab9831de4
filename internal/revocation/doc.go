// Package revocation checks certificates against CRLs and OCSP (RFC 5280,
// RFC 6960), and keeps OCSP staples for the gateway's own certificates.
//
// # Checking client certificates
//
// A [Checker] implements policy.RevocationChecker. [Checker.CheckChain]
// takes a verified chain (leaf first) and checks each certificate but the
// trust anchor against its issuer, the next one, through two sources:
//
//   - CRLs: from Config.CRLFiles (verified at load against the issuers
//     given to [New]) and from the certificate's HTTP CRL distribution
//     points (fetched on first sight, one fetch for all concurrent callers,
//     then re-fetched every Config.CRLRefresh by [Checker.Start] or
//     [Checker.Refresh]). A CRL is used only if its issuer name is the
//     certificate issuer's and its signature verifies with the issuer's
//     key (which must allow cRLSign), it is complete (no delta CRLs, no
//     unknown critical extensions), its Issuing Distribution Point, if
//     any, covers the certificate, and now is before nextUpdate +
//     Config.StaleGrace. A refresh that fails, or returns an older CRL
//     than the one held (a replay), keeps the last good CRL. Lookups are
//     one map access.
//   - OCSP: from the certificate's AIA responder URLs, by POST. A response
//     is used only if its CertID names the certificate's serial and issuer
//     (name and key hash: x/crypto/ocsp matches the serial alone), it is
//     signed by the issuer or by a responder certificate the issuer signed
//     with the OCSPSigning extended key usage and valid now, thisUpdate is
//     not more than 5 minutes ahead, and nextUpdate has not passed.
//     Answers are cached by (issuer, serial) until min(nextUpdate, fetch +
//     CRLRefresh) in a sharded, bounded map; concurrent first checks share
//     one request. Failures are remembered for 10 seconds.
//
// The decision for one certificate:
//
//	revoked by either source            → *RevokedError (reason code, time, source)
//	otherwise good by a fresh CRL or a
//	good OCSP response                  → nil
//	otherwise                           → *UnavailableError (reason: responder down,
//	                                      CRL stale, bad signature, no source, …)
//
// # The gateway's own CA
//
// [Local] wraps a checker with Authorities: CAs the gateway operates
// itself (its internal CA, *ca.CA). A certificate whose issuer has an
// authority's public key (SubjectPublicKeyInfo, not the name) is decided
// by that authority alone, from its records at the moment of the check,
// so that a revocation takes effect at the next request; records that
// cannot be read give ReasonLocalUnavailable, a certificate the authority
// never recorded ReasonLocalUnknown. Every other certificate goes to the
// wrapped checker.
//
// For a chain, a revoked certificate anywhere wins over an unavailable
// status elsewhere. The caller applies hard- or soft-fail to an
// *UnavailableError; [Reason] gives a stable code for audit and metrics.
// A response or CRL that fails verification is never taken as "good".
//
// Every failed or refused fetch is counted
// (warden_revocation_fetch_errors_total{source,reason}) and recorded as a
// revocation_source_unavailable audit event, at most one per source, URL
// and reason per minute; the event is critical when the reason suggests a
// forgery or replay (bad signature, unauthorised responder, wrong
// certificate, CRL rollback). Checks and cache lookups are counted too
// (warden_revocation_checks_total{source,result},
// warden_revocation_cache_lookups_total{source,result}).
//
// # Stapling the gateway's own certificates
//
// A [Stapler] fetches and verifies, with the same code, the OCSP response
// of each served certificate that names a responder, and returns it for
// tls.Certificate.OCSPStaple. It refreshes a response at half its
// validity window, and at least every CRLRefresh; keeps the last good
// response while it is current if a refresh fails; and stops stapling at
// once when the responder says the certificate is revoked, raising a
// critical own_certificate_revoked audit event. tlsserver.Stapling applies
// the staples to a tlsserver.Server.
package revocation
