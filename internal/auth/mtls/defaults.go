package mtls

import "time"

// Defaults live here, in one place.
const (
	// DefaultMaxChainDepth bounds the verified chain, leaf and trust
	// anchor included, when Config.MaxChainDepth is zero.
	DefaultMaxChainDepth = 5
	// DefaultMinRSABits is the smallest RSA key accepted anywhere in a
	// chain when Config.MinRSABits is zero. It is also the lowest value a
	// config may set.
	DefaultMinRSABits = 2048
	// DefaultRevocation is the revocation mode when Config.Revocation is
	// empty: a certificate whose status cannot be established is refused.
	DefaultRevocation = RevocationHardFail
)

// Cache bounds. A verification result is reused for at most CacheTTL (and
// never past the chain's earliest NotAfter); a failure for at most
// negativeTTL, so that a not-yet-valid certificate starts working soon after
// it becomes valid.
const (
	// CacheTTL is the longest a successful verification is reused.
	CacheTTL    = 5 * time.Minute
	negativeTTL = 30 * time.Second
	// cacheSize bounds the entries of one policy's verification cache.
	cacheSize = 4096
	// softFailEvery rate-limits revocation_soft_fail audit events per
	// certificate chain; the metric counts every occurrence.
	softFailEvery = time.Minute
	// maxAuditText bounds certificate text (attacker-chosen) copied into
	// audit events.
	maxAuditText = 256
)
