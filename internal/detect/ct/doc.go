// Package ct monitors RFC 6962 certificate-transparency logs for
// certificates naming the operator's domains, and raises an audit event when
// one carries a key the operator does not hold: a mis-issued certificate is
// the first step of a man-in-the-middle attack.
//
// Each Poll, for each log:
//
//  1. get-sth, and verify the signed tree head under the configured log key
//     (EventBadSignature otherwise);
//  2. compare with the last verified head: a smaller tree, a different root
//     at the same size, or a failed get-sth-consistency proof is
//     EventInconsistent;
//  3. get-entries from the old size to the new one in batches of at most
//     BatchSize, hashing every leaf into the compact Merkle range of the old
//     tree. The result must equal the new signed root, so every entry is
//     proven to be in the tree: a log cannot show monitors other entries
//     than the ones it signed (EventEntriesMismatch otherwise);
//  4. parse each leaf (X.509 and precertificate entries) and match its DNS
//     names and common name against the watched domains and their
//     subdomains: a key outside KnownKeys is EventUnknownKey (critical), a
//     known key EventKnownCertificate (info, the issuance record);
//  5. persist the new head and compact range to the state file.
//
// On any failure the state is not advanced, so the next round retries from
// the last verified head and no entry is skipped. A log seen for the first
// time is trusted at its current head (its history is not scanned unless
// Config.Backfill is set); the compact range of that head is bootstrapped
// from the inclusion proof of its last entry (get-proof-by-hash).
//
// Polling one log is sequential and the whole backlog since the last head is
// processed in one round: the new root can only be checked at a signed size.
package ct
