package expiry_test

import (
	"crypto/x509"
	"slices"
	"testing"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/expiry"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

func kinds(fs []expiry.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestCheckPins(t *testing.T) {
	root := pkitest.NewRootCA(t, "Pin Root", pkitest.Options{})
	inter := root.NewIntermediate(t, "Pin Intermediate", pkitest.Options{})
	nextInter := root.NewIntermediate(t, "Next Intermediate", pkitest.Options{})
	issue := func(ca *pkitest.CA, o pkitest.Options) []*x509.Certificate {
		o.DNSNames = []string{"up.internal"}
		return ca.Issue(t, o).Chain
	}
	current := issue(inter, pkitest.Options{})
	newLeaf := issue(inter, pkitest.Options{})   // new leaf key, same intermediate
	newCA := issue(nextInter, pkitest.Options{}) // new leaf key and a new intermediate
	backupKey := pkitest.GenerateKey(t, "")      // an offline backup key
	toBackup := issue(inter, pkitest.Options{Key: backupKey})
	backupPin := pki.SPKIPin(toBackup[0])

	leafPin, interPin := pki.SPKIPin(current[0]), pki.SPKIPin(inter.Cert)
	for _, tc := range []struct {
		name             string
		pins             pki.PinSet
		current, planned []*x509.Certificate
		want             []string
	}{
		{"pinning off", nil, current, newLeaf, nil},
		{"leaf pin only, leaf rotates", pki.PinSet{leafPin}, current, newLeaf,
			[]string{expiry.PinsMissPlanned, expiry.NoBackupPin}},
		{"leaf and backup, rotation to the backup key", pki.PinSet{leafPin, backupPin}, current, toBackup, nil},
		{"leaf and backup, rotation to an unpinned key", pki.PinSet{leafPin, backupPin}, current, newLeaf,
			[]string{expiry.PinsMissPlanned}},
		{"intermediate pinned, leaf rotates", pki.PinSet{interPin, backupPin}, current, newLeaf, nil},
		{"intermediate pinned, CA changes", pki.PinSet{interPin, backupPin}, current, newCA,
			[]string{expiry.PinsMissPlanned}},
		{"leaf and intermediate: both in the current chain", pki.PinSet{leafPin, interPin}, current, newLeaf,
			[]string{expiry.NoBackupPin}},
		{"pins match nothing now", pki.PinSet{backupPin}, current, nil,
			[]string{expiry.PinsMissCurrent}},
		{"no chain known, one pin", pki.PinSet{leafPin}, nil, nil, []string{expiry.NoBackupPin}},
		{"no chain known, two pins", pki.PinSet{leafPin, backupPin}, nil, nil, nil},
	} {
		got := kinds(expiry.CheckPins(tc.pins, tc.current, tc.planned))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: findings %v, want %v", tc.name, got, tc.want)
		}
	}
}
