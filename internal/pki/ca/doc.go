// Package ca is Warden's internal certificate authority: a root and an
// intermediate made by Init (keys 0600, optionally encrypted with a
// passphrase), certificate issuance from CSRs (Issue) under the
// intermediate's name constraints, and revocation with its publication: a
// signed CRL and an RFC 6960 OCSP responder (Publisher), which the
// gateway serves over HTTP and which internal/revocation's Checker
// verifies.
//
// Every certificate is recorded (Records, satisfied by *store.Store)
// before it is returned, so that a crash never leaves a certificate out
// there that the CA does not know of, and therefore could not revoke.
//
// A CA folder holds:
//
//	root.pem              root certificate (10 years)
//	root-key.pem          root key, 0600: needed only to make a new intermediate; keep it offline
//	intermediate.pem      intermediate certificate (5 years, path length 0, name constraints)
//	intermediate-key.pem  intermediate key, 0600: signs certificates, CRLs and OCSP responses
//	ca.json               key type, creation time, default publish URL
//
// Issued certificates name <PublishURL>/crl as CRL distribution point and
// <PublishURL>/ocsp as OCSP responder; Publisher.Handler serves both.
//
// Revocations take effect at once wherever the CA is asked: the records
// keep a revocation generation per issuer, moved in the transaction of
// every revocation (by this process or `warden ca revoke` in another), and
// CertStatus (the gateway's own mTLS checks, through
// revocation.Local) and the Publisher read it before each answer,
// re-reading the revoked serials only when it moved.
package ca
