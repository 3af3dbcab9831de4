package jwt

import "crypto/sha256"

// cacheKey is the SHA-256 of a token, the key of the caches of verified
// tokens and introspection results (ttlcache.Cache): they never hold a
// token itself.
type cacheKey [sha256.Size]byte
