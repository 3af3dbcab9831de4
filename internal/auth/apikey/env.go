package apikey

import (
	"context"

	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// KeyStore is what the policy needs of the record store at request time.
// *store.Store implements it.
type KeyStore interface {
	// KeyByLookupID returns the key record with that lookup id, with its
	// consumer's disabled flag; an error wrapping store.ErrNotFound if
	// there is none.
	KeyByLookupID(ctx context.Context, id string) (store.APIKey, error)
}

var _ KeyStore = (*store.Store)(nil)

// storeOf returns the gateway's record store, from policy.Env.Records, or
// nil when there is none or it cannot look keys up: the policy then fails
// closed (503 key_store_unavailable). A nil *store.Store in Records is
// not nil here, but its KeyByLookupID fails, with the same outcome.
func storeOf(env *policy.Env) KeyStore {
	if env == nil {
		return nil
	}
	ks, _ := env.Records.(KeyStore)
	return ks
}
