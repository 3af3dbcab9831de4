// Package apikey is the "api_key" route policy and the API key format:
// keys with 256 bits of entropy, a recognisable prefix and a checksum,
// stored only as a hash, rotated with an overlap window, revoked at once.
//
// A route block looks like:
//
//	policies:
//	  - type: api_key
//	    header: X-API-Key            # default; the header's whole value is the key
//	    insecure_query_key: ""       # default: keys in the query string are refused
//	    consumers: [billing, search] # optional allow-list; absent: any valid key
//
// # The key
//
//	key      = "wdn_" lookup-id "_" secret "_" checksum     ; 67 characters
//	lookup-id = 12 base62                                   ; random, public: the record's id
//	secret    = 43 base62                                   ; random, 256.03 bits
//	checksum  = 6 base62                                    ; CRC-32 (IEEE) of "wdn_" lookup-id "_" secret,
//	                                                        ; base62, most significant digit first, zero-padded
//	base62    = "0"-"9" / "A"-"Z" / "a"-"z"                 ; in this order: digit values 0-61
//
// Like GitHub's ghp_ tokens: the prefix lets secret scanners (and people)
// recognise a leaked key, the checksum lets them (and Parse) tell a real
// key from a random string without asking anyone, and the underscores
// keep the key one word for double-click selection. Digits are drawn from
// crypto/rand by rejection sampling, so each is uniform.
//
// # Storage
//
// The store keeps the lookup id and SHA-256(secret), never the key. A
// slow password hash (bcrypt, scrypt, Argon2) exists to make guessing
// low-entropy secrets expensive; a uniformly random 256-bit secret cannot
// be guessed at any hashing speed (2^256 preimage work), and needs no salt
// (no two secrets are alike, so no precomputed table helps). A slow KDF
// would only add milliseconds of CPU to every request, a denial-of-service
// lever. The hash is compared with crypto/subtle.ConstantTimeCompare.
//
// # One request
//
//  1. The key is read from the header (exactly one value; surrounding
//     spaces trimmed), or, with insecure_query_key, from that query
//     parameter when the header is absent. Both are removed from the
//     request: the upstream never sees the key. Without insecure_query_key,
//     a well-formed key anywhere in the query string is refused (401
//     key_in_query_refused, its lookup id audited: it may have been logged
//     on the way and should be replaced).
//  2. Authenticate: Parse checks grammar and checksum (401 key_malformed,
//     no store lookup); one store read by lookup id (401 key_unknown); the
//     secret's hash compared in constant time (401 key_unknown); then, and
//     only then, the key's state: revoked (401 key_revoked, at once), past
//     expires_at or its rotation's overlap_until (401 key_expired),
//     consumer disabled (401 consumer_disabled). No store: 503
//     key_store_unavailable (fail closed).
//  3. Identity: an earlier policy's different consumer is 401
//     consumer_mismatch; otherwise Consumer is set and "api_key" appended
//     to Methods. With consumers set, any other consumer is 403
//     consumer_not_authorized.
//
// Nothing is cached: every request costs one indexed read of the store
// (see BenchmarkRequestPath), so a key revoked or rotated by any process
// sharing the store is refused on its next request.
//
// Every refusal goes through policy.Deny with a stable reason (the Reason
// constants) and an api_key_rejected audit event carrying the source
// (header or query), the lookup id once the key parsed, the key's
// consumer once its secret matched, and secret_mismatch when a real lookup
// id came with a wrong secret. Never the secret.
//
// # Rotation
//
// Rotate records a successor for the same consumer and gives the old key
// an overlap_until: both work until then, after which the old one is
// key_expired. A key is rotated once; rotate its successor next.
//
// # What the gateway wires
//
//   - policy.Env.Records: the open *store.Store (any value implementing
//     KeyStore). Without it every api_key route answers 503.
//   - (*Policy).Warnings, logged at every start and reload (today: the
//     insecure_query_key warning).
//   - `warden keys` (cmd/warden) and the gateway open the same store file.
package apikey
