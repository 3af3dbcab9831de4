package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // OCSP CertIDs are identifiers hashed with SHA-1 by nearly every responder (RFC 5019)
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// verifyOCSP returns the response in der if, and only if, it is about cert
// (issued by issuer), is signed by issuer or by a responder that issuer
// delegated to, and is current at now. maxAge bounds a response that has no
// nextUpdate. Every refusal is an *UnavailableError: a response that fails
// any check never counts as good.
func verifyOCSP(der []byte, cert, issuer *x509.Certificate, now time.Time, maxAge time.Duration) (*ocsp.Response, error) {
	// 1. About this certificate: x/crypto/ocsp matches a SingleResponse on
	// the serial alone, so check the CertID's issuer hashes too.
	ids, err := certIDsOf(der)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			return nil, unavailable(ReasonOCSPResponderError, "responder answered %v", re.Status)
		}
		return nil, unavailable(ReasonOCSPInvalid, "%w", err)
	}
	if err := checkCertID(ids, cert.SerialNumber, issuer); err != nil {
		return nil, unavailable(ReasonOCSPWrongCert, "%w", err)
	}
	// Parse without an issuer: the signature and authority checks are ours,
	// below, not a side effect of parsing.
	resp, err := ocsp.ParseResponseForCert(der, cert, nil)
	if err != nil {
		return nil, unavailable(ReasonOCSPInvalid, "%w", err)
	}
	// 2. Signed by the issuer, or by a delegated responder whose
	// certificate the response carries.
	signer := issuer
	if resp.Certificate != nil && !resp.Certificate.Equal(issuer) {
		if err := checkResponder(resp.Certificate, issuer, now); err != nil {
			return nil, unavailable(ReasonOCSPUnauthorized, "responder %q: %w", resp.Certificate.Subject, err)
		}
		signer = resp.Certificate
	}
	if err := resp.CheckSignatureFrom(signer); err != nil {
		return nil, unavailable(ReasonOCSPBadSignature, "not signed by %q: %w", signer.Subject, err)
	}
	// 3. Current.
	if resp.ThisUpdate.After(now.Add(maxClockSkew)) {
		return nil, unavailable(ReasonOCSPNotYetValid, "thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if end := validUntil(resp, maxAge); now.After(end) {
		return nil, unavailable(ReasonOCSPStale, "valid until %s", end.UTC().Format(time.RFC3339))
	}
	return resp, nil
}

// checkResponder checks that r may sign OCSP responses about issuer's
// certificates (RFC 6960 §4.2.2.2): issued and signed by issuer, with the
// id-kp-OCSPSigning extended key usage, valid now. Its own revocation is
// not checked (such certificates are short-lived and usually carry
// id-pkix-ocsp-nocheck).
func checkResponder(r, issuer *x509.Certificate, now time.Time) error {
	if !bytes.Equal(r.RawIssuer, issuer.RawSubject) {
		return fmt.Errorf("issued by %q, not by %q", r.Issuer, issuer.Subject)
	}
	if err := r.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("not signed by %q: %w", issuer.Subject, err)
	}
	if !slices.Contains(r.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return fmt.Errorf("no OCSPSigning extended key usage")
	}
	if now.Before(r.NotBefore) || now.After(r.NotAfter) {
		return fmt.Errorf("not valid at %s", now.UTC().Format(time.RFC3339))
	}
	return nil
}

// validUntil is when resp stops being current: its nextUpdate, or
// thisUpdate+maxAge when it has none (RFC 6960: "newer information is
// always available").
func validUntil(resp *ocsp.Response, maxAge time.Duration) time.Time {
	if resp.NextUpdate.IsZero() {
		return resp.ThisUpdate.Add(maxAge)
	}
	return resp.NextUpdate
}

// statusOf turns a verified response into this package's answer: nil for
// good, *RevokedError, or *UnavailableError for unknown.
func statusOf(resp *ocsp.Response, serial *big.Int) error {
	switch resp.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return revoked(serial, resp.RevocationReason, resp.RevokedAt, sourceOCSP)
	default:
		return unavailable(ReasonOCSPUnknown, "responder does not know serial %s", serial.Text(16))
	}
}

// certID is RFC 6960's CertID.
type certID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

var oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// certIDsOf returns the CertIDs of the SingleResponses in an OCSP response,
// an ocsp.ResponseError for an unsuccessful one. encoding/asn1 ignores the
// trailing fields of each SEQUENCE that these structs leave out.
func certIDsOf(der []byte) ([]certID, error) {
	var outer struct {
		Status asn1.Enumerated
		Bytes  struct {
			Type     asn1.ObjectIdentifier
			Response []byte
		} `asn1:"explicit,tag:0,optional"`
	}
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("malformed OCSP response: %v", cmpErr(err, "trailing data"))
	}
	if outer.Status != asn1.Enumerated(ocsp.Success) {
		return nil, ocsp.ResponseError{Status: ocsp.ResponseStatus(outer.Status)}
	}
	if !outer.Bytes.Type.Equal(oidOCSPBasic) {
		return nil, fmt.Errorf("OCSP response type %v is not basic", outer.Bytes.Type)
	}
	var basic struct {
		TBS struct {
			Version     int `asn1:"optional,explicit,default:0,tag:0"`
			ResponderID asn1.RawValue
			ProducedAt  time.Time `asn1:"generalized"`
			Responses   []struct{ CertID certID }
		}
	}
	if rest, err := asn1.Unmarshal(outer.Bytes.Response, &basic); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("malformed basic OCSP response: %v", cmpErr(err, "trailing data"))
	}
	ids := make([]certID, len(basic.TBS.Responses))
	for i, r := range basic.TBS.Responses {
		ids[i] = r.CertID
	}
	return ids, nil
}

func cmpErr(err error, otherwise string) any {
	if err != nil {
		return err
	}
	return otherwise
}

// checkCertID checks that some CertID names serial and that every one that
// does names issuer, by the hashes of its name and key.
func checkCertID(ids []certID, serial *big.Int, issuer *x509.Certificate) error {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return fmt.Errorf("issuer public key: %w", err)
	}
	found := false
	for _, id := range ids {
		if id.SerialNumber == nil || id.SerialNumber.Cmp(serial) != 0 {
			continue
		}
		h := hashOf(id.HashAlgorithm.Algorithm)
		if h == 0 {
			return fmt.Errorf("CertID hash algorithm %v not supported", id.HashAlgorithm.Algorithm)
		}
		if !bytes.Equal(id.NameHash, digest(h, issuer.RawSubject)) || !bytes.Equal(id.IssuerKeyHash, digest(h, spki.PublicKey.RightAlign())) {
			return fmt.Errorf("response for serial %s names another issuer than %q", serial.Text(16), issuer.Subject)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("no response for serial %s", serial.Text(16))
	}
	return nil
}

func hashOf(oid asn1.ObjectIdentifier) crypto.Hash {
	switch {
	case oid.Equal(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}):
		return crypto.SHA1
	case oid.Equal(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}):
		return crypto.SHA256
	case oid.Equal(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}):
		return crypto.SHA384
	case oid.Equal(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}):
		return crypto.SHA512
	}
	return 0
}

func digest(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(data) //nolint:gosec // see import
		return s[:]
	case crypto.SHA256:
		s := sha256.Sum256(data)
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(data)
		return s[:]
	default:
		s := sha512.Sum512(data)
		return s[:]
	}
}

// queryOCSP asks the responders at urls, in order, about cert until one
// gives a verified answer. It returns the response and its DER, or the last
// failure; each failure is counted and recorded under source.
func (e *env) queryOCSP(ctx context.Context, source string, urls []string, cert, issuer *x509.Certificate) (*ocsp.Response, []byte, error) {
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, nil, unavailable(ReasonOCSPInvalid, "build request: %w", err)
	}
	var last error = unavailable(ReasonNoSource, "certificate names no http(s) OCSP responder")
	for _, u := range urls {
		if !isHTTP(u) {
			continue
		}
		der, err := e.fetch(ctx, u, req, maxOCSPBytes, ReasonOCSPUnreachable, ReasonOCSPTooLarge)
		var resp *ocsp.Response
		if err == nil {
			resp, err = verifyOCSP(der, cert, issuer, e.now(), e.cfg.CRLRefresh)
		}
		if err == nil {
			return resp, der, nil
		}
		e.fetchFailed(source, u, err, map[string]any{"serial": cert.SerialNumber.Text(16), "issuer": issuer.Subject.String()})
		last = err
	}
	return nil, nil, last
}
