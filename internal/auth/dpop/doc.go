// Package dpop is the "dpop" route policy: DPoP proof-of-possession (RFC
// 9449), which makes an access token stolen on the wire useless without
// the private key it is bound to.
//
// A route block looks like:
//
//	policies:
//	  - type: jwt                   # first: verifies the token, sets Identity.Claims (with cnf.jkt)
//	    ...
//	  - type: dpop
//	    required: true              # every request needs a DPoP-bound token and a proof; false: only tokens with cnf.jkt
//	    algorithms: [ES256, EdDSA, RS256, PS256]  # asymmetric only; none and HS* are config errors
//	    iat_window: 60s             # proofs with iat outside now±window are refused; at most 5m
//	    nonce: {enabled: false, lifetime: 5m}     # server nonces (DPoP-Nonce), RFC 9449 §8
//	    replay_cache: {max_entries: 100000}
//	    max_proof_bytes: 4096
//
// # Where it sits
//
// After the access-token policy (jwt, introspection), which has verified
// the token and put its claims in policy.Identity.Claims; a token is
// DPoP-bound when its claims carry cnf.jkt, the RFC 7638 thumbprint of the
// client's key. This policy does not verify the token: it reads the raw
// token from the Authorization header only to check the proof's ath.
//
// # One request
//
//  1. The Authorization header is read by AccessToken: several are 401
//     dpop_bad_authorization. A DPoP-bound token sent as "Bearer" is 401
//     dpop_bound_token_as_bearer (RFC 9449 §7.2). A token without cnf.jkt
//     is 401 dpop_token_not_bound when required (or when sent with the
//     DPoP scheme), and passes untouched otherwise. A bound token must
//     come as "Authorization: DPoP <token>".
//  2. Exactly one DPoP header (dpop_missing, dpop_multiple), at most
//     max_proof_bytes.
//  3. The proof (RFC 9449 §4.3): a compact JWS whose header and claims are
//     JSON objects without duplicate members (dpop_malformed); typ
//     dpop+jwt (dpop_bad_typ); alg in the allow-list (dpop_alg_not_allowed);
//     no crit or b64; jwk a public key of the type and strength alg needs,
//     RSA at least 2048 bits, never private or symmetric key material
//     (dpop_bad_key); the signature verifies with jwk (dpop_bad_signature);
//     jti, htm, htu strings and iat a number.
//  4. htm equals the method (dpop_htm_mismatch); htu equals
//     https://<Host><path>, both normalized (scheme and host case, default
//     port, percent-encoding, dot segments), query and fragment ignored
//     (dpop_htu_mismatch); iat within now±iat_window
//     (dpop_iat_out_of_window); ath the base64url SHA-256 of the token
//     (dpop_ath_mismatch); the jwk's thumbprint equals cnf.jkt
//     (dpop_jkt_mismatch).
//  5. With nonces on: a nonce this policy issued less than lifetime ago,
//     else 401 dpop_nonce_required with error="use_dpop_nonce" and a fresh
//     DPoP-Nonce header. An accepted proof whose nonce is past half its
//     lifetime gets a fresh DPoP-Nonce on the response. Nonces are
//     stateless HMACs under keys rotated every lifetime.
//  6. The (thumbprint, jti) pair must be new (dpop_replay); it is
//     remembered until iat+iat_window. Only fully valid proofs enter the
//     cache, which is bounded (see replayCache): when full, it refuses
//     what it can no longer vouch for rather than forget a live entry.
//  7. Identity.Methods += "dpop".
//
// Every refusal is a 401 through policy.Deny with a stable reason (the
// Reason constants), a WWW-Authenticate: DPoP challenge with algs (RFC
// 9449 §7.1; error="invalid_dpop_proof", "use_dpop_nonce" or
// "invalid_token") and a dpop_rejected audit event with the proof's alg
// and key thumbprint when known, never the proof or the token.
//
// # Limits
//
// The replay cache and nonce keys are in this policy's memory: a config
// reload starts them afresh (a proof accepted in the last iat_window could
// be replayed once after a reload), and in a cluster each node has its
// own. A shared store (policy.Env) would close both.
package dpop
