package policy

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/telemetry"
)

// Env is what the deny path and policies need from the running gateway.
// Policies reach it at request time through the Exchange, so that their
// factories stay pure.
type Env struct {
	Audit   *audit.Logger
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Revocation checks client certificates against CRLs and OCSP; nil
	// when the gateway has no revocation checker.
	Revocation RevocationChecker
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// AuthFailures, if set, is told of every authentication failure (a
	// 401 through Deny): brute-force protection counts them.
	AuthFailures AuthFailureRecorder
	// Records is the record store (*store.Store) for policies that need
	// persistent records (API keys, enrolled secrets); nil if none.
	Records any
}

// AuthFailureRecorder counts failed authentications.
type AuthFailureRecorder interface {
	// Failed records that the request failed authentication with reason.
	Failed(r *http.Request, x *Exchange, reason string)
}

// RevocationChecker checks a verified certificate chain for revocation.
// internal/revocation implements it.
type RevocationChecker interface {
	// CheckChain checks every certificate of a verified chain (leaf
	// first) except the trust anchor. It returns nil when none is known to
	// be revoked, or a typed error from internal/revocation: revoked (with
	// its reason code), or status unavailable (responder down, CRL stale),
	// for which the caller applies its hard- or soft-fail policy.
	CheckChain(ctx context.Context, chain []*x509.Certificate) error
}

// Clock returns the env's clock, time.Now by default.
func (e *Env) Clock() time.Time {
	if e == nil || e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// Identity is what the request's credentials established. Authentication
// policies add to it; authorization policies read it.
type Identity struct {
	Consumer   string            // the consumer name, once one is known
	Methods    []string          // authentication methods that succeeded, in order
	ClientCert *x509.Certificate // the verified client certificate, if any
	Claims     map[string]any    // token claims, if any
	// AccessToken is the verified access token and TokenScheme the
	// Authorization scheme it came with ("Bearer" or "DPoP"), so that a
	// later policy (dpop) can bind to it even if the header was stripped.
	AccessToken, TokenScheme string
}

// Exchange is the request-scoped state shared along a route's chain.
type Exchange struct {
	ID     string    // request ID, also sent to the client and upstream
	Route  string    // name of the matched route, "" before routing
	Start  time.Time // when the gateway started handling the request
	Remote string    // client address, host:port
	// Peer is Remote's IP (unmapped, without zone) and PeerIP its text,
	// noted once per connection by the gateway; Peer is invalid (and
	// PeerIP empty) when Remote is not ip:port or nobody noted it.
	Peer   netip.Addr
	PeerIP string
	// ConnStart is when the client connection was accepted.
	ConnStart time.Time
	Identity  Identity
	Env       *Env
	// Lockout is the brute-force guard's state for this request, set by
	// internal/auth/lockout when its guard first sees the request (kept
	// here rather than in a derived context: one allocation and one
	// request copy less per request).
	Lockout any
}

type exchangeKey struct{}

// WithExchange returns a copy of ctx carrying x.
func WithExchange(ctx context.Context, x *Exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

// valueHolder is a request context that can carry one value itself
// (internal/h1server's): attaching the Exchange to it takes neither a
// derived context nor a copy of the request.
type valueHolder interface {
	HoldValue(key, val any) bool
}

// AttachExchange returns r carrying x: r itself when its context can hold
// x (it must not be shared with another goroutine yet: call it first
// thing in the handler), else a copy of r with a derived context.
func AttachExchange(r *http.Request, x *Exchange) *http.Request {
	if h, ok := r.Context().(valueHolder); ok && h.HoldValue(exchangeKey{}, x) {
		return r
	}
	return r.WithContext(WithExchange(r.Context(), x))
}

// ExchangeOf returns the request's Exchange, or nil outside the gateway.
func ExchangeOf(r *http.Request) *Exchange {
	x, _ := r.Context().Value(exchangeKey{}).(*Exchange)
	return x
}
