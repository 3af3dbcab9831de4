package stepup

import (
	"context"
	"time"

	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// Records is what the policy needs of the record store at request time.
// *store.Store implements it.
type Records interface {
	// TOTPEnrollment returns the consumer's enrollment; an error wrapping
	// store.ErrNotFound if there is none.
	TOTPEnrollment(ctx context.Context, consumer string) (store.TOTPEnrollment, error)
	// UseTOTPStep records step as the consumer's last accepted one if it
	// is later, atomically; store.ErrReplayed if it is not.
	UseTOTPStep(ctx context.Context, consumer string, step int64) error
	// CreateApproval records a pending approval; store.ErrTooManyPending
	// beyond maxPending for the consumer.
	CreateApproval(ctx context.Context, a store.Approval, maxPending int) error
	// UseApproval marks an approval used, once; store.ErrNotUsable with
	// the record, or store.ErrNotFound, otherwise.
	UseApproval(ctx context.Context, id, consumer string, digest []byte, at time.Time) (store.Approval, error)
}

// Enroller is what enrollment needs of the record store.
type Enroller interface {
	EnrollTOTP(ctx context.Context, e store.TOTPEnrollment, replace bool) error
}

// Approvals is what deciding and listing approvals (the admin API and
// the CLI) need of the record store.
type Approvals interface {
	Approval(ctx context.Context, id string) (store.Approval, error)
	ListApprovals(ctx context.Context, state string, limit int) ([]store.Approval, error)
	DecideApproval(ctx context.Context, id string, approve bool, by string, at time.Time) (store.Approval, error)
}

var (
	_ Records   = (*store.Store)(nil)
	_ Enroller  = (*store.Store)(nil)
	_ Approvals = (*store.Store)(nil)
)

// recordsOf returns the gateway's record store from policy.Env.Records,
// or nil: the policy then fails closed (503 stepup_store_unavailable).
func recordsOf(env *policy.Env) Records {
	if env == nil {
		return nil
	}
	rs, _ := env.Records.(Records)
	return rs
}

// Enroll draws a new TOTP secret for consumer and records it (replacing
// an existing enrollment only if replace is set; otherwise an existing
// one is an error wrapping store.ErrExists). The secret is returned only
// once the record is committed, so a secret shown always works.
func Enroll(ctx context.Context, s Enroller, consumer string, now time.Time, replace bool) ([]byte, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	if err := s.EnrollTOTP(ctx, store.TOTPEnrollment{Consumer: consumer, Secret: secret, CreatedAt: store.Round(now)}, replace); err != nil {
		return nil, err
	}
	return secret, nil
}
