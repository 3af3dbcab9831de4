// Package jwt holds two route policies for OAuth 2.0 access tokens sent as
// "Authorization: Bearer" (RFC 6750): "jwt" verifies signed JWTs (RFC
// 7519, RFC 9068) locally against each trusted issuer's key set, and
// "introspection" asks an authorization server about opaque tokens (RFC
// 7662). Both check a jti deny-list, certificate binding (RFC 8705),
// scopes and claim rules, record the identity, and refuse through
// policy.Deny with a stable reason code and an RFC 6750 challenge.
//
// A route block looks like:
//
//	policies:
//	  - type: mtls                            # optional: binds tokens to the client cert
//	    ca_files: [partners-root.pem]
//	  - type: jwt
//	    issuers:
//	      - issuer: https://idp.example
//	        jwks_url: https://idp.example/.well-known/jwks.json   # or jwks_file
//	        audiences: [https://api.example]
//	        algorithms: [RS256, PS256, ES256, EdDSA]            # the default
//	        required_claims: [jti]
//	        leeway: 30s                                         # at most 2m
//	    scopes: [orders:read]            # all required ("scope" or "scp")
//	    claims: {tenant: [acme]}         # claim rules: one of the values
//	    require_exp: true
//	    max_token_bytes: 8192
//	    require_certificate_binding: true
//	    consumer_claim: sub
//	    forward: {claims_header: X-Token-Claims, strip_authorization: true}
//	    cache: {max_entries: 10000}
//
// The verifier, in order: size; three strict base64url segments; header
// and payload JSON objects with no repeated member names (duplicate_member:
// parsers disagree on which one wins); no crit (Warden supports no JWS
// extension); no jku, x5u or jwk header (keys come only from the issuer's
// configured set, never from the token, and a token naming a key source is
// refused as untrusted_key_header); alg in the issuer's allow-list, which
// can never hold "none" or HMAC; iss a configured issuer; kid selecting the
// key, of the type alg needs (a kid-less token needs exactly one fitting
// key); the signature, through go-jose's parse API with the allow-list;
// then exp, nbf and iat with the issuer's leeway, aud, required claims.
// Verified tokens are cached by SHA-256, never past exp nor CacheTTL.
// Per request: the deny-list, the certificate binding, scope and claim
// rules.
//
// Key sets from a URL are fetched on the first request that needs them,
// never when the policy is built, refreshed in the background, and
// re-fetched on an unknown kid at most once per UnknownKIDInterval; a
// failing endpoint is retried with exponential backoff while the last
// good set stays in use. Before any set was fetched, requests get 503
// jwks_unavailable: the policy fails closed.
//
// The gateway wires two things: one DenyList, passed to every policy's
// UseDenyList and mounted as an http.Handler on the admin API; and the
// claims header names (ClaimsHeader), stripped from every request.
package jwt
