// Package caadmin serves the internal CA's endpoints of the admin API
// (internal/admin, mTLS-only; every call is audited there, and each
// decision here once more with what was decided):
//
//	POST /api/ca/certificates?profile=client|server[&lifetime=12h]
//	     body: a PEM (or DER) PKCS#10 CSR → 200, application/pem-certificate-chain
//	     (the certificate, then the intermediate), issued by ca.CA.Issue with
//	     all its checks; lifetime at most the profile's configured lifetime.
//	GET  /api/ca/certificates[?limit=N]
//	     → 200 {"certificates": [...]}: this CA's certificates, newest first.
//	POST /api/ca/revoke  {"serial": "hex", "reason": "keyCompromise"}
//	     → 200 {"serial", "revoked_at", "reason"}; 404 for a serial this CA
//	     did not issue, 409 if already revoked. Effective at once: the
//	     gateway's own mTLS checks, CRL and OCSP answers see it at their
//	     next request.
//	POST /api/ca/tokens  {"consumer", "cn", "dns": [...], "uris": [...], "ttl": "1h"}
//	     → 201 {"token", "expires_at"}: a one-time enrollment token, as
//	     `warden ca token` makes (shown once, only its hash is stored,
//	     never logged).
//
// Bad input is a 400 (413 for an oversized body) problem+json response
// with a precise reason, and nothing is issued or recorded.
package caadmin
