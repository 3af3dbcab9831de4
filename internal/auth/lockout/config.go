package lockout

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wardengw/warden/internal/audit"
)

// Config is the gateway's top-level brute_force block. Zero values mean
// the defaults of defaults.go; Defaults returns them filled in.
//
//	brute_force:
//	  threshold: 10        # failures within window that lock a key out
//	  window: 15m
//	  delay_after: 3       # failures after which each request is delayed
//	  max_delay: 2s
//	  base_lockout: 1m     # first lock-out; doubles per lock-out within backoff_window
//	  max_lockout: 1h
//	  backoff_window: 24h
//	  max_keys: 100000     # tracked keys per kind (addresses, consumers)
//	  ipv6_prefix: 64      # IPv6 clients are counted per /64
//	  ignore_reasons: [...] # 401 reasons that are not guesses (see DefaultIgnoreReasons)
type Config struct {
	// Threshold is the number of failed authentications of one key (a
	// client address or a consumer) within Window that locks the key out.
	// The failure that reaches it engages the lock-out; the next request
	// is refused. 1 to MaxThreshold.
	Threshold int `yaml:"threshold"`
	// Window is how long a failure counts (a sliding window).
	Window time.Duration `yaml:"window"`
	// DelayAfter is the number of failures (within Window) of a client
	// address after which each of its further requests is delayed by
	// min(MaxDelay, 250ms·2^(failures−DelayAfter)) before the
	// authentication policies run. DelayAfter ≥ Threshold turns the delay
	// off.
	DelayAfter int `yaml:"delay_after"`
	// MaxDelay caps the progressive delay; at most MaxMaxDelay.
	MaxDelay time.Duration `yaml:"max_delay"`
	// BaseLockout is the length of a key's first lock-out. Each further
	// lock-out of the same key that starts within BackoffWindow of the
	// previous one lasts twice as long as that one, up to MaxLockout.
	BaseLockout time.Duration `yaml:"base_lockout"`
	// MaxLockout caps a lock-out; at least BaseLockout.
	MaxLockout time.Duration `yaml:"max_lockout"`
	// BackoffWindow is how long a key's lock-out history is remembered for
	// the exponential back-off.
	BackoffWindow time.Duration `yaml:"backoff_window"`
	// MaxKeys bounds the keys tracked, separately for client addresses and
	// for consumers. When full, stale keys are dropped first, then keys
	// that are not locked out; a locked-out key is dropped last.
	MaxKeys int `yaml:"max_keys"`
	// IPv6Prefix is the prefix length under which IPv6 client addresses
	// are counted together (a single client usually holds a whole /64).
	// 128 counts each address; 32 to 128.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// IgnoreReasons are 401 reason codes that are not counted as failures
	// because they are not guesses of a secret: no credential at all, a
	// DPoP nonce challenge, a credential that verified but has expired.
	// Nil means DefaultIgnoreReasons; an empty list counts every 401.
	IgnoreReasons []string `yaml:"ignore_reasons"`

	// Now is the clock; time.Now if nil.
	Now func() time.Time `yaml:"-"`
	// Audit receives lockout_engaged and lockout_released events. When
	// nil, lockout_engaged goes to the request's Env.Audit.
	Audit *audit.Logger `yaml:"-"`
}

// FieldError is one invalid setting of a Config; Field is its YAML key
// (e.g. "max_delay"), so that the config loader can point at its line.
type FieldError struct {
	Field string
	Msg   string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Defaults returns the default Config.
func Defaults() Config { return Config{}.withDefaults() }

// withDefaults fills zero values; negative ones are left for Validate to
// refuse.
func (c Config) withDefaults() Config {
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.DelayAfter == 0 {
		c.DelayAfter = DefaultDelayAfter
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.BaseLockout == 0 {
		c.BaseLockout = DefaultBaseLockout
	}
	if c.MaxLockout == 0 {
		c.MaxLockout = max(DefaultMaxLockout, c.BaseLockout)
	}
	if c.BackoffWindow == 0 {
		c.BackoffWindow = DefaultBackoffWindow
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.IgnoreReasons == nil {
		c.IgnoreReasons = DefaultIgnoreReasons()
	}
	return c
}

// Validate reports every invalid setting of c (after defaults) in one
// error (errors.Join of *FieldError). It is pure.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Threshold < 1 || c.Threshold > MaxThreshold {
		bad("threshold", "must be between 1 and %d, got %d", MaxThreshold, c.Threshold)
	}
	if c.Window < time.Second {
		bad("window", "must be at least 1s, got %v", c.Window)
	}
	if c.DelayAfter < 1 {
		bad("delay_after", "must be at least 1, got %d (set it to threshold or more to turn delays off)", c.DelayAfter)
	}
	if c.MaxDelay < 0 || c.MaxDelay > MaxMaxDelay {
		bad("max_delay", "must be between 0 and %v, got %v", MaxMaxDelay, c.MaxDelay)
	}
	if c.BaseLockout < time.Second {
		bad("base_lockout", "must be at least 1s, got %v", c.BaseLockout)
	}
	if c.MaxLockout < c.BaseLockout {
		bad("max_lockout", "must be at least base_lockout (%v), got %v", c.BaseLockout, c.MaxLockout)
	}
	if c.BackoffWindow < 0 {
		bad("backoff_window", "must not be negative, got %v", c.BackoffWindow)
	}
	if c.MaxKeys < MinMaxKeys || c.MaxKeys > MaxMaxKeys {
		bad("max_keys", "must be between %d and %d, got %d", MinMaxKeys, MaxMaxKeys, c.MaxKeys)
	}
	if c.IPv6Prefix < 32 || c.IPv6Prefix > 128 {
		bad("ipv6_prefix", "must be between 32 and 128, got %d", c.IPv6Prefix)
	}
	for i, r := range c.IgnoreReasons {
		if !validReason(r) {
			bad(fmt.Sprintf("ignore_reasons[%d]", i), "%q is not a reason code (lower-case letters, digits and _)", r)
		}
	}
	return errors.Join(errs...)
}

func validReason(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// PolicyConfig is the config block of the brute_force route policy. The
// counting and lock-out settings are the gateway's (Config); a route may
// only opt out of the progressive delay.
//
//	policies:
//	  - type: brute_force              # first in the chain
//	  - type: api_key
//	  - type: brute_force              # optional: also after authentication
//	    progressive_delay: false
type PolicyConfig struct {
	// ProgressiveDelay delays requests from addresses in the delay band
	// (default true). false keeps the lock-out but never delays, for
	// routes where a held request costs more than it protects.
	ProgressiveDelay *bool `yaml:"progressive_delay"`
}

// retryAfter is the Retry-After header for a wait: whole seconds, at
// least one.
func retryAfter(wait time.Duration) http.Header {
	secs := int64((wait + time.Second - 1) / time.Second)
	return http.Header{"Retry-After": {fmt.Sprint(max(1, secs))}}
}
