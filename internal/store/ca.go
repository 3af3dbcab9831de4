package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrAlreadyRevoked: the certificate is already revoked. Revocation is
// final; its reason and time are not changed.
var ErrAlreadyRevoked = errors.New("certificate already revoked")

// IssuedCert is the record of a certificate the internal CA issued. It is
// written before the certificate is handed out.
type IssuedCert struct {
	// Serial is the serial number, lowercase hex without leading zeros.
	Serial string
	// Issuer identifies the issuing CA: the lowercase hex SHA-256 of its
	// SubjectPublicKeyInfo.
	Issuer string
	// Subject is the certificate's subject, in RFC 2253 form.
	Subject string
	// SANs are the subject alternative names, each "dns:", "ip:", "uri:"
	// or "email:" followed by the name. No SAN may contain a newline.
	SANs []string
	// Profile is "client" or "server".
	Profile   string
	NotBefore time.Time
	NotAfter  time.Time
	IssuedAt  time.Time
	// PEM is the certificate in PEM form.
	PEM []byte
	// RevokedAt is the revocation time; zero if not revoked.
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code of the revocation.
	Reason int
}

// Revoked reports whether the certificate is revoked.
func (c IssuedCert) Revoked() bool { return !c.RevokedAt.IsZero() }

const selectIssued = `SELECT serial, issuer, subject, sans, profile, not_before, not_after, issued_at, pem, revoked_at, reason FROM ca_issued`

func scanIssued(r scanner) (IssuedCert, error) {
	var c IssuedCert
	var sans, pem string
	var nb, na, at, rev sql.NullInt64
	if err := r.Scan(&c.Serial, &c.Issuer, &c.Subject, &sans, &c.Profile, &nb, &na, &at, &pem, &rev, &c.Reason); err != nil {
		return IssuedCert{}, err
	}
	if sans != "" {
		c.SANs = strings.Split(sans, "\n")
	}
	c.PEM = []byte(pem)
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = goTime(nb), goTime(na), goTime(at), goTime(rev)
	return c, nil
}

// RecordIssued records an issued certificate. A serial already recorded
// is ErrExists; the record is durable when RecordIssued returns nil.
func (s *Store) RecordIssued(ctx context.Context, c IssuedCert) error {
	switch {
	case s == nil || s.db == nil:
		return errors.New("store: not open")
	case c.Serial == "" || c.Issuer == "" || c.Profile == "" || len(c.PEM) == 0:
		return errors.New("issued certificate: empty serial, issuer, profile or PEM")
	case c.NotBefore.IsZero() || c.NotAfter.IsZero() || c.IssuedAt.IsZero():
		return errors.New("issued certificate: missing validity or issue time")
	case !c.RevokedAt.IsZero():
		return errors.New("issued certificate: a new record is not revoked")
	}
	for _, san := range c.SANs {
		if strings.ContainsAny(san, "\r\n") {
			return fmt.Errorf("issued certificate %s: SAN %q contains a line break", c.Serial, san)
		}
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO ca_issued
(serial, issuer, subject, sans, profile, not_before, not_after, issued_at, pem)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
		c.Serial, c.Issuer, c.Subject, strings.Join(c.SANs, "\n"), c.Profile,
		dbTime(c.NotBefore), dbTime(c.NotAfter), dbTime(c.IssuedAt), string(c.PEM))
	if err != nil {
		return fmt.Errorf("record issued certificate %s: %w", c.Serial, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("record issued certificate %s: %w", c.Serial, err)
	} else if n == 0 {
		return fmt.Errorf("issued certificate %s: %w", c.Serial, ErrExists)
	}
	return nil
}

// IssuedCert returns the record of the certificate with that serial
// (lowercase hex), or ErrNotFound.
func (s *Store) IssuedCert(ctx context.Context, serial string) (IssuedCert, error) {
	if s == nil || s.db == nil {
		return IssuedCert{}, errors.New("store: not open")
	}
	c, err := scanIssued(s.db.QueryRowContext(ctx, selectIssued+` WHERE serial = ?`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return IssuedCert{}, fmt.Errorf("issued certificate %s: %w", serial, ErrNotFound)
	}
	if err != nil {
		return IssuedCert{}, fmt.Errorf("read issued certificate %s: %w", serial, err)
	}
	return c, nil
}

// RevokeIssued records the revocation of the certificate with that serial
// at time at, with an RFC 5280 reason code, and increments its issuer's
// revocation generation (RevocationGeneration), in one transaction: of
// concurrent revocations exactly one is recorded. It returns ErrNotFound
// for an unknown serial and ErrAlreadyRevoked if it was already revoked
// (the first revocation stands).
func (s *Store) RevokeIssued(ctx context.Context, serial string, reason int, at time.Time) error {
	if s == nil || s.db == nil {
		return errors.New("store: not open")
	}
	if at.IsZero() {
		return errors.New("revoke issued certificate: no time")
	}
	var n int64
	err := s.tx(ctx, func(t *sql.Tx) error {
		res, err := t.ExecContext(ctx, `UPDATE ca_issued SET revoked_at = ?, reason = ? WHERE serial = ? AND revoked_at IS NULL`,
			dbTime(at), reason, serial)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO ca_revocation_gen (issuer, gen)
SELECT issuer, 1 FROM ca_issued WHERE serial = ?
ON CONFLICT (issuer) DO UPDATE SET gen = ca_revocation_gen.gen + 1`, serial)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke issued certificate %s: %w", serial, err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.IssuedCert(ctx, serial); err != nil {
		return err
	}
	return fmt.Errorf("issued certificate %s: %w", serial, ErrAlreadyRevoked)
}

// RevocationGeneration returns the revocation generation of issuer: a
// number that changes (increases) with every revocation of one of its
// certificates recorded by any process sharing the store, 0 before the
// first. It is one primary-key lookup, cheap enough for every request.
func (s *Store) RevocationGeneration(ctx context.Context, issuer string) (int64, error) {
	if s == nil || s.db == nil {
		return 0, errors.New("store: not open")
	}
	var gen int64
	err := s.revGen.QueryRowContext(ctx, issuer).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read revocation generation of %s: %w", issuer, err)
	}
	return gen, nil
}

// ListIssued returns the certificates issued by issuer (every issuer if
// empty), newest first, at most limit of them (no limit if limit <= 0).
func (s *Store) ListIssued(ctx context.Context, issuer string, limit int) ([]IssuedCert, error) {
	q, args := selectIssued, []any{}
	if issuer != "" {
		q += ` WHERE issuer = ?`
		args = append(args, issuer)
	}
	q += ` ORDER BY issued_at DESC, serial`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	return s.queryIssued(ctx, "list issued certificates", q, args...)
}

// RevokedList returns the revoked certificates of issuer (every issuer if
// empty), in order of revocation: what a CRL lists.
func (s *Store) RevokedList(ctx context.Context, issuer string) ([]IssuedCert, error) {
	q, args := selectIssued+` WHERE revoked_at IS NOT NULL`, []any{}
	if issuer != "" {
		q += ` AND issuer = ?`
		args = append(args, issuer)
	}
	q += ` ORDER BY revoked_at, serial`
	return s.queryIssued(ctx, "list revoked certificates", q, args...)
}

func (s *Store) queryIssued(ctx context.Context, what, q string, args ...any) ([]IssuedCert, error) {
	if s == nil || s.db == nil {
		return nil, errors.New("store: not open")
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []IssuedCert
	for rows.Next() {
		c, err := scanIssued(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// NextCRLNumber returns the next CRL number of issuer, starting at 1, and
// records it: one atomic increment, so that numbers strictly increase
// across restarts and across gateways sharing the store.
func (s *Store) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	if s == nil || s.db == nil {
		return 0, errors.New("store: not open")
	}
	if issuer == "" {
		return 0, errors.New("next CRL number: empty issuer")
	}
	var n int64
	err := s.tx(ctx, func(t *sql.Tx) error {
		return t.QueryRowContext(ctx, `INSERT INTO ca_crl_numbers (issuer, number) VALUES (?, 1)
ON CONFLICT (issuer) DO UPDATE SET number = ca_crl_numbers.number + 1 RETURNING number`, issuer).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("next CRL number of %s: %w", issuer, err)
	}
	return n, nil
}
