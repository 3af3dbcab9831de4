package dpop

import "time"

// Defaults live here, in one place. A zero value in Config means the
// default below.
const (
	// DefaultIATWindow is how far a proof's iat may lie from the gateway's
	// clock, either way, when Config.IATWindow is zero.
	DefaultIATWindow = 60 * time.Second
	// MaxIATWindow is the widest iat window a config may set.
	MaxIATWindow = 5 * time.Minute
	// DefaultNonceLifetime is how long a server nonce stays valid when
	// Config.Nonce.Lifetime is zero.
	DefaultNonceLifetime = 5 * time.Minute
	// DefaultReplayEntries bounds the replay cache when
	// Config.ReplayCache.MaxEntries is zero.
	DefaultReplayEntries = 100_000
	// DefaultMaxProofBytes bounds the DPoP header value when
	// Config.MaxProofBytes is zero.
	DefaultMaxProofBytes = 4096
)

// DefaultAlgorithms are the proof algorithms accepted when
// Config.Algorithms is nil.
var DefaultAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// Config bounds.
const (
	minIATWindow     = time.Second
	minNonceLifetime = 10 * time.Second
	maxNonceLifetime = time.Hour
	minReplayEntries = 16
	maxReplayEntries = 10_000_000
	minMaxProofBytes = 512
	maxMaxProofBytes = 16 << 10
	minRSABits       = 2048
	maxAuditText     = 256
)
