package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is a parsed JWK set: public signature keys only.
type keySet struct {
	byKID map[string][]jose.JSONWebKey
	all   []jose.JSONWebKey
}

// keys returns the set's keys named kid, or all of them when kid is "".
func (s *keySet) keys(kid string) []jose.JSONWebKey {
	if kid == "" {
		return s.all
	}
	return s.byKID[kid]
}

// parseKeySet parses a JWK set (RFC 7517 section 5), keeping the public
// signature keys Warden can use: RSA of at least minRSABits, ECDSA P-256,
// P-384 and P-521, and Ed25519. Symmetric keys are dropped (HMAC is never
// allowed), as are keys marked for encryption; of a private key only its
// public half is kept. A key Warden cannot parse is skipped, so that one
// exotic key does not disable an issuer; a set with no usable key is an
// error.
func parseKeySet(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	set := &keySet{byKID: map[string][]jose.JSONWebKey{}}
	for _, raw := range doc.Keys {
		if len(set.all) == maxJWKSKeys {
			break
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default: // symmetric, or not a key
			continue
		}
		set.all = append(set.all, k)
		if k.KeyID != "" {
			set.byKID[k.KeyID] = append(set.byKID[k.KeyID], k)
		}
	}
	if len(set.all) == 0 {
		return nil, errors.New("no usable public signature key (RSA 2048+, EC P-256/384/521, Ed25519)")
	}
	return set, nil
}

// keyFits reports whether k may verify a signature made with alg: its
// type and curve must match, and so must its own alg if it names one.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == "ES256" && pub.Curve == elliptic.P256() ||
			alg == "ES384" && pub.Curve == elliptic.P384() ||
			alg == "ES512" && pub.Curve == elliptic.P521()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keySource yields an issuer's keys named kid (all of them for "").
type keySource interface {
	lookup(ctx context.Context, kid string, now time.Time, onFail func(error)) ([]jose.JSONWebKey, *Error)
}

// staticKeys is a key set read from a file when the policy was built.
type staticKeys struct{ set *keySet }

func (s staticKeys) lookup(_ context.Context, kid string, _ time.Time, _ func(error)) ([]jose.JSONWebKey, *Error) {
	if ks := s.set.keys(kid); len(ks) > 0 {
		return ks, nil
	}
	return nil, fail(ReasonUnknownKID, "no key with kid %q in the issuer's set", truncate(kid))
}

// remoteKeys is a key set fetched from an https URL: lazily on first use,
// again in the background once it is older than refresh, and on an
// unknown kid at most once per UnknownKIDInterval. While the endpoint
// fails, attempts back off exponentially and the last good set stays in
// use. It runs no long-lived goroutine: every fetch is prompted by a
// request and bounded by fetchTimeout, so a policy dropped on reload
// leaves nothing behind. Times come from the callers' (injectable) clock.
type remoteKeys struct {
	url     string
	client  *http.Client
	refresh time.Duration

	set atomic.Pointer[keySet]

	mu          sync.Mutex
	fetchedAt   time.Time     // start of the last successful fetch
	lastAttempt time.Time     // start of the last fetch
	notBefore   time.Time     // backoff: no fetch before this
	failures    int           // consecutive failed fetches
	lastErr     error         // cause of the last failure
	inflight    chan struct{} // closed when the running fetch ends; nil if none
}

func newRemoteKeys(url string, client *http.Client, refresh time.Duration) *remoteKeys {
	return &remoteKeys{url: url, client: client, refresh: refresh}
}

func (s *remoteKeys) lookup(ctx context.Context, kid string, now time.Time, onFail func(error)) ([]jose.JSONWebKey, *Error) {
	set := s.set.Load()
	if set != nil {
		if ks := set.keys(kid); len(ks) > 0 {
			s.mu.Lock()
			if s.inflight == nil && now.Sub(s.fetchedAt) >= s.refresh && !now.Before(s.notBefore) {
				s.startLocked(now, onFail) // refresh in the background; this request goes on
			}
			s.mu.Unlock()
			return ks, nil
		}
	}
	// Unknown kid, or no set yet: fetch (or join a running fetch) and wait,
	// unless the rate limit or the backoff forbids it.
	s.mu.Lock()
	done := s.inflight
	if done == nil && !now.Before(s.notBefore) && (set == nil || now.Sub(s.lastAttempt) >= UnknownKIDInterval) {
		done = s.startLocked(now, onFail)
	}
	lastErr := s.lastErr
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fail(ReasonJWKSUnavailable, "waiting for %s: %w", s.url, ctx.Err())
		}
		set = s.set.Load()
		s.mu.Lock()
		lastErr = s.lastErr
		s.mu.Unlock()
	}
	if set == nil {
		return nil, &Error{Reason: ReasonJWKSUnavailable, Err: fmt.Errorf("no key set from %s yet: %w", s.url, lastErr)}
	}
	if ks := set.keys(kid); len(ks) > 0 {
		return ks, nil
	}
	return nil, fail(ReasonUnknownKID, "no key with kid %q in the issuer's set", truncate(kid))
}

// startLocked starts a fetch; s.mu is held.
func (s *remoteKeys) startLocked(now time.Time, onFail func(error)) chan struct{} {
	done := make(chan struct{})
	s.inflight, s.lastAttempt = done, now
	go func() {
		set, err := s.fetch()
		s.mu.Lock()
		if err == nil {
			s.set.Store(set)
			s.fetchedAt, s.failures, s.notBefore, s.lastErr = now, 0, time.Time{}, nil
		} else {
			s.failures++
			s.notBefore, s.lastErr = now.Add(backoff(s.failures)), err
		}
		s.inflight = nil
		s.mu.Unlock()
		if err != nil && onFail != nil {
			onFail(err)
		}
		close(done) // after the outcome is fully recorded, event included
	}()
	return done
}

// idle waits until no fetch is running.
func (s *remoteKeys) idle() {
	s.mu.Lock()
	done := s.inflight
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

// backoff is the wait after n consecutive failures: minBackoff doubled
// n-1 times, at most maxBackoff.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

func (s *remoteKeys) fetch() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", s.url, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.url, err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", s.url, maxJWKSBytes)
	}
	set, err := parseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.url, err)
	}
	return set, nil
}
