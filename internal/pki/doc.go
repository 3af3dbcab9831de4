// Package pki owns certificates: SPKI pins and the development PKI of
// `warden demo`. Its subpackages hold the rest of the lifecycle: ca (the
// internal CA: issuance from CSRs, revocation, CRL and OCSP publication),
// enroll (one-time enrollment tokens and renewal over mTLS), expiry (expiry
// watch, webhook, inventory for `warden certs`), acme (server certificates
// from an ACME CA, with certmagic), pkitest (test PKIs).
// Serving certificates are loaded and checked by internal/tlsserver and
// reloaded by internal/gateway; checking peers' revocation is
// internal/revocation.
package pki
