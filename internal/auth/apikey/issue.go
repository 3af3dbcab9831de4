package apikey

import (
	"context"
	"errors"
	"time"

	"github.com/wardengw/warden/internal/store"
)

// Issuer is what issuing and rotating keys need of the record store.
// *store.Store implements it.
type Issuer interface {
	CreateKey(ctx context.Context, k store.APIKey) error
	RotateKey(ctx context.Context, oldID string, next store.APIKey, overlapUntil time.Time) (store.APIKey, error)
}

var _ Issuer = (*store.Store)(nil)

// idAttempts bounds retries on a lookup-id collision (71 random bits: a
// collision means a broken random source more likely than bad luck).
const idAttempts = 3

// Record returns the store record of k: its lookup id and hash, never the
// key, with times as the store keeps them. A zero expires means the key
// never expires.
func Record(k Key, consumer string, now, expires time.Time) store.APIKey {
	return store.APIKey{ID: k.LookupID(), Consumer: consumer, Hash: k.Hash(), CreatedAt: store.Round(now), ExpiresAt: store.Round(expires)}
}

// Issue generates a key for an existing consumer and records its hash. It
// returns the key only once the record is committed, so a key that was
// shown always works. A zero expires means never.
func Issue(ctx context.Context, s Issuer, consumer string, now, expires time.Time) (Key, store.APIKey, error) {
	return issue(func(k Key) (store.APIKey, error) {
		rec := Record(k, consumer, now, expires)
		return rec, s.CreateKey(ctx, rec)
	})
}

// Rotate generates the successor of the key oldID, for the same consumer,
// and records both changes in one transaction: the new key, and the old
// one's end at overlapUntil. Until then both work. The new key is returned
// only once committed. A zero expires means the new key never expires.
func Rotate(ctx context.Context, s Issuer, oldID string, now, expires, overlapUntil time.Time) (Key, store.APIKey, error) {
	return issue(func(k Key) (store.APIKey, error) {
		return s.RotateKey(ctx, oldID, Record(k, "", now, expires), overlapUntil)
	})
}

func issue(save func(Key) (store.APIKey, error)) (Key, store.APIKey, error) {
	for range idAttempts {
		k, err := Generate()
		if err != nil {
			return Key{}, store.APIKey{}, err
		}
		rec, err := save(k)
		if errors.Is(err, store.ErrExists) { // only the new lookup id can collide
			continue
		}
		if err != nil {
			return Key{}, store.APIKey{}, err
		}
		return k, rec, nil
	}
	return Key{}, store.APIKey{}, errors.New("generate API key: lookup id collisions: is the random source broken?")
}
