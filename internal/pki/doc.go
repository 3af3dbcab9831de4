// Package pki owns certificates: loading and hot reload, SPKI pins, the
// development PKI of `warden demo`, and (later) the internal CA, issuance,
// revocation publication, ACME and expiry watching.
package pki
