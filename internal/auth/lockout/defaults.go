package lockout

import "time"

// Defaults live here, in one place.
const (
	// DefaultThreshold is Config.Threshold when zero.
	DefaultThreshold = 10
	// DefaultWindow is Config.Window when zero.
	DefaultWindow = 15 * time.Minute
	// DefaultDelayAfter is Config.DelayAfter when zero.
	DefaultDelayAfter = 3
	// DefaultMaxDelay is Config.MaxDelay when zero.
	DefaultMaxDelay = 2 * time.Second
	// DefaultBaseLockout is Config.BaseLockout when zero.
	DefaultBaseLockout = time.Minute
	// DefaultMaxLockout is Config.MaxLockout when zero (or BaseLockout,
	// if that is longer).
	DefaultMaxLockout = time.Hour
	// DefaultBackoffWindow is Config.BackoffWindow when zero.
	DefaultBackoffWindow = 24 * time.Hour
	// DefaultMaxKeys is Config.MaxKeys when zero.
	DefaultMaxKeys = 100_000
	// DefaultIPv6Prefix is Config.IPv6Prefix when zero.
	DefaultIPv6Prefix = 64

	// BaseDelay is the first progressive delay; each further failure
	// doubles it, up to Config.MaxDelay.
	BaseDelay = 250 * time.Millisecond
)

// Bounds of a Config.
const (
	// MaxThreshold bounds Config.Threshold: a key keeps the times of at
	// most Threshold failures.
	MaxThreshold = 1000
	// MaxMaxDelay bounds Config.MaxDelay: a delayed request holds a
	// connection and a goroutine.
	MaxMaxDelay = 30 * time.Second
	// MinMaxKeys and MaxMaxKeys bound Config.MaxKeys.
	MinMaxKeys = 100
	MaxMaxKeys = 10_000_000
)

// DefaultIgnoreReasons lists the 401 reason codes of Warden's
// authentication policies that are not counted by default: a request
// with no credential at all, a connection past its maximum age, a DPoP
// nonce challenge (part of the normal protocol flow) and a credential
// that verified but has expired (a client racing its token refresh).
// None of them tells a guesser anything.
func DefaultIgnoreReasons() []string {
	return []string{
		"client_certificate_required", // mtls: no certificate
		"connection_too_old",          // mtls: reconnect
		"token_missing",               // jwt: no token
		"key_missing",                 // api_key: no key
		"dpop_missing",                // dpop: no proof
		"dpop_nonce_required",         // dpop: server nonce challenge
		"expired",                     // jwt/mtls: past exp / NotAfter
		"key_expired",                 // api_key: past expiry or overlap
	}
}
