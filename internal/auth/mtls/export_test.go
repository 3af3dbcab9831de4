package mtls

import (
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/ttlcache"
)

// Test hooks: the external tests and fuzz targets reach unexported
// encoders and matchers through these.

// SFBinary is sfBinary.
var SFBinary = sfBinary

// ChainHeaders is chainHeaders.
var ChainHeaders = chainHeaders

// ASCIIJSON is the shared header-safe JSON encoder.
var ASCIIJSON = policy.ASCIIJSON

// CacheLen returns the number of cached verification results.
func CacheLen(p *Policy) int { return p.cache.Len() }

// SPIFFEMatch parses pattern as a SPIFFE ID pattern and id as a SPIFFE ID,
// and reports whether both parsed and the pattern matches.
func SPIFFEMatch(pattern, id string) (match, patternOK, idOK bool) {
	p, perr := parseSPIFFEID(pattern, true)
	i, ierr := parseSPIFFEID(id, false)
	return perr == nil && ierr == nil && p.matches(i), perr == nil, ierr == nil
}

// GlobMatch is the subject glob.
func GlobMatch(pattern, s string) bool { return compileGlob(pattern).match(s) }

// DNSMatch parses pattern as a dns matcher and matches name.
func DNSMatch(pattern, name string) (match, ok bool) {
	p, err := parseDNSPattern(pattern)
	return err == nil && p.match(name), err == nil
}

// EmailMatch parses pattern as an email matcher and matches addr.
func EmailMatch(pattern, addr string) (match, ok bool) {
	p, err := parseEmailPattern(pattern)
	return err == nil && p.matchAny([]string{addr}), err == nil
}

// ResetCache empties the verification cache.
func ResetCache(p *Policy) { p.cache = ttlcache.New[cacheKey, *result](cacheSize) }
