package ct

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"

	"github.com/wardengw/warden/internal/pki"
)

// Certificate is what the monitor learns from one log entry: the names and
// key of an X.509 certificate or of a precertificate's TBSCertificate.
type Certificate struct {
	Precert    bool      // a precertificate entry (RFC 6962 §3.1)
	Timestamp  time.Time // the log's timestamp for the entry
	Subject    string
	CommonName string
	DNSNames   []string
	Issuer     string
	Serial     string // hexadecimal
	NotBefore  time.Time
	NotAfter   time.Time
	Pin        pki.Pin // SHA-256 of the SubjectPublicKeyInfo
	// ChainLen is the number of issuing certificates in the entry's
	// extra_data, or -1 when extra_data does not decode. extra_data is not
	// covered by the tree hash, so nothing else is taken from it.
	ChainLen int
}

// Names returns the certificate's DNS names followed by its common name,
// lower-cased and without duplicates.
func (c *Certificate) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string(nil), c.DNSNames...), c.CommonName) {
		n = normalizeName(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// ErrUnsupportedEntry is returned by ParseEntry for a leaf that is neither an
// X.509 nor a precertificate entry.
var ErrUnsupportedEntry = errors.New("ct: unsupported log entry type")

// ParseEntry parses one get-entries element. The certificate comes only from
// leaf_input, the TLS-encoded MerkleTreeLeaf that the tree hash covers:
// a log cannot hide a certificate from the monitor by garbling the
// unauthenticated extra_data, which is decoded only to count the chain.
// Certificates are parsed with certificate-transparency-go's x509, which
// accepts precertificates and tolerates non-fatal irregularities.
func ParseEntry(leafInput, extraData []byte) (*Certificate, error) {
	var leaf ctgo.MerkleTreeLeaf
	rest, err := cttls.Unmarshal(leafInput, &leaf)
	if err != nil {
		return nil, fmt.Errorf("ct: decode MerkleTreeLeaf: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("ct: MerkleTreeLeaf: %d bytes of trailing data", len(rest))
	}
	if leaf.Version != ctgo.V1 || leaf.LeafType != ctgo.TimestampedEntryLeafType || leaf.TimestampedEntry == nil {
		return nil, fmt.Errorf("%w: version %d, leaf type %d", ErrUnsupportedEntry, leaf.Version, leaf.LeafType)
	}
	te := leaf.TimestampedEntry
	out := &Certificate{Timestamp: ctgo.TimestampToTime(te.Timestamp).UTC(), ChainLen: -1}
	var cert *ctx509.Certificate
	switch te.EntryType {
	case ctgo.X509LogEntryType:
		if te.X509Entry == nil {
			return nil, errors.New("ct: X.509 entry without a certificate")
		}
		cert, err = ctx509.ParseCertificate(te.X509Entry.Data)
		var cc ctgo.CertificateChain
		if rest, err := cttls.Unmarshal(extraData, &cc); err == nil && len(rest) == 0 {
			out.ChainLen = len(cc.Entries)
		}
	case ctgo.PrecertLogEntryType:
		if te.PrecertEntry == nil {
			return nil, errors.New("ct: precertificate entry without a TBSCertificate")
		}
		out.Precert = true
		cert, err = ctx509.ParseTBSCertificate(te.PrecertEntry.TBSCertificate)
		var pc ctgo.PrecertChainEntry
		if rest, err := cttls.Unmarshal(extraData, &pc); err == nil && len(rest) == 0 {
			out.ChainLen = len(pc.CertificateChain)
		}
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedEntry, te.EntryType)
	}
	if cert == nil || ctx509.IsFatal(err) {
		return nil, fmt.Errorf("ct: parse certificate: %w", err)
	}
	out.Subject = cert.Subject.String()
	out.CommonName = cert.Subject.CommonName
	out.DNSNames = cert.DNSNames
	out.Issuer = cert.Issuer.String()
	if cert.SerialNumber != nil {
		out.Serial = cert.SerialNumber.Text(16)
	}
	out.NotBefore = cert.NotBefore.UTC()
	out.NotAfter = cert.NotAfter.UTC()
	out.Pin = sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return out, nil
}

// normalizeName lower-cases a DNS name and drops a trailing dot.
func normalizeName(n string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
}

// matchDomain returns the watched domain that name falls under (itself or a
// subdomain, wildcards included: "*.example.com" is under "example.com"),
// or "". Both are normalized.
func matchDomain(domains []string, name string) string {
	for _, d := range domains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return d
		}
	}
	return ""
}
