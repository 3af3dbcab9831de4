package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of UseEnrollToken, besides ErrNotFound (no such token).
var (
	// ErrTokenUsed: the enrollment token has already been used.
	ErrTokenUsed = errors.New("enrollment token already used")
	// ErrTokenExpired: the enrollment token has expired unused.
	ErrTokenExpired = errors.New("enrollment token expired")
)

// EnrollToken is the record of a one-time enrollment token: never the
// token itself, only its SHA-256, with what a certificate obtained with it
// may name.
type EnrollToken struct {
	// Hash is the lowercase hex SHA-256 of the token.
	Hash string
	// Consumer is who the token was made for.
	Consumer string
	// CommonName is the only common name the certificate may carry; empty
	// for none.
	CommonName string
	// Names are the SANs the certificate may carry, each "dns:" or "uri:"
	// followed by the name. No name may contain a line break.
	Names     []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when the token was used; zero if it was not.
	UsedAt time.Time
}

const selectEnrollToken = `SELECT hash, consumer, common_name, names, created_at, expires_at, used_at FROM enroll_tokens`

func scanEnrollToken(r scanner) (EnrollToken, error) {
	var t EnrollToken
	var names string
	var created, expires, used sql.NullInt64
	if err := r.Scan(&t.Hash, &t.Consumer, &t.CommonName, &names, &created, &expires, &used); err != nil {
		return EnrollToken{}, err
	}
	if names != "" {
		t.Names = strings.Split(names, "\n")
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = goTime(created), goTime(expires), goTime(used)
	return t, nil
}

// CreateEnrollToken records a new, unused enrollment token; ErrExists if
// its hash is already recorded. The token may be handed out once this
// returns nil.
func (s *Store) CreateEnrollToken(ctx context.Context, t EnrollToken) error {
	switch {
	case s == nil || s.db == nil:
		return errors.New("store: not open")
	case t.Hash == "" || t.Consumer == "":
		return errors.New("enrollment token: empty hash or consumer")
	case t.CreatedAt.IsZero() || t.ExpiresAt.IsZero():
		return errors.New("enrollment token: missing creation or expiry time")
	case !t.UsedAt.IsZero():
		return errors.New("enrollment token: a new token is not used")
	case strings.ContainsAny(t.CommonName, "\r\n"):
		return errors.New("enrollment token: common name contains a line break")
	}
	for _, n := range t.Names {
		if n == "" || strings.ContainsAny(n, "\r\n") {
			return fmt.Errorf("enrollment token: name %q is empty or contains a line break", n)
		}
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO enroll_tokens (hash, consumer, common_name, names, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
		t.Hash, t.Consumer, t.CommonName, strings.Join(t.Names, "\n"), dbTime(t.CreatedAt), dbTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create enrollment token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create enrollment token: %w", err)
	} else if n == 0 {
		return fmt.Errorf("enrollment token: %w", ErrExists)
	}
	return nil
}

// EnrollTokenByHash returns the record of the token with that hash, or
// ErrNotFound.
func (s *Store) EnrollTokenByHash(ctx context.Context, hash string) (EnrollToken, error) {
	if s == nil || s.db == nil {
		return EnrollToken{}, errors.New("store: not open")
	}
	t, err := scanEnrollToken(s.db.QueryRowContext(ctx, selectEnrollToken+` WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return EnrollToken{}, fmt.Errorf("enrollment token: %w", ErrNotFound)
	}
	if err != nil {
		return EnrollToken{}, fmt.Errorf("read enrollment token: %w", err)
	}
	return t, nil
}

// UseEnrollToken marks the token with that hash used at time at and
// returns its record: one conditional UPDATE (unused and expiring after
// at), so that of concurrent uses, in this process or another sharing the
// file, exactly one succeeds. Otherwise it returns ErrNotFound,
// ErrTokenUsed or ErrTokenExpired.
func (s *Store) UseEnrollToken(ctx context.Context, hash string, at time.Time) (EnrollToken, error) {
	if s == nil || s.db == nil {
		return EnrollToken{}, errors.New("store: not open")
	}
	if at.IsZero() {
		return EnrollToken{}, errors.New("use enrollment token: no time")
	}
	var t EnrollToken
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanEnrollToken(tx.QueryRowContext(ctx, `UPDATE enroll_tokens SET used_at = ?
WHERE hash = ? AND used_at IS NULL AND expires_at > ?
RETURNING hash, consumer, common_name, names, created_at, expires_at, used_at`, dbTime(at), hash, dbTime(at)))
		return err
	})
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return EnrollToken{}, fmt.Errorf("use enrollment token: %w", err)
	}
	// Refused: say why.
	t, err = s.EnrollTokenByHash(ctx, hash)
	switch {
	case err != nil:
		return EnrollToken{}, err
	case !t.UsedAt.IsZero():
		return EnrollToken{}, fmt.Errorf("enrollment token: %w", ErrTokenUsed)
	default:
		return EnrollToken{}, fmt.Errorf("enrollment token: %w", ErrTokenExpired)
	}
}

// DeleteExpiredEnrollTokens deletes the tokens that expired before
// before, used or not, and returns how many it deleted.
func (s *Store) DeleteExpiredEnrollTokens(ctx context.Context, before time.Time) (int64, error) {
	if s == nil || s.db == nil {
		return 0, errors.New("store: not open")
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM enroll_tokens WHERE expires_at < ?`, dbTime(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired enrollment tokens: %w", err)
	}
	return res.RowsAffected()
}
