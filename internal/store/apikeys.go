package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Consumer is a client of the gateway, the owner of credentials.
type Consumer struct {
	// Name is unique and identifies the consumer everywhere (policies,
	// audit events, identity headers).
	Name string
	// Metadata is free-form operator data (team, contact, plan…).
	Metadata map[string]string
	// CreatedAt is set by the caller.
	CreatedAt time.Time
	// Disabled consumers' credentials are refused.
	Disabled bool
}

// APIKey is the stored record of an API key: never the key itself, only
// a hash of its secret part.
type APIKey struct {
	// ID is the key's public lookup id, also the record's primary key.
	ID       string
	Consumer string
	// Hash is the digest of the key's secret; the store keeps it opaque.
	Hash      []byte
	CreatedAt time.Time
	// ExpiresAt is when the key stops working; zero for never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero if it is not.
	RevokedAt time.Time
	// ReplacedBy is the id of the key that replaced this one in a
	// rotation, and OverlapUntil the end of the window in which both
	// work; both zero unless the key was rotated.
	ReplacedBy   string
	OverlapUntil time.Time

	// ConsumerDisabled reports, on records read from the store, whether
	// the key's consumer is disabled. It is ignored on writes.
	ConsumerDisabled bool
}

// CreateConsumer records a new consumer; ErrExists if the name is taken.
func (s *Store) CreateConsumer(ctx context.Context, c Consumer) error {
	if c.Name == "" {
		return errors.New("consumer: empty name")
	}
	meta, err := encodeMetadata(c.Metadata)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO consumers (name, metadata, created_at, disabled) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING`, c.Name, meta, dbTime(c.CreatedAt), c.Disabled)
	if err != nil {
		return fmt.Errorf("create consumer %q: %w", c.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create consumer %q: %w", c.Name, err)
	} else if n == 0 {
		return fmt.Errorf("consumer %q: %w", c.Name, ErrExists)
	}
	return nil
}

// Consumer returns the named consumer, or ErrNotFound.
func (s *Store) Consumer(ctx context.Context, name string) (Consumer, error) {
	c := Consumer{Name: name}
	var meta string
	var created sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT metadata, created_at, disabled FROM consumers WHERE name = ?`, name).
		Scan(&meta, &created, &c.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Consumer{}, fmt.Errorf("consumer %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Consumer{}, fmt.Errorf("read consumer %q: %w", name, err)
	}
	c.CreatedAt = goTime(created)
	if err := json.Unmarshal([]byte(meta), &c.Metadata); err != nil {
		return Consumer{}, fmt.Errorf("consumer %q: metadata: %w", name, err)
	}
	return c, nil
}

// SetConsumerDisabled disables (or re-enables) a consumer: its keys are
// refused from the next request on.
func (s *Store) SetConsumerDisabled(ctx context.Context, name string, disabled bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE consumers SET disabled = ? WHERE name = ?`, disabled, name)
	if err != nil {
		return fmt.Errorf("update consumer %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update consumer %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("consumer %q: %w", name, ErrNotFound)
	}
	return nil
}

func encodeMetadata(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("consumer metadata: %w", err)
	}
	return string(b), nil
}

// CreateKey records a new key for an existing consumer (ErrNotFound if
// there is none). It returns once the record is committed: only then may
// the key be shown.
func (s *Store) CreateKey(ctx context.Context, k APIKey) error {
	if err := checkNewKey(k); err != nil {
		return err
	}
	return s.tx(ctx, func(t *sql.Tx) error {
		return insertKey(ctx, t, k)
	})
}

func checkNewKey(k APIKey) error {
	switch {
	case k.ID == "":
		return errors.New("api key: empty id")
	case k.Consumer == "":
		return errors.New("api key: empty consumer")
	case len(k.Hash) == 0:
		return errors.New("api key: empty hash")
	case k.CreatedAt.IsZero():
		return errors.New("api key: no creation time")
	case !k.RevokedAt.IsZero() || k.ReplacedBy != "" || !k.OverlapUntil.IsZero():
		return errors.New("api key: a new key cannot be revoked or replaced")
	}
	return nil
}

func insertKey(ctx context.Context, t *sql.Tx, k APIKey) error {
	var one int
	err := t.QueryRowContext(ctx, `SELECT 1 FROM consumers WHERE name = ?`, k.Consumer).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("consumer %q: %w", k.Consumer, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, err)
	}
	res, err := t.ExecContext(ctx, `INSERT INTO api_keys (id, consumer, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`, k.ID, k.Consumer, hex.EncodeToString(k.Hash), dbTime(k.CreatedAt), dbTime(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, err)
	} else if n == 0 {
		return fmt.Errorf("api key %s: %w", k.ID, ErrExists)
	}
	return nil
}

const selectKey = `SELECT k.id, k.consumer, k.hash, k.created_at, k.expires_at, k.revoked_at, k.replaced_by, k.overlap_until, c.disabled
FROM api_keys k JOIN consumers c ON c.name = k.consumer`

type scanner interface{ Scan(...any) error }

func scanKey(r scanner) (APIKey, error) {
	var k APIKey
	var hash string
	var created, expires, revoked, overlap sql.NullInt64
	var replaced sql.NullString
	if err := r.Scan(&k.ID, &k.Consumer, &hash, &created, &expires, &revoked, &replaced, &overlap, &k.ConsumerDisabled); err != nil {
		return APIKey{}, err
	}
	var err error
	if k.Hash, err = hex.DecodeString(hash); err != nil {
		return APIKey{}, fmt.Errorf("api key %s: bad hash: %w", k.ID, err)
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.OverlapUntil = goTime(created), goTime(expires), goTime(revoked), goTime(overlap)
	k.ReplacedBy = replaced.String
	return k, nil
}

// KeyByLookupID returns the key with that lookup id and whether its
// consumer is disabled, in one query; ErrNotFound if there is none. It is
// on the request path: one indexed read on a warm, prepared statement.
func (s *Store) KeyByLookupID(ctx context.Context, id string) (APIKey, error) {
	if s == nil || s.byID == nil {
		return APIKey{}, errors.New("store: not open")
	}
	k, err := scanKey(s.byID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, fmt.Errorf("api key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("read api key %s: %w", id, err)
	}
	return k, nil
}

// ListKeys returns the keys of one consumer, or of all consumers if
// consumer is empty, oldest first.
func (s *Store) ListKeys(ctx context.Context, consumer string) ([]APIKey, error) {
	q, args := selectKey+` ORDER BY k.created_at, k.id`, []any(nil)
	if consumer != "" {
		q, args = selectKey+` WHERE k.consumer = ? ORDER BY k.created_at, k.id`, []any{consumer}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// RevokeKey revokes a key as of at; ErrNotFound if there is none.
// Revoking a revoked key keeps its first revocation time and is not an
// error.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return errors.New("revoke api key: no revocation time")
	}
	return s.tx(ctx, func(t *sql.Tx) error {
		res, err := t.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, dbTime(at), id)
		if err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("api key %s: %w", id, ErrNotFound)
		}
		return nil
	})
}

// RotateKey records next as the successor of the key oldID, for the same
// consumer (next.Consumer may be empty, or must match), and marks oldID as
// replaced, with overlapUntil as the end of the window in which both keys
// work. It is one transaction: either both changes are committed or
// neither. It returns the successor's record as stored. ErrNotFound,
// ErrRevoked and ErrRotated say why a key cannot be rotated.
func (s *Store) RotateKey(ctx context.Context, oldID string, next APIKey, overlapUntil time.Time) (APIKey, error) {
	if overlapUntil.IsZero() {
		return APIKey{}, errors.New("rotate api key: no overlap end")
	}
	err := s.tx(ctx, func(t *sql.Tx) error {
		old, err := scanKey(t.QueryRowContext(ctx, selectKey+` WHERE k.id = ?`, oldID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("api key %s: %w", oldID, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("rotate api key %s: %w", oldID, err)
		}
		switch {
		case !old.RevokedAt.IsZero():
			return fmt.Errorf("api key %s: %w", oldID, ErrRevoked)
		case old.ReplacedBy != "":
			return fmt.Errorf("api key %s: %w (by %s)", oldID, ErrRotated, old.ReplacedBy)
		}
		next.ConsumerDisabled = old.ConsumerDisabled
		if next.Consumer == "" {
			next.Consumer = old.Consumer
		} else if next.Consumer != old.Consumer {
			return fmt.Errorf("rotate api key %s: successor is for consumer %q, not %q", oldID, next.Consumer, old.Consumer)
		}
		if err := checkNewKey(next); err != nil {
			return err
		}
		if err := insertKey(ctx, t, next); err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `UPDATE api_keys SET replaced_by = ?, overlap_until = ? WHERE id = ?`,
			next.ID, dbTime(overlapUntil), oldID)
		if err != nil {
			return fmt.Errorf("rotate api key %s: %w", oldID, err)
		}
		return nil
	})
	if err != nil {
		return APIKey{}, err
	}
	next.CreatedAt, next.ExpiresAt = Round(next.CreatedAt), Round(next.ExpiresAt)
	return next, nil
}
