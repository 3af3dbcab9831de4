package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/revocation"
)

// handshakeIdentity makes the client certificate chain verified in the
// handshake (tls.client_auth.mode require) the request's identity, method
// "client_certificate", on which a jwt policy's RFC 8705 binding relies.
// On a route with an mtls policy that policy decides, with its own trust
// bundle and revocation mode. Elsewhere the chain is checked for
// revocation first, hard fail: a revoked certificate is refused with 401
// revoked (connection closed), an unknown status with 401
// revocation_unavailable. false means the request was refused.
func (g *Gateway) handshakeIdentity(w http.ResponseWriter, r *http.Request, x *policy.Exchange, ro *route) bool {
	st := connTLS(r)
	if st == nil || len(st.VerifiedChains) == 0 {
		return true
	}
	chain := st.VerifiedChains[0]
	if !ro.mtls {
		if err := g.revocation.CheckChain(r.Context(), chain); err != nil {
			sum := sha256.Sum256(chain[0].Raw)
			fields := map[string]any{"cert_sha256": hex.EncodeToString(sum[:]), "serial": chain[0].SerialNumber.Text(16),
				"source": "tls_client_auth", "revocation_detail": revocation.Reason(err)}
			reason, sev, detail := mtls.ReasonRevocationUnavailable, audit.Warning, "the revocation status of the client certificate cannot be established"
			if rev, ok := errors.AsType[*revocation.RevokedError](err); ok {
				reason, sev, detail = mtls.ReasonRevoked, audit.Critical, "the client certificate has been revoked"
				fields["revocation_reason"], fields["revocation_reason_text"] = rev.ReasonCode, rev.ReasonText
			}
			policy.Deny(w, r, policy.Problem{Status: http.StatusUnauthorized, Reason: reason, Detail: detail,
				Event: mtls.EventRejected, Severity: sev, Close: reason == mtls.ReasonRevoked, Cause: err, Fields: fields})
			return false
		}
	}
	x.Identity.ClientCert = chain[0]
	x.Identity.Methods = append(x.Identity.Methods, "client_certificate")
	return true
}

// hasMTLSPolicy reports whether a route's policies include mtls.
func hasMTLSPolicy(ps []config.PolicySpec) bool {
	for _, p := range ps {
		if p.Type == mtls.Type {
			return true
		}
	}
	return false
}
