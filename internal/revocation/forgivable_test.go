package revocation

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// TestForgivable: soft fail may admit only when an outside source could
// not answer; never a revocation, the gateway's own CA, an abandoned
// request or an error nobody classified.
func TestForgivable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, true},
		{"OCSP responder down", &UnavailableError{Reason: ReasonOCSPUnreachable, Cause: errors.New("connection refused")}, true},
		{"OCSP fetch timed out", &UnavailableError{Reason: ReasonOCSPUnreachable, Cause: context.DeadlineExceeded}, true},
		{"stale CRL, wrapped", fmt.Errorf("check: %w", &UnavailableError{Reason: ReasonCRLStale}), true},
		{"revoked", revoked(big.NewInt(7), 1, time.Now(), "crl"), false},
		{"own CA store unreadable", &UnavailableError{Reason: ReasonLocalUnavailable, Cause: errors.New("disk I/O error")}, false},
		{"signed by the own CA, never recorded", &UnavailableError{Reason: ReasonLocalUnknown}, false},
		{"request abandoned", &UnavailableError{Reason: ReasonOCSPUnreachable, Cause: context.Canceled}, false},
		{"unclassified", errors.New("something else"), false},
	}
	for _, tt := range tests {
		if got := Forgivable(tt.err); got != tt.want {
			t.Errorf("%s: Forgivable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
