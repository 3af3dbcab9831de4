// Package stepup is the "stepup" route policy: multi-factor and
// out-of-band verification for critical operations. A critical request
// needs, on top of the consumer an earlier authentication policy (mtls,
// jwt, api_key…) established, either a fresh TOTP code or an operator's
// approval of that very request.
//
// A route block looks like:
//
//	policies:
//	  - type: api_key
//	  - type: stepup
//	    methods: [POST, DELETE]      # default: every method is critical
//	    totp: true                   # default true: accept Warden-OTP
//	    header_otp: Warden-OTP       # default
//	    header_approval: Warden-Approval # default
//	    approval:                    # optional: out-of-band approval
//	      webhook: https://ops.example/hooks/warden  # required; https, or http to a loopback IP
//	      timeout: 5m                # default; 1s to 24h: to decide and to use
//	      max_body_bytes: 1MiB       # default; at most 64MiB; larger bodies: 413
//	      max_pending: 10            # default; per consumer; more: 429
//	      retry_after: 5s            # default; Retry-After of the 202
//
// Methods match without regard to case, HEAD is critical when GET is, and
// a request naming a critical method in X-HTTP-Method-Override,
// X-HTTP-Method or X-Method-Override is critical, so that an upstream
// which honours them cannot be reached around the policy. Both step-up
// headers are removed from every request: the upstream never sees them.
//
// # TOTP
//
// RFC 6238 with HMAC-SHA1, 6 digits, 30-second steps, one step of skew
// either way. Each consumer has a 160-bit random secret, enrolled with
// `warden stepup enroll --consumer NAME`, which prints the otpauth:// URI
// and the base32 secret once, after the record is committed. A code is
// compared in constant time against the codes of the three steps; the
// matching step must be later than the last accepted one, recorded by one
// conditional UPDATE (… WHERE last_used_step < ?) in the shared store, so
// that a code is never accepted twice: not on a second request, not after
// a restart, not on another gateway sharing the store, not even a second
// code of an older step. Refusals: otp_invalid (malformed, or wrong),
// otp_replayed, otp_not_enrolled. Guessing (3 in a million per try) is
// for the brute-force protection that counts every 401.
//
// The secret is stored as is (hex), not hashed: TOTP is symmetric, the
// gateway must compute codes from it. What protects it is the store
// file's mode (0600, its -wal and -shm too) and, in a cluster, the
// database's access control. Encrypting it under a key the same process
// reads from a neighbouring file would not stop an attacker who can read
// the store; it would stop one who only obtains the store (a backup, a
// copied file). That needs a key held elsewhere (KMS, a file with other
// backups), and is left for when the store grows a key-management story.
// Anyone who reads the secret can make codes: treat the store like a key.
//
// # Out-of-band approval
//
// With an approval block, a critical request without a code is answered
// 202 with a problem+json-like body {approval_id, expires_at, …}, the id
// also in the Warden-Approval response header, and Retry-After. The
// gateway records a pending approval (id: "apr_" and 128 random bits;
// consumer; route, method, target; the request digest; created and
// expires) and POSTs a Notification to the webhook: asynchronously, at
// most 64 in flight, 3 attempts of 5 s each with backoff, no redirects
// followed; every failure is an audit event (stepup_webhook_failed).
//
// The digest is SHA-256 over the route name, the method, the path and
// query, and the body (length-prefixed), so the body is buffered, up to
// max_body_bytes (larger: 413 approval_body_too_large).
//
// An operator approves or denies through the admin API (Admin, mounted
// on the mTLS-only admin listener) or `warden stepup approve|deny ID`;
// `warden stepup pending` lists what awaits a decision. The client sends
// the same request again with Warden-Approval: ID. One conditional UPDATE
// turns an approved, unexpired approval for this consumer and digest into
// used: it works once, everywhere. Otherwise: approval_pending (202
// again), approval_denied (403), approval_expired, approval_used,
// approval_mismatch (another consumer's, or another request's: nothing
// more is said), approval_unknown (401).
//
// # Other refusals
//
// stepup_no_consumer (401: no authentication policy ran before),
// stepup_required (401: no code, and no approval block),
// approval_limit (429), stepup_store_unavailable (503, fail closed).
// Every 401 carries WWW-Authenticate: Warden-StepUp methods="totp
// approval" (the methods the route takes).
//
// # Audit
//
// Every decision is an event: stepup_verified (method, step or approval
// id), stepup_rejected (through policy.Deny, with its reason),
// stepup_approval_requested and stepup_approval_pending (202),
// stepup_webhook_delivered and stepup_webhook_failed,
// stepup_approval_decided (admin API). Never a code, a secret or a body.
//
// # What the gateway wires
//
//   - The config package imports this package, so that "stepup" is a
//     registered policy type.
//   - policy.Env.Records: the open *store.Store (anything implementing
//     Records). Without it critical requests get 503.
//   - NewAdmin(records, audit, now).Mount(gateway.Admin()): the approval
//     endpoints, at PatternList, PatternGet, PatternApprove, PatternDeny.
//   - Optionally (*Policy).Wait at shutdown, to let webhook deliveries
//     finish.
package stepup
