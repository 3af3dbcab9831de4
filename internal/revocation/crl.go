package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRL       = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDP      = asn1.ObjectIdentifier{2, 5, 29, 28}
)

// crlIndex is a verified CRL reduced to what a lookup needs: its issuer,
// validity, scope and an index of revoked serials.
type crlIndex struct {
	issuerName []byte // DER subject of the issuer that signed it
	issuerKey  [32]byte
	source     string // file path or URL, for messages
	thisUpdate time.Time
	nextUpdate time.Time
	scope      crlScope
	revoked    map[string]crlEntry // by serialKey
}

type crlEntry struct {
	at     time.Time
	reason int
}

// crlScope is what an Issuing Distribution Point extension restricts a CRL
// to (RFC 5280 §5.2.5). The zero value covers every certificate.
type crlScope struct {
	uris               []string // distribution point URIs; empty means any
	onlyUser, onlyCA   bool
	unsupportedReasons bool // onlySomeReasons, indirectCRL, attribute certs: refused
}

// parseCRL parses der and verifies it was issued and signed by issuer:
// the one function every CRL, from a file or a distribution point, goes
// through before it is trusted.
func parseCRL(der []byte, issuer *x509.Certificate, source string) (*crlIndex, error) {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, unavailable(ReasonCRLInvalid, "CRL %s: %w", source, err)
	}
	if err := verifyCRL(crl, issuer); err != nil {
		return nil, unavailable(ReasonCRLBadSignature, "CRL %s: %w", source, err)
	}
	idx, err := indexCRL(crl)
	if err != nil {
		return nil, unavailable(ReasonCRLInvalid, "CRL %s: %w", source, err)
	}
	idx.issuerKey = issuerKey(issuer)
	idx.source = source
	return idx, nil
}

// verifyCRL checks that issuer issued and signed crl. CheckSignatureFrom
// also requires issuer to be a CA with the cRLSign key usage, if it has key
// usages at all.
func verifyCRL(crl *x509.RevocationList, issuer *x509.Certificate) error {
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return fmt.Errorf("issued by %q, not by %q", crl.Issuer, issuer.Subject)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("not signed by %q: %w", issuer.Subject, err)
	}
	return nil
}

// indexCRL checks that crl is a complete CRL this package understands and
// indexes its entries. It does not check the signature.
func indexCRL(crl *x509.RevocationList) (*crlIndex, error) {
	if crl.NextUpdate.IsZero() { // RFC 5280 §5.1.2.5: conforming CRLs have one
		return nil, fmt.Errorf("no nextUpdate")
	}
	idx := &crlIndex{
		issuerName: crl.RawIssuer,
		thisUpdate: crl.ThisUpdate,
		nextUpdate: crl.NextUpdate,
		revoked:    make(map[string]crlEntry, len(crl.RevokedCertificateEntries)),
	}
	for _, ext := range crl.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRL):
			return nil, fmt.Errorf("delta CRLs are not supported")
		case ext.Id.Equal(oidIssuingDP):
			s, err := parseIDP(ext.Value)
			if err != nil {
				return nil, fmt.Errorf("issuing distribution point: %w", err)
			}
			idx.scope = s
		case ext.Critical && !ext.Id.Equal(oidAuthorityKeyID) && !ext.Id.Equal(oidCRLNumber):
			return nil, fmt.Errorf("unsupported critical extension %v", ext.Id)
		}
	}
	for _, e := range crl.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			if ext.Critical { // e.g. certificateIssuer of an indirect CRL
				return nil, fmt.Errorf("entry %s: unsupported critical extension %v", e.SerialNumber.Text(16), ext.Id)
			}
		}
		idx.revoked[serialKey(e.SerialNumber)] = crlEntry{at: e.RevocationTime, reason: e.ReasonCode}
	}
	return idx, nil
}

// parseIDP parses an IssuingDistributionPoint (RFC 5280 §5.2.5; the module
// uses implicit tags, except on the DistributionPointName CHOICE).
func parseIDP(der []byte) (crlScope, error) {
	var s crlScope
	in, seq := cryptobyte.String(der), cryptobyte.String(nil)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return s, fmt.Errorf("malformed")
	}
	var dpName cryptobyte.String
	var has bool
	if !seq.ReadOptionalASN1(&dpName, &has, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return s, fmt.Errorf("malformed distribution point")
	}
	if has {
		var full cryptobyte.String
		if !dpName.ReadASN1(&full, cbasn1.Tag(0).Constructed().ContextSpecific()) || !dpName.Empty() {
			return s, fmt.Errorf("only fullName distribution points are supported")
		}
		for !full.Empty() {
			var name cryptobyte.String
			var tag cbasn1.Tag
			if !full.ReadAnyASN1(&name, &tag) {
				return s, fmt.Errorf("malformed general name")
			}
			if tag == cbasn1.Tag(6).ContextSpecific() { // uniformResourceIdentifier
				s.uris = append(s.uris, string(name))
			}
		}
	}
	flags := [6]bool{}
	for i := 1; i <= 5; i++ {
		tag := cbasn1.Tag(i).ContextSpecific()
		if i == 3 {
			var reasons cryptobyte.String
			if !seq.ReadOptionalASN1(&reasons, &has, tag) { // onlySomeReasons, a BIT STRING
				return s, fmt.Errorf("malformed field %d", i)
			}
			flags[i] = has
			continue
		}
		var v cryptobyte.String
		if !seq.ReadOptionalASN1(&v, &has, tag) || has && len(v) != 1 {
			return s, fmt.Errorf("malformed field %d", i)
		}
		flags[i] = has && v[0] != 0
	}
	if !seq.Empty() {
		return s, fmt.Errorf("trailing data")
	}
	s.onlyUser, s.onlyCA = flags[1], flags[2]
	s.unsupportedReasons = flags[3] || flags[4] || flags[5]
	return s, nil
}

// covers reports whether the CRL's scope includes cert: a partitioned CRL
// (Issuing Distribution Point with URIs) covers only certificates that name
// one of its URIs, so that a valid CRL of another partition cannot be
// served in its place.
func (s crlScope) covers(cert *x509.Certificate) error {
	switch {
	case s.unsupportedReasons:
		return fmt.Errorf("CRL limited to some reasons, indirect, or for attribute certificates")
	case s.onlyUser && cert.IsCA:
		return fmt.Errorf("CRL covers only end-entity certificates")
	case s.onlyCA && !cert.IsCA:
		return fmt.Errorf("CRL covers only CA certificates")
	case len(s.uris) == 0:
		return nil
	}
	for _, dp := range cert.CRLDistributionPoints {
		if slices.Contains(s.uris, dp) {
			return nil
		}
	}
	return fmt.Errorf("CRL partition %v does not include the certificate's distribution points", s.uris)
}

// status says what idx knows of cert at now: nil (not revoked), a
// *RevokedError, or an *UnavailableError when idx is stale or does not
// cover cert. The caller has matched idx's issuer with cert's.
func (idx *crlIndex) status(cert *x509.Certificate, now time.Time, grace time.Duration) error {
	if err := idx.scope.covers(cert); err != nil {
		return unavailable(ReasonCRLInvalid, "CRL %s: %w", idx.source, err)
	}
	if now.After(idx.nextUpdate.Add(grace)) {
		return unavailable(ReasonCRLStale, "CRL %s: nextUpdate %s passed", idx.source, idx.nextUpdate.UTC().Format(time.RFC3339))
	}
	if now.Add(maxClockSkew).Before(idx.thisUpdate) {
		return unavailable(ReasonCRLStale, "CRL %s: thisUpdate %s is in the future", idx.source, idx.thisUpdate.UTC().Format(time.RFC3339))
	}
	if e, ok := idx.revoked[serialKey(cert.SerialNumber)]; ok {
		return revoked(cert.SerialNumber, e.reason, e.at, sourceCRL)
	}
	return nil
}

// fresh reports whether idx can decide at now.
func (idx *crlIndex) fresh(now time.Time, grace time.Duration) bool {
	return idx != nil && !now.After(idx.nextUpdate.Add(grace)) && !now.Add(maxClockSkew).Before(idx.thisUpdate)
}

// loadCRLFile reads a file of PEM "X509 CRL" blocks or one DER CRL and
// verifies each against the issuer, among issuers, that signed it.
func loadCRLFile(path string, issuers []*x509.Certificate, limit int64) ([]*crlIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unavailable(ReasonCRLUnreachable, "%w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, unavailable(ReasonCRLUnreachable, "read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, unavailable(ReasonCRLTooLarge, "%s: more than %d bytes", path, limit)
	}
	ders := [][]byte{data}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		ders = nil
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "X509 CRL" {
				ders = append(ders, b.Bytes)
			}
		}
		if len(ders) == 0 {
			return nil, unavailable(ReasonCRLInvalid, "%s: no X509 CRL PEM block", path)
		}
	}
	out := make([]*crlIndex, 0, len(ders))
	for i, der := range ders {
		source := fmt.Sprintf("%s#%d", path, i)
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, unavailable(ReasonCRLInvalid, "CRL %s: %w", source, err)
		}
		issuer := findIssuer(crl, issuers)
		if issuer == nil {
			return nil, unavailable(ReasonCRLBadSignature, "CRL %s: issuer %q is not one of the configured CAs, or did not sign it", source, crl.Issuer)
		}
		idx, err := parseCRL(der, issuer, source)
		if err != nil {
			return nil, err
		}
		out = append(out, idx)
	}
	return out, nil
}

func findIssuer(crl *x509.RevocationList, issuers []*x509.Certificate) *x509.Certificate {
	for _, c := range issuers {
		if verifyCRL(crl, c) == nil {
			return c
		}
	}
	return nil
}

// serialKey is a map key for a serial number.
func serialKey(n *big.Int) string {
	if n.Sign() < 0 {
		return "-" + string(n.Bytes())
	}
	return string(n.Bytes())
}
