// Package lockout is Warden's brute-force protection: failed
// authentications are counted per client address and per consumer; a key
// that keeps failing is first slowed down, then locked out, for a time
// that doubles with each lock-out.
//
// # Parts
//
//   - Guard holds the counts. The gateway keeps one, built by New from
//     the top-level brute_force block (Config), and sets it as
//     policy.Env.AuthFailures: the single deny path then calls
//     Guard.Failed for every 401, whichever policy denied.
//   - The "brute_force" route policy enforces. Its factory is pure and
//     holds no counts: at request time it reaches the gateway's Guard
//     through policy.ExchangeOf(r).Env.AuthFailures (without one it lets
//     requests through and logs that once). Its block only opts out of
//     the delay (PolicyConfig). Guard.Wrap does the same, for a gateway
//     that protects every route without a brute_force entry.
//   - Guard.AdminHandler (mounted by Guard.Mount) is the admin API:
//     GET /api/lockout lists lock-outs, POST /api/lockout/unlock lifts one.
//
// # Config
//
//	brute_force:
//	  threshold: 10          # failures within window that lock a key out
//	  window: 15m            # sliding
//	  delay_after: 3         # then each request of the address waits 250ms·2^(n−3)…
//	  max_delay: 2s          # …up to this
//	  base_lockout: 1m       # first lock-out
//	  max_lockout: 1h        # doubling stops here
//	  backoff_window: 24h    # lock-outs of a key this close together double
//	  max_keys: 100000       # per kind; stale keys are dropped first, lock-outs last
//	  ipv6_prefix: 64        # an IPv6 client is its /64
//	  ignore_reasons: [...]  # 401s that are not guesses; default DefaultIgnoreReasons
//
//	routes:
//	  - policies:
//	      - type: brute_force          # first: before any authentication
//	      - type: api_key
//	      - type: brute_force          # after authentication: consumer lock-outs
//
// # One request
//
//  1. The first brute_force instance of the chain looks up the client
//     address (r.RemoteAddr; IPv6 by /64). Locked out: 429 locked_out
//     with Retry-After (seconds until the lock-out ends) through
//     policy.Deny, and the authentication policies never run, so a
//     locked key learns nothing about its guesses. In the delay band:
//     the request waits min(max_delay, 250ms·2^(failures−delay_after))
//     on a timer that ends early if the client leaves (then nothing is
//     answered); no lock is held meanwhile.
//  2. A consumer is only known once an authentication policy has run. An
//     instance that sees a consumer not yet checked (in practice the one
//     placed after the authentication policies) refuses a locked-out
//     consumer the same way: a right credential from a fresh address
//     does not get through. A wrong one, refused with 401 by the
//     authentication policy, has its 401 turned into the same 429 by the
//     first instance, so right and wrong look alike.
//  3. Every 401 reaches Guard.Failed, which counts it against the
//     address and the consumer (if known), unless its reason is ignored;
//     the failure that reaches threshold engages the lock-out:
//     base_lockout·2^(k−1) for the key's k-th lock-out within
//     backoff_window, at most max_lockout. A key already locked out is
//     not counted again.
//
// The progressive delay applies to addresses only: delaying a consumer's
// failures after authentication would answer a wrong guess slower than a
// right one, an oracle. Successful authentications do not reset counts.
// Consumer lock-outs are a denial-of-service lever (anyone who can name
// a consumer can lock it out); max_lockout bounds it, and the admin API
// lifts it.
//
// # Audit events and metrics
//
// lockout_engaged (kind ip|consumer, key, failures, duration in seconds,
// until, lockouts, last_reason) and lockout_released (admin unlock).
// Single failures are not events (the deny path already records each
// 401); refusals are request_denied events with reason locked_out.
// Counters (registered on policy.Env.Metrics on first use):
// warden_lockout_failures_total, warden_lockout_engaged_total,
// warden_lockout_refused_total, warden_lockout_released_total (by kind),
// warden_lockout_delays_total (by result), warden_lockout_evictions_total
// (by kind and class).
//
// # Wiring (internal/gateway)
//
//	guard, err := lockout.New(cfg.BruteForce)      // with Now and Audit set
//	env.AuthFailures = guard                       // the deny path counts 401s
//	guard.Mount(adminServer)                       // GET /api/lockout, POST /api/lockout/unlock
//	guard.Update(newCfg.BruteForce)                // on reload: counts and lock-outs survive
//
// Lock-outs live in this process's memory: in a cluster each node counts
// its own.
package lockout
