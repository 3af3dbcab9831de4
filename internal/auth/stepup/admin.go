package stepup

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// Admin API patterns, for (*admin.Server).Handle; Mount registers them
// all.
const (
	PatternList    = "GET /api/stepup/approvals"
	PatternGet     = "GET /api/stepup/approvals/{id}"
	PatternApprove = "POST /api/stepup/approvals/{id}/approve"
	PatternDeny    = "POST /api/stepup/approvals/{id}/deny"
)

// Admin listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	// scanLimit bounds the rows read to filter a listing by effective
	// state (pending vs expired).
	scanLimit = 10_000
)

// Admin serves the approval endpoints of the admin API. The admin server
// has already verified the operator's client certificate; Admin records
// its subject as the decider.
type Admin struct {
	store Approvals
	audit *audit.Logger
	now   func() time.Time
}

// NewAdmin returns the approval endpoints over s (the gateway's
// *store.Store). now is the clock, time.Now if nil.
func NewAdmin(s Approvals, aud *audit.Logger, now func() time.Time) *Admin {
	if now == nil {
		now = time.Now
	}
	return &Admin{store: s, audit: aud, now: now}
}

// Mount registers the endpoints on m, normally the gateway's
// *admin.Server, at PatternList, PatternGet, PatternApprove and
// PatternDeny.
func (a *Admin) Mount(m interface{ Handle(string, http.Handler) }) {
	m.Handle(PatternList, http.HandlerFunc(a.list))
	m.Handle(PatternGet, http.HandlerFunc(a.get))
	m.Handle(PatternApprove, a.decide(true))
	m.Handle(PatternDeny, a.decide(false))
}

// ApprovalView is an approval as the admin API shows it. State is the
// effective state: "expired" for a pending or approved approval past its
// deadline.
type ApprovalView struct {
	ID        string     `json:"id"`
	State     string     `json:"state"`
	Consumer  string     `json:"consumer"`
	Route     string     `json:"route"`
	Method    string     `json:"method"`
	Target    string     `json:"target"`
	Digest    string     `json:"digest"`
	Remote    string     `json:"remote,omitempty"`
	RequestID string     `json:"request_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
}

// View returns the admin view of a at now.
func View(a store.Approval, now time.Time) ApprovalView {
	v := ApprovalView{ID: a.ID, State: State(a, now), Consumer: a.Consumer, Route: a.Route, Method: a.Method, Target: a.Target,
		Digest: hex.EncodeToString(a.Digest), Remote: a.Remote, RequestID: a.RequestID, CreatedAt: a.CreatedAt,
		ExpiresAt: a.ExpiresAt, DecidedBy: a.DecidedBy}
	if !a.DecidedAt.IsZero() {
		t := a.DecidedAt
		v.DecidedAt = &t
	}
	if !a.UsedAt.IsZero() {
		t := a.UsedAt
		v.UsedAt = &t
	}
	return v
}

// ErrBadState: a listing asked for a state that does not exist.
var ErrBadState = errors.New("state: want pending, approved, denied, used or expired")

// ListApprovals returns the approvals whose effective state (State) is
// state, or all if state is empty, newest first, at most limit.
func ListApprovals(ctx context.Context, s Approvals, state string, limit int, now time.Time) ([]store.Approval, error) {
	stored := state
	switch state {
	case "", store.ApprovalDenied, store.ApprovalUsed:
		return s.ListApprovals(ctx, stored, limit)
	case StateExpired:
		stored = ""
	case store.ApprovalPending, store.ApprovalApproved:
	default:
		return nil, ErrBadState
	}
	as, err := s.ListApprovals(ctx, stored, scanLimit)
	if err != nil {
		return nil, err
	}
	out := as[:0]
	for _, a := range as {
		if State(a, now) == state && (limit <= 0 || len(out) < limit) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request) {
	limit := DefaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			adminError(w, r, http.StatusBadRequest, "bad_request", "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	now := a.now()
	as, err := ListApprovals(r.Context(), a.store, r.URL.Query().Get("state"), limit, now)
	if err != nil {
		if errors.Is(err, ErrBadState) {
			adminError(w, r, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		adminError(w, r, http.StatusServiceUnavailable, ReasonStoreUnavailable, "the record store failed")
		return
	}
	views := make([]ApprovalView, 0, len(as))
	for _, ap := range as {
		views = append(views, View(ap, now))
	}
	policy.WriteJSON(w, http.StatusOK, map[string]any{"approvals": views})
}

func (a *Admin) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ValidApprovalID(id) {
		adminError(w, r, http.StatusNotFound, ReasonApprovalUnknown, "no such approval")
		return
	}
	ap, err := a.store.Approval(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		adminError(w, r, http.StatusNotFound, ReasonApprovalUnknown, "no such approval")
		return
	} else if err != nil {
		adminError(w, r, http.StatusServiceUnavailable, ReasonStoreUnavailable, "the record store failed")
		return
	}
	policy.WriteJSON(w, http.StatusOK, View(ap, a.now()))
}

// Admin refusal reasons.
const (
	ReasonNotPending = "approval_not_pending" // 409: already decided or used
)

func (a *Admin) decide(approve bool) http.Handler {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		by := "admin-api"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			by = r.TLS.PeerCertificates[0].Subject.String()
		}
		fields := map[string]any{"approval_id": id, "decision": verb, "by": by}
		if !ValidApprovalID(id) {
			adminError(w, r, http.StatusNotFound, ReasonApprovalUnknown, "no such approval")
			return
		}
		now := a.now()
		ap, err := a.store.DecideApproval(r.Context(), id, approve, by, now)
		if err != nil {
			status, reason := decideRefusal(err)
			fields["consumer"] = ap.Consumer
			a.audit.Emit(audit.Event{Type: EventApprovalDecided, Severity: audit.Warning, Remote: r.RemoteAddr,
				Reason: reason, Status: status, Detail: bounded(err.Error()), Fields: fields})
			adminError(w, r, status, reason, bounded(err.Error()))
			return
		}
		fields["consumer"], fields["route"], fields["method"], fields["target"] = ap.Consumer, ap.Route, ap.Method, ap.Target
		a.audit.Emit(audit.Event{Type: EventApprovalDecided, Severity: audit.Info, Remote: r.RemoteAddr, Route: ap.Route,
			RequestID: ap.RequestID, Fields: fields})
		policy.WriteJSON(w, http.StatusOK, View(ap, now))
	})
}

// decideRefusal maps a DecideApproval error to a status and reason.
func decideRefusal(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, ReasonApprovalUnknown
	case errors.Is(err, store.ErrNotPending):
		return http.StatusConflict, ReasonNotPending
	case errors.Is(err, store.ErrApprovalExpired):
		return http.StatusConflict, ReasonApprovalExpired
	}
	return http.StatusServiceUnavailable, ReasonStoreUnavailable
}

func adminError(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	policy.Deny(w, r, policy.Problem{Status: status, Reason: reason, Detail: detail})
}
