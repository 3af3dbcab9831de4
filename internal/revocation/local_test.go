package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
)

// memAuthority stands for the internal CA (internal/pki/ca covers the
// real one, and internal/gateway the two together): serials it issued,
// those revoked, and a failure to report.
type memAuthority struct {
	issuer  *x509.Certificate
	mu      sync.Mutex
	issued  map[string]bool
	revoked map[string]int
	fail    error
	calls   int
}

func (a *memAuthority) Issuer() *x509.Certificate { return a.issuer }

func (a *memAuthority) CertStatus(_ context.Context, serial *big.Int) (bool, time.Time, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.fail != nil {
		return false, time.Time{}, 0, a.fail
	}
	s := serial.Text(16)
	if code, ok := a.revoked[s]; ok {
		return true, time.Unix(1700000000, 0), code, nil
	}
	return a.issued[s], time.Time{}, 0, nil
}

// recordingChecker is the next checker: it records the chains it is asked
// about and answers with verdict for the certificates whose serials it
// lists, nil otherwise.
type recordingChecker struct {
	mu      sync.Mutex
	chains  [][]*x509.Certificate
	verdict map[string]error
}

func (r *recordingChecker) CheckChain(_ context.Context, chain []*x509.Certificate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chains = append(r.chains, chain)
	for _, c := range chain[:len(chain)-1] {
		if err := r.verdict[c.SerialNumber.Text(16)]; err != nil {
			return err
		}
	}
	return nil
}

func TestLocalAuthority(t *testing.T) {
	root := pkitest.NewRootCA(t, "Local Root", pkitest.Options{})
	inter := root.NewIntermediate(t, "Local CA", pkitest.Options{})
	// Another CA with the same names, another key: an impostor's, or just
	// someone else's.
	otherRoot := pkitest.NewRootCA(t, "Local Root", pkitest.Options{})
	other := otherRoot.NewIntermediate(t, "Local CA", pkitest.Options{})
	serial := big.NewInt(0x5eed)
	mine := inter.Issue(t, pkitest.Options{CommonName: "a", SerialNumber: serial})
	theirs := other.Issue(t, pkitest.Options{CommonName: "a", SerialNumber: serial})
	unknown := inter.Issue(t, pkitest.Options{CommonName: "b"})
	chainOf := func(l *pkitest.Leaf, ca *pkitest.CA, r *pkitest.CA) []*x509.Certificate {
		return []*x509.Certificate{l.Cert, ca.Cert, r.Cert}
	}
	revokedTheirs := &RevokedError{Serial: serial, ReasonCode: 1, Source: "crl"}
	revokedInter := &RevokedError{Serial: inter.Cert.SerialNumber, ReasonCode: 2, Source: "crl"}

	for _, c := range []struct {
		name       string
		chain      []*x509.Certificate
		revoked    bool // the authority has revoked serial
		fail       error
		verdict    map[string]error
		wantReason string // Reason(err)
		wantSource string
		wantNext   int // chains passed to the next checker
	}{
		{name: "mine, good: decided locally, the intermediate by next", chain: chainOf(mine, inter, root), wantNext: 1},
		{name: "mine, revoked: decided at the leaf", chain: chainOf(mine, inter, root), revoked: true, wantReason: ReasonRevoked, wantSource: SourceLocal},
		{name: "mine, good, its intermediate revoked by next", chain: chainOf(mine, inter, root),
			verdict: map[string]error{inter.Cert.SerialNumber.Text(16): revokedInter}, wantReason: ReasonRevoked, wantSource: "crl", wantNext: 1},
		{name: "same serial from another CA: not affected", chain: chainOf(theirs, other, otherRoot), revoked: true, wantNext: 1},
		{name: "another CA, revoked by its own sources", chain: chainOf(theirs, other, otherRoot),
			verdict: map[string]error{serial.Text(16): revokedTheirs}, wantReason: ReasonRevoked, wantSource: "crl", wantNext: 1},
		{name: "signed by my CA, never recorded", chain: chainOf(unknown, inter, root), wantReason: ReasonLocalUnknown, wantNext: 1},
		{name: "records unreadable: unavailable, never good", chain: chainOf(mine, inter, root), fail: errors.New("database is locked"),
			wantReason: ReasonLocalUnavailable, wantNext: 1},
		{name: "leaf of my CA only (no anchor beyond)", chain: []*x509.Certificate{mine.Cert, inter.Cert}, revoked: true,
			wantReason: ReasonRevoked, wantSource: SourceLocal},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &memAuthority{issuer: inter.Cert, issued: map[string]bool{serial.Text(16): true}, revoked: map[string]int{}, fail: c.fail}
			if c.revoked {
				a.revoked[serial.Text(16)] = 1
			}
			next := &recordingChecker{verdict: c.verdict}
			l, err := NewLocal(next, a)
			if err != nil {
				t.Fatal(err)
			}
			err = l.CheckChain(context.Background(), c.chain)
			if got := Reason(err); got != c.wantReason {
				t.Fatalf("reason %q (%v), want %q", got, err, c.wantReason)
			}
			if rev, ok := errors.AsType[*RevokedError](err); ok && rev.Source != c.wantSource {
				t.Fatalf("revoked by %q serial %v", rev.Source, rev.Serial)
			}
			if len(next.chains) != c.wantNext {
				t.Fatalf("next checker asked %d times, want %d", len(next.chains), c.wantNext)
			}
			for _, ch := range next.chains {
				if len(c.chain) > 0 && ch[0] == c.chain[0] && c.chain[1] == inter.Cert {
					t.Fatal("a certificate of the local CA was passed on to the next checker")
				}
			}
		})
	}
	if _, err := NewLocal(nil); err == nil {
		t.Fatal("no next checker accepted")
	}
}
