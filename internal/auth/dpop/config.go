package dpop

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardengw/warden/internal/policy"
)

// Type is the policy type name used in configs.
const Type = "dpop"

func init() { policy.RegisterConfig(Type, New) }

// Config is the dpop policy's config block. Zero values mean the defaults
// of defaults.go.
type Config struct {
	// Required, true when nil, makes every request carry a DPoP-bound
	// access token (cnf.jkt) and a valid proof for it. False checks only
	// requests whose token is DPoP-bound or sent with the DPoP scheme;
	// plain bearer tokens then pass untouched.
	Required *bool `yaml:"required"`
	// Algorithms is the allow-list of proof algorithms; nil means
	// DefaultAlgorithms. Only asymmetric JWS algorithms can be listed:
	// none and HS* are config errors.
	Algorithms []string `yaml:"algorithms"`
	// IATWindow is how far a proof's iat may be from now, either way
	// (at most MaxIATWindow); 0 means DefaultIATWindow. It is also how
	// long a jti is remembered.
	IATWindow time.Duration `yaml:"iat_window"`
	// Nonce configures server-supplied nonces (RFC 9449 §8).
	Nonce NonceConfig `yaml:"nonce"`
	// ReplayCache bounds the jti replay cache.
	ReplayCache ReplayCacheConfig `yaml:"replay_cache"`
	// MaxProofBytes bounds the DPoP header value; 0 means
	// DefaultMaxProofBytes.
	MaxProofBytes int `yaml:"max_proof_bytes"`
}

// NonceConfig configures server-supplied DPoP nonces.
type NonceConfig struct {
	// Enabled makes a proof without a current nonce answer 401
	// use_dpop_nonce with a fresh DPoP-Nonce header.
	Enabled bool `yaml:"enabled"`
	// Lifetime is how long a nonce is accepted; 0 means
	// DefaultNonceLifetime.
	Lifetime time.Duration `yaml:"lifetime"`
}

// ReplayCacheConfig bounds the replay cache.
type ReplayCacheConfig struct {
	// MaxEntries bounds the remembered (jti, key) pairs; 0 means
	// DefaultReplayEntries.
	MaxEntries int `yaml:"max_entries"`
}

// supportedAlgs are the algorithms a config may allow: asymmetric only.
var supportedAlgs = map[string]jose.SignatureAlgorithm{
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512, "EdDSA": jose.EdDSA,
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
}

// New validates cfg, reporting every problem at once, and returns the
// policy. It is pure: no I/O, no globals.
func New(cfg Config) (*Policy, error) {
	p := &Policy{
		required: cfg.Required == nil || *cfg.Required,
		window:   orDefault(cfg.IATWindow, DefaultIATWindow),
		maxBytes: orDefault(cfg.MaxProofBytes, DefaultMaxProofBytes),
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	algs := cfg.Algorithms
	if algs == nil {
		algs = DefaultAlgorithms
	} else if len(algs) == 0 {
		add("algorithms: an empty list would refuse every proof; remove it for the default %v", DefaultAlgorithms)
	}
	p.algs = map[string]bool{}
	for i, a := range algs {
		switch _, ok := supportedAlgs[a]; {
		case !ok:
			add("algorithms[%d]: %q is not an asymmetric JWS algorithm (one of ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512)", i, a)
		case p.algs[a]:
			add("algorithms[%d]: %q is listed twice", i, a)
		default:
			p.algs[a] = true
			p.algList = append(p.algList, a)
		}
	}
	if p.window < minIATWindow || p.window > MaxIATWindow {
		add("iat_window: %v is not between %v and %v", cfg.IATWindow, minIATWindow, MaxIATWindow)
	}
	if p.maxBytes < minMaxProofBytes || p.maxBytes > maxMaxProofBytes {
		add("max_proof_bytes: %d is not between %d and %d", cfg.MaxProofBytes, minMaxProofBytes, maxMaxProofBytes)
	}
	entries := orDefault(cfg.ReplayCache.MaxEntries, DefaultReplayEntries)
	if entries < minReplayEntries || entries > maxReplayEntries {
		add("replay_cache.max_entries: %d is not between %d and %d", cfg.ReplayCache.MaxEntries, minReplayEntries, maxReplayEntries)
	}
	lifetime := orDefault(cfg.Nonce.Lifetime, DefaultNonceLifetime)
	if lifetime < minNonceLifetime || lifetime > maxNonceLifetime {
		add("nonce.lifetime: %v is not between %v and %v", cfg.Nonce.Lifetime, minNonceLifetime, maxNonceLifetime)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.replay = newReplayCache(entries)
	if cfg.Nonce.Enabled {
		p.nonces = newNonces(lifetime)
	}
	algsParam := `algs="` + strings.Join(p.algList, " ") + `"`
	p.challenge = map[string]string{
		"":                   "DPoP " + algsParam,
		"invalid_token":      `DPoP error="invalid_token", ` + algsParam,
		"invalid_dpop_proof": `DPoP error="invalid_dpop_proof", ` + algsParam,
		"use_dpop_nonce":     `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", ` + algsParam,
	}
	return p, nil
}

// String describes the policy for logs.
func (p *Policy) String() string {
	return fmt.Sprintf("dpop(required %v; algorithms %v; iat_window %v; nonce %v)", p.required, p.algList, p.window, p.nonces != nil)
}

// Algorithms returns the allowed proof algorithms, in config order.
func (p *Policy) Algorithms() []string { return slices.Clone(p.algList) }

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
