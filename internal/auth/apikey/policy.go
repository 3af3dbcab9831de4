package apikey

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/store"
)

// Method is what the policy appends to Identity.Methods.
const Method = "api_key"

// EventRejected is the audit event of every refused request: the reason,
// where the key came from and, once parsed, its lookup id. Never the key.
const EventRejected = "api_key_rejected"

// Reasons: stable, public codes of refusals.
const (
	ReasonMissing          = "key_missing"             // 401: no key in the header (or the query parameter)
	ReasonMalformed        = "key_malformed"           // 401: not a key, or a wrong checksum; the store was not asked
	ReasonUnknown          = "key_unknown"             // 401: no such key, or the secret does not match
	ReasonExpired          = "key_expired"             // 401: past its expiry, or its rotation overlap has ended
	ReasonRevoked          = "key_revoked"             // 401: revoked
	ReasonConsumerDisabled = "consumer_disabled"       // 401: the key's consumer is disabled
	ReasonInQuery          = "key_in_query_refused"    // 401: a key in the query string without insecure_query_key
	ReasonConsumerMismatch = "consumer_mismatch"       // 401: an earlier policy established another consumer
	ReasonNotAuthorized    = "consumer_not_authorized" // 403: the consumer is not in the consumers list
	ReasonStoreUnavailable = "key_store_unavailable"   // 503: no record store, or it failed: fail closed
)

// details are the client-facing problem details: what failed, never why a
// secret failed.
var details = map[string]string{
	ReasonMissing:          "this route requires an API key",
	ReasonMalformed:        "the API key is malformed",
	ReasonUnknown:          "the API key is not valid",
	ReasonExpired:          "the API key has expired",
	ReasonRevoked:          "the API key has been revoked",
	ReasonConsumerDisabled: "the API key's consumer is disabled",
	ReasonInQuery:          "API keys are not accepted in the query string; send the key in a header and replace this one, which may have been logged",
	ReasonConsumerMismatch: "the API key names another consumer than the request's other credentials",
	ReasonNotAuthorized:    "the API key's consumer is not authorized for this route",
	ReasonStoreUnavailable: "API keys cannot be checked at the moment",
}

// Error is a refused key: its stable Reason, the key's lookup id when the
// key parsed (safe to log), and the internal cause.
type Error struct {
	Reason   string
	LookupID string
	Err      error
}

func (e *Error) Error() string {
	s := "api key refused: " + e.Reason
	if e.LookupID != "" {
		s += " (" + e.LookupID + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func fail(reason, id string, format string, args ...any) *Error {
	return &Error{Reason: reason, LookupID: id, Err: fmt.Errorf(format, args...)}
}

// Authenticate checks a presented key text against ks at time now and
// returns its record. In order:
//
//  1. Parse: grammar and checksum (ReasonMalformed); the store is not
//     asked, so typos and random strings cost no lookup.
//  2. One store read by lookup id (ReasonUnknown; ReasonStoreUnavailable
//     if ks is nil or fails).
//  3. The SHA-256 of the secret against the stored hash, in constant time
//     (ReasonUnknown on mismatch).
//  4. Only then the key's state, so that someone who knows a lookup id
//     (it is in audit logs) but not the secret learns nothing about it:
//     revoked (at once, whatever the clock), expired, past its rotation
//     overlap (ReasonExpired), consumer disabled.
//
// There is no cache: every request reads the store, so a revocation
// committed by any process is enforced on the next request.
func Authenticate(ctx context.Context, ks KeyStore, text string, now time.Time) (store.APIKey, error) {
	k, err := Parse(text)
	if err != nil {
		return store.APIKey{}, &Error{Reason: ReasonMalformed, Err: err}
	}
	id := k.LookupID()
	if ks == nil {
		return store.APIKey{}, fail(ReasonStoreUnavailable, id, "no record store (policy.Env.Records is nil or not a key store)")
	}
	rec, err := ks.KeyByLookupID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, fail(ReasonUnknown, id, "no key with this lookup id")
	}
	if err != nil {
		return store.APIKey{}, &Error{Reason: ReasonStoreUnavailable, LookupID: id, Err: err}
	}
	if subtle.ConstantTimeCompare(k.Hash(), rec.Hash) != 1 {
		return store.APIKey{}, &Error{Reason: ReasonUnknown, LookupID: id, Err: errSecretMismatch}
	}
	if e := checkState(rec, now); e != nil {
		return rec, e
	}
	return rec, nil
}

// checkState says why a key whose secret matched is not valid at now, or
// returns nil.
func checkState(rec store.APIKey, now time.Time) *Error {
	switch {
	case !rec.RevokedAt.IsZero():
		return fail(ReasonRevoked, rec.ID, "revoked at %s", rec.RevokedAt.Format(time.RFC3339))
	case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		return fail(ReasonExpired, rec.ID, "expired at %s", rec.ExpiresAt.Format(time.RFC3339))
	case !rec.OverlapUntil.IsZero() && !now.Before(rec.OverlapUntil):
		return fail(ReasonExpired, rec.ID, "rotated: replaced by %s, overlap ended at %s", rec.ReplacedBy, rec.OverlapUntil.Format(time.RFC3339))
	case rec.ConsumerDisabled:
		return fail(ReasonConsumerDisabled, rec.ID, "consumer %q is disabled", rec.Consumer)
	}
	return nil
}

// Status returns "" if the key record is valid at now, or the reason its
// key would be refused (ReasonRevoked, ReasonExpired,
// ReasonConsumerDisabled): the same rule Authenticate applies, for
// listings.
func Status(rec store.APIKey, now time.Time) string {
	if e := checkState(rec, now); e != nil {
		return e.Reason
	}
	return ""
}

// errSecretMismatch: the lookup id exists but the secret is wrong. The
// client sees key_unknown; the audit event says secret_mismatch, since
// someone then knows a real lookup id.
var errSecretMismatch = errors.New("secret does not match the stored hash")

// Wrap implements policy.Policy.
func (p *Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := policy.ExchangeOf(r)
		if x == nil { // outside the gateway: still decide; no Env means no store
			x = &policy.Exchange{}
			r = r.WithContext(policy.WithExchange(r.Context(), x))
		}
		text, src, e := p.extract(r)
		if e != nil {
			p.reject(w, r, src, e, "")
			return
		}
		rec, err := Authenticate(r.Context(), storeOf(x.Env), text, x.Env.Clock())
		if err != nil {
			e, _ := errors.AsType[*Error](err)
			p.reject(w, r, src, e, rec.Consumer)
			return
		}
		id := &x.Identity
		if id.Consumer != "" && id.Consumer != rec.Consumer {
			p.reject(w, r, src, fail(ReasonConsumerMismatch, rec.ID, "key of consumer %q, the request is already %q", rec.Consumer, id.Consumer), rec.Consumer)
			return
		}
		id.Consumer = rec.Consumer
		id.Methods = append(id.Methods, Method)
		if p.allow != nil && !p.allow[rec.Consumer] {
			p.reject(w, r, src, fail(ReasonNotAuthorized, rec.ID, "consumer %q is not in this policy's consumers", rec.Consumer), rec.Consumer)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Key sources, for audit events.
const (
	sourceHeader = "header"
	sourceQuery  = "query"
)

// extract takes the key text out of the request: the header, or with
// insecure_query_key the query parameter when the header is absent. Both
// are removed from the request, so the upstream never sees the key.
// Without insecure_query_key, a key anywhere in the query string is
// refused.
func (p *Policy) extract(r *http.Request) (text, src string, e *Error) {
	vals := r.Header.Values(p.header)
	delete(r.Header, p.header)
	var qvals []string
	if p.queryParam != "" {
		if qvals, r.URL.RawQuery = takeQueryParam(r.URL.RawQuery, p.queryParam); qvals != nil && r.RequestURI != "" {
			r.RequestURI = r.URL.RequestURI()
		}
	} else if k, ok := keyInQuery(r.URL.RawQuery); ok {
		return "", sourceQuery, fail(ReasonInQuery, k.LookupID(), "an API key in the query string, and insecure_query_key is not set")
	}
	switch {
	case len(vals) > 1:
		return "", sourceHeader, fail(ReasonMalformed, "", "%d %s headers", len(vals), p.header)
	case len(vals) == 1:
		return strings.TrimSpace(vals[0]), sourceHeader, nil
	case len(qvals) > 1:
		return "", sourceQuery, fail(ReasonMalformed, "", "%d %s query parameters", len(qvals), p.queryParam)
	case len(qvals) == 1:
		return qvals[0], sourceQuery, nil
	}
	return "", "", fail(ReasonMissing, "", "no %s header", p.header)
}

// takeQueryParam returns the (unescaped) values of name in the raw query
// and the raw query without them, other parameters kept byte for byte.
func takeQueryParam(raw, name string) (vals []string, rest string) {
	if raw == "" {
		return nil, raw
	}
	var kept []string
	for _, pair := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				uv = v // malformed escaping: Parse refuses it
			}
			vals = append(vals, uv)
			continue
		}
		kept = append(kept, pair)
	}
	if vals == nil {
		return nil, raw
	}
	return vals, strings.Join(kept, "&")
}

// keyInQuery reports a well-formed key (checksum included) among the
// query's values. Only queries mentioning the prefix are examined.
func keyInQuery(raw string) (Key, bool) {
	if !strings.Contains(raw, Prefix[:3]) {
		return Key{}, false
	}
	for _, pair := range strings.Split(raw, "&") {
		_, v, _ := strings.Cut(pair, "=")
		if uv, err := url.QueryUnescape(v); err == nil {
			if k, err := Parse(uv); err == nil {
				return k, true
			}
		}
	}
	return Key{}, false
}

// reject answers through the single deny path with an api_key_rejected
// event carrying the lookup id only.
func (p *Policy) reject(w http.ResponseWriter, r *http.Request, src string, e *Error, consumer string) {
	status := http.StatusUnauthorized
	switch e.Reason {
	case ReasonNotAuthorized:
		status = http.StatusForbidden
	case ReasonStoreUnavailable:
		status = http.StatusServiceUnavailable
	}
	fields := map[string]any{"policy": Type}
	if src != "" {
		fields["source"] = src
	}
	if e.LookupID != "" {
		fields["lookup_id"] = e.LookupID
	}
	if consumer != "" { // only known once the secret matched
		fields["key_consumer"] = consumer
	}
	if errors.Is(e.Err, errSecretMismatch) {
		fields["secret_mismatch"] = true
	}
	severity := audit.Warning
	switch e.Reason {
	case ReasonMissing:
		severity = audit.Info
	case ReasonRevoked, ReasonStoreUnavailable:
		severity = audit.Critical
	}
	policy.Deny(w, r, policy.Problem{
		Status: status, Reason: e.Reason, Detail: details[e.Reason], Event: EventRejected,
		Severity: severity, Cause: boundedError{e}, Fields: fields,
	})
}

// boundedError keeps a cause (which may quote a store error) to a sane
// length in the audit log while keeping it inspectable.
type boundedError struct{ err error }

func (b boundedError) Error() string {
	s := b.err.Error()
	if len(s) > 4*maxAuditText {
		s = s[:4*maxAuditText] + "…"
	}
	return s
}
func (b boundedError) Unwrap() error { return b.err }
