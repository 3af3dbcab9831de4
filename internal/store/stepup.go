package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Errors of the step-up records, for errors.Is.
var (
	// ErrReplayed: the TOTP time step is not later than the last one
	// accepted for the consumer.
	ErrReplayed = errors.New("time step already used")
	// ErrTooManyPending: the consumer already has the maximum number of
	// pending, unexpired approvals.
	ErrTooManyPending = errors.New("too many pending approvals")
	// ErrNotPending: the approval was already decided (or used).
	ErrNotPending = errors.New("approval is not pending")
	// ErrApprovalExpired: the approval's deadline has passed.
	ErrApprovalExpired = errors.New("approval has expired")
	// ErrNotUsable: the approval exists but cannot be used for this
	// request now; the returned record says why.
	ErrNotUsable = errors.New("approval cannot be used")
)

// TOTPEnrollment is a consumer's TOTP (RFC 6238) enrollment.
type TOTPEnrollment struct {
	Consumer string
	// Secret is the shared HMAC key. The store keeps it as is: the
	// gateway needs it to compute codes.
	Secret    []byte
	CreatedAt time.Time
	// LastUsedStep is the last accepted time step; 0 if none yet.
	LastUsedStep int64
}

// EnrollTOTP records a consumer's TOTP secret. An existing enrollment is
// ErrExists unless replace is set, in which case it is replaced (and its
// last used step reset: the old secret's codes no longer verify).
func (s *Store) EnrollTOTP(ctx context.Context, e TOTPEnrollment, replace bool) error {
	switch {
	case e.Consumer == "":
		return errors.New("totp enrollment: empty consumer")
	case len(e.Secret) == 0:
		return errors.New("totp enrollment: empty secret")
	case e.CreatedAt.IsZero():
		return errors.New("totp enrollment: no creation time")
	}
	q := `INSERT INTO stepup_totp (consumer, secret, created_at, last_used_step) VALUES (?, ?, ?, ?)
ON CONFLICT (consumer) DO NOTHING`
	if replace {
		q = `INSERT INTO stepup_totp (consumer, secret, created_at, last_used_step) VALUES (?, ?, ?, ?)
ON CONFLICT (consumer) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_used_step = excluded.last_used_step`
	}
	res, err := s.db.ExecContext(ctx, q, e.Consumer, hex.EncodeToString(e.Secret), dbTime(e.CreatedAt), e.LastUsedStep)
	if err != nil {
		return fmt.Errorf("enroll totp for %q: %w", e.Consumer, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("enroll totp for %q: %w", e.Consumer, err)
	} else if n == 0 {
		return fmt.Errorf("totp enrollment of %q: %w", e.Consumer, ErrExists)
	}
	return nil
}

// TOTPEnrollment returns the consumer's enrollment, or ErrNotFound.
func (s *Store) TOTPEnrollment(ctx context.Context, consumer string) (TOTPEnrollment, error) {
	if s == nil || s.db == nil {
		return TOTPEnrollment{}, errors.New("store: not open")
	}
	e := TOTPEnrollment{Consumer: consumer}
	var secret string
	var created sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT secret, created_at, last_used_step FROM stepup_totp WHERE consumer = ?`, consumer).
		Scan(&secret, &created, &e.LastUsedStep)
	if errors.Is(err, sql.ErrNoRows) {
		return TOTPEnrollment{}, fmt.Errorf("totp enrollment of %q: %w", consumer, ErrNotFound)
	}
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("read totp enrollment of %q: %w", consumer, err)
	}
	if e.Secret, err = hex.DecodeString(secret); err != nil {
		return TOTPEnrollment{}, fmt.Errorf("totp enrollment of %q: bad secret encoding", consumer)
	}
	e.CreatedAt = goTime(created)
	return e, nil
}

// UseTOTPStep records step as the consumer's last accepted time step, if
// and only if it is later than the one recorded: one conditional UPDATE,
// atomic across connections and processes sharing the store. It returns
// ErrReplayed if it is not later, ErrNotFound if the consumer is not
// enrolled.
func (s *Store) UseTOTPStep(ctx context.Context, consumer string, step int64) error {
	if s == nil || s.db == nil {
		return errors.New("store: not open")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE stepup_totp SET last_used_step = ? WHERE consumer = ? AND last_used_step < ?`,
		step, consumer, step)
	if err != nil {
		return fmt.Errorf("use totp step of %q: %w", consumer, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("use totp step of %q: %w", consumer, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM stepup_totp WHERE consumer = ?`, consumer).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("totp enrollment of %q: %w", consumer, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("use totp step of %q: %w", consumer, err)
	}
	return fmt.Errorf("totp step %d of %q: %w", step, consumer, ErrReplayed)
}

// DeleteTOTP removes the consumer's enrollment; ErrNotFound if none.
func (s *Store) DeleteTOTP(ctx context.Context, consumer string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM stepup_totp WHERE consumer = ?`, consumer)
	if err != nil {
		return fmt.Errorf("delete totp enrollment of %q: %w", consumer, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete totp enrollment of %q: %w", consumer, err)
	} else if n == 0 {
		return fmt.Errorf("totp enrollment of %q: %w", consumer, ErrNotFound)
	}
	return nil
}

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalUsed     = "used"
)

// Approval is an out-of-band approval of one request.
type Approval struct {
	// ID is random and unguessable, the value the client sends back.
	ID       string
	Consumer string
	Route    string
	Method   string
	// Target is the request's path and query, shown to operators.
	Target string
	// Digest identifies the request (method, target, body…); the
	// approval is good for a request with the same digest only.
	Digest    []byte
	Remote    string
	RequestID string
	// State is one of ApprovalPending, ApprovalApproved, ApprovalDenied
	// and ApprovalUsed. Expiry is not a state: compare ExpiresAt.
	State     string
	CreatedAt time.Time
	ExpiresAt time.Time
	// DecidedAt and DecidedBy are set when an operator approved or
	// denied it.
	DecidedAt time.Time
	DecidedBy string
	// UsedAt is when the approved request went through.
	UsedAt time.Time
}

// CreateApproval records a new pending approval. If maxPending > 0 and
// the consumer already has that many pending approvals unexpired at
// a.CreatedAt, it records nothing and returns ErrTooManyPending. An
// existing id is ErrExists.
func (s *Store) CreateApproval(ctx context.Context, a Approval, maxPending int) error {
	switch {
	case a.ID == "" || a.Consumer == "" || len(a.Digest) == 0:
		return errors.New("approval: empty id, consumer or digest")
	case a.CreatedAt.IsZero() || !a.ExpiresAt.After(a.CreatedAt):
		return errors.New("approval: want a creation time before its expiry")
	case a.State != "" && a.State != ApprovalPending:
		return errors.New("approval: a new approval is pending")
	}
	return s.tx(ctx, func(t *sql.Tx) error {
		if maxPending > 0 {
			var n int
			err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM stepup_approvals WHERE consumer = ? AND state = ? AND expires_at > ?`,
				a.Consumer, ApprovalPending, dbTime(a.CreatedAt)).Scan(&n)
			if err != nil {
				return fmt.Errorf("create approval: %w", err)
			}
			if n >= maxPending {
				return fmt.Errorf("consumer %q has %d: %w", a.Consumer, n, ErrTooManyPending)
			}
		}
		res, err := t.ExecContext(ctx, `INSERT INTO stepup_approvals
(id, consumer, route, method, target, digest, remote, request_id, state, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			a.ID, a.Consumer, a.Route, a.Method, a.Target, hex.EncodeToString(a.Digest), a.Remote, a.RequestID,
			ApprovalPending, dbTime(a.CreatedAt), dbTime(a.ExpiresAt))
		if err != nil {
			return fmt.Errorf("create approval %s: %w", a.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("create approval %s: %w", a.ID, err)
		} else if n == 0 {
			return fmt.Errorf("approval %s: %w", a.ID, ErrExists)
		}
		return nil
	})
}

const selectApproval = `SELECT id, consumer, route, method, target, digest, remote, request_id, state,
created_at, expires_at, decided_at, decided_by, used_at FROM stepup_approvals`

func scanApproval(r scanner) (Approval, error) {
	var a Approval
	var digest string
	var created, expires, decided, used sql.NullInt64
	var by sql.NullString
	if err := r.Scan(&a.ID, &a.Consumer, &a.Route, &a.Method, &a.Target, &digest, &a.Remote, &a.RequestID, &a.State,
		&created, &expires, &decided, &by, &used); err != nil {
		return Approval{}, err
	}
	var err error
	if a.Digest, err = hex.DecodeString(digest); err != nil {
		return Approval{}, fmt.Errorf("approval %s: bad digest: %w", a.ID, err)
	}
	a.CreatedAt, a.ExpiresAt, a.DecidedAt, a.UsedAt = goTime(created), goTime(expires), goTime(decided), goTime(used)
	a.DecidedBy = by.String
	return a, nil
}

// Approval returns the approval with that id, or ErrNotFound.
func (s *Store) Approval(ctx context.Context, id string) (Approval, error) {
	if s == nil || s.db == nil {
		return Approval{}, errors.New("store: not open")
	}
	return getApproval(ctx, s.db, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getApproval(ctx context.Context, q querier, id string) (Approval, error) {
	a, err := scanApproval(q.QueryRowContext(ctx, selectApproval+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Approval{}, fmt.Errorf("approval %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Approval{}, fmt.Errorf("read approval %s: %w", id, err)
	}
	return a, nil
}

// ListApprovals returns approvals in a state (all if state is empty),
// newest first, at most limit of them (no limit if limit <= 0).
func (s *Store) ListApprovals(ctx context.Context, state string, limit int) ([]Approval, error) {
	q, args := selectApproval, []any{}
	if state != "" {
		q += ` WHERE state = ?`
		args = append(args, state)
	}
	q += ` ORDER BY created_at DESC, id`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, fmt.Errorf("list approvals: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return out, nil
}

// DecideApproval approves (or denies) a pending approval at time at, on
// behalf of by (an operator's name or certificate subject), and returns
// it as stored. ErrNotFound, ErrNotPending (already decided or used) and
// ErrApprovalExpired (at is not before its deadline) say why it cannot be
// decided; the record is then returned as it is.
func (s *Store) DecideApproval(ctx context.Context, id string, approve bool, by string, at time.Time) (Approval, error) {
	if at.IsZero() {
		return Approval{}, errors.New("decide approval: no time")
	}
	state := ApprovalDenied
	if approve {
		state = ApprovalApproved
	}
	var out Approval
	err := s.tx(ctx, func(t *sql.Tx) error {
		a, err := getApproval(ctx, t, id)
		if err != nil {
			return err
		}
		out = a
		switch {
		case a.State != ApprovalPending:
			return fmt.Errorf("approval %s is %s: %w", id, a.State, ErrNotPending)
		case !at.Before(a.ExpiresAt):
			return fmt.Errorf("approval %s expired at %s: %w", id, a.ExpiresAt.Format(time.RFC3339), ErrApprovalExpired)
		}
		_, err = t.ExecContext(ctx, `UPDATE stepup_approvals SET state = ?, decided_at = ?, decided_by = ? WHERE id = ? AND state = ?`,
			state, dbTime(at), by, id, ApprovalPending)
		if err != nil {
			return fmt.Errorf("decide approval %s: %w", id, err)
		}
		out.State, out.DecidedAt, out.DecidedBy = state, Round(at), by
		return nil
	})
	return out, err
}

// UseApproval marks an approved approval used, at time at, if and only if
// it is approved, unexpired at at, and for this consumer and digest: one
// conditional UPDATE, so that it succeeds once, whatever the number of
// gateways sharing the store. Otherwise it returns ErrNotFound, or
// ErrNotUsable together with the record as it is, for the caller to say
// why.
func (s *Store) UseApproval(ctx context.Context, id, consumer string, digest []byte, at time.Time) (Approval, error) {
	if s == nil || s.db == nil {
		return Approval{}, errors.New("store: not open")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE stepup_approvals SET state = ?, used_at = ?
WHERE id = ? AND state = ? AND consumer = ? AND digest = ? AND expires_at > ?`,
		ApprovalUsed, dbTime(at), id, ApprovalApproved, consumer, hex.EncodeToString(digest), dbTime(at))
	if err != nil {
		return Approval{}, fmt.Errorf("use approval %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Approval{}, fmt.Errorf("use approval %s: %w", id, err)
	}
	a, err := getApproval(ctx, s.db, id)
	if err != nil {
		return Approval{}, err
	}
	if n == 0 {
		return a, fmt.Errorf("approval %s: %w", id, ErrNotUsable)
	}
	return a, nil
}
