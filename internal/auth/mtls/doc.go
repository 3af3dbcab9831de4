// Package mtls is the "mtls" route policy: client-certificate
// authentication against the route's own trust bundle, live revocation,
// identity, authorization and identity forwarding.
//
// A route block looks like:
//
//	policies:
//	  - type: mtls
//	    ca_files: [partners-root.pem]        # required: this route's trust anchors
//	    max_chain_depth: 5                   # leaf and anchor included
//	    min_rsa_bits: 2048                   # EC below P-256 is always refused
//	    revocation: hard_fail                # or soft_fail, off
//	    max_connection_age: 1h               # 0: no limit
//	    consumers:
//	      - name: billing
//	        match: {spiffe_id: "spiffe://acme.example/billing/**"}
//	    allow:                               # absent: any verified certificate
//	      - consumer: billing
//	      - subject: {cn: "ops-*", o: "Acme"}
//	    forward:
//	      client_cert_headers: true          # RFC 9440 Client-Cert, Client-Cert-Chain
//	      identity_header: X-Client-Identity # compact JSON; optional
//
// # Where it sits
//
// The listener's client_auth "optional" asks for a certificate without
// verifying it (tls.RequestClientCert), so that this policy can refuse a
// bad one with a precise 401 problem+json instead of a TLS alert; "require"
// also refuses at the handshake against the union of bundles. Either way,
// only this policy, after its own verification, sets
// policy.Identity.ClientCert.
//
// # One request
//
//  1. StripIdentityHeaders removes any Client-Cert, Client-Cert-Chain or
//     identity header the client sent.
//  2. No certificate: 401 client_certificate_required. A connection older
//     than max_connection_age (from Exchange.ConnStart): 401
//     connection_too_old, and the connection is closed.
//  3. The presented chain is verified by Verify, a small pure function:
//     crypto/x509 (signatures, validity, clientAuth EKU, basic and name
//     constraints) plus chain depth, key strength, no SHA-1/MD5 below the
//     anchor and the leaf's key usage. The result, success or failure, is
//     cached per policy by the SHA-256 of the presented chain, until the
//     chain's earliest NotAfter or CacheTTL (failures: 30 s), so that
//     keep-alive and resumed connections pay a hash and a map lookup.
//  4. Revocation is asked of policy.Env.Revocation on every request (its
//     own cache makes that cheap), so a certificate revoked while its
//     connection is open is refused at the next request, with Connection:
//     close. Status unknown: hard_fail refuses (401
//     revocation_unavailable), soft_fail admits with the
//     warden_mtls_revocation_soft_fail_total metric and a
//     revocation_soft_fail event. No checker configured counts as unknown.
//  5. Identity: ClientCert = the leaf, Methods += "mtls", Consumer from the
//     first matching consumers rule (a different consumer already set by an
//     earlier policy is 401 consumer_mismatch).
//  6. Authorization: with allow present, no matching rule is 403
//     client_not_authorized.
//  7. Client-Cert (":base64(DER):"), Client-Cert-Chain (the intermediates,
//     anchor omitted) and the identity header are set for the upstream.
//
// Every refusal goes through policy.Deny with a stable reason (the Reason
// constants) and a client_cert_rejected audit event carrying the presented
// leaf's SHA-256 fingerprint, subject, issuer and serial, and for a revoked
// certificate its RFC 5280 reason code.
//
// # What the gateway wires
//
//   - StripIdentityHeaders on every request of every route, with each
//     identity header name any mtls policy uses ((*Policy).IdentityHeader),
//     so routes without this policy cannot be used to smuggle identities.
//   - policy.Env.Revocation: the revocation checker.
//   - policy.Exchange.ConnStart: when the connection was accepted.
//   - (*Policy).Files in the reload watch list.
package mtls
