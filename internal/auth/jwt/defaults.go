package jwt

import (
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults live here, in one place.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat when an
	// issuer's leeway is zero; MaxLeeway is the most a config may set.
	DefaultLeeway = 30 * time.Second
	MaxLeeway     = 2 * time.Minute
	// DefaultMaxTokenBytes bounds a bearer token when max_token_bytes is
	// zero; MaxMaxTokenBytes is the most a config may set.
	DefaultMaxTokenBytes = 8192
	MaxMaxTokenBytes     = 64 << 10
	// DefaultCacheEntries bounds a policy's cache of verified tokens (or
	// introspection results) when its size is zero.
	DefaultCacheEntries = 10000
	// CacheTTL is the longest a verified token is served from the cache,
	// however distant its exp: a key dropped from the issuer's set stops
	// working within this time.
	CacheTTL = 5 * time.Minute
	// DefaultConsumerClaim names the claim that becomes Identity.Consumer.
	DefaultConsumerClaim = "sub"

	// DefaultJWKSRefresh is how often a jwks_url is re-fetched when
	// jwks_refresh is zero; a config may set 30s to 24h.
	DefaultJWKSRefresh = 5 * time.Minute
	// UnknownKIDInterval is the least time between two fetches of a
	// jwks_url prompted by an unknown kid (any fetch counts).
	UnknownKIDInterval = 30 * time.Second
	// fetchTimeout bounds one JWKS or introspection request.
	fetchTimeout = 5 * time.Second
	// Backoff after failed fetches: it doubles from minBackoff to maxBackoff.
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
	// maxJWKSBytes bounds a key set document, from a URL or a file;
	// maxJWKSKeys the keys kept from it.
	maxJWKSBytes = 1 << 20
	maxJWKSKeys  = 100
	// minRSABits is the smallest RSA key accepted from a key set.
	minRSABits = 2048

	// DefaultIntrospectionTTL is the longest an introspection result is
	// cached when cache_ttl is zero; MaxIntrospectionTTL the most allowed.
	DefaultIntrospectionTTL = time.Minute
	MaxIntrospectionTTL     = 10 * time.Minute
	// maxIntrospectionBytes bounds an introspection response.
	maxIntrospectionBytes = 64 << 10
	// maxAuditText bounds attacker-chosen text copied into audit events.
	maxAuditText = 256
	// maxJSONDepth bounds nesting in a token's header and payload.
	maxJSONDepth = 32
)

// DefaultAlgorithms is an issuer's algorithm allow-list when none is
// configured.
var DefaultAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// supportedAlgs are the algorithms a config may allow: asymmetric only.
// "none" and HS256/384/512 are absent, so they can never be configured.
var supportedAlgs = map[string]jose.SignatureAlgorithm{
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"EdDSA": jose.EdDSA,
}

// DefaultForwardClaims are the claims put in forward.claims_header when
// forward.claims is empty.
var DefaultForwardClaims = []string{"iss", "sub", "aud", "exp", "scope", "scp", "client_id"}
