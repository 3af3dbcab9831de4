package stepup

import "time"

// Defaults live here, in one place.
const (
	// DefaultHeaderOTP is the request header carrying a TOTP code.
	DefaultHeaderOTP = "Warden-OTP"
	// DefaultHeaderApproval is the request (and 202 response) header
	// carrying an approval id.
	DefaultHeaderApproval = "Warden-Approval"
	// DefaultApprovalTimeout is how long an approval may be decided and
	// used after it was requested.
	DefaultApprovalTimeout = 5 * time.Minute
	// MaxApprovalTimeout bounds approval.timeout.
	MaxApprovalTimeout = 24 * time.Hour
	// DefaultMaxBodyBytes is the largest request body that can be approved
	// (it is buffered to be digested).
	DefaultMaxBodyBytes = 1 << 20
	// MaxMaxBodyBytes bounds approval.max_body_bytes.
	MaxMaxBodyBytes = 64 << 20
	// DefaultMaxPending bounds the pending approvals of one consumer, so
	// that a stolen credential cannot flood operators and the store.
	DefaultMaxPending = 10
	// DefaultRetryAfter is the Retry-After of a 202 approval_pending.
	DefaultRetryAfter = 5 * time.Second

	// Webhook delivery: attempts in all, each bounded by a timeout, with a
	// backoff doubling from webhookBackoff between them; at most
	// maxDeliveries in flight per policy (further notifications are
	// dropped and audited).
	webhookAttempts = 3
	webhookTimeout  = 5 * time.Second
	webhookBackoff  = time.Second
	maxDeliveries   = 64

	// maxAuditText bounds attacker-chosen text copied into audit events
	// and notifications.
	maxAuditText = 1024
	// storeTimeout bounds a store call made on the request path.
	storeTimeout = 5 * time.Second
)
