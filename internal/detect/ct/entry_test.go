package ct

import (
	"bytes"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"

	"github.com/wardengw/warden/internal/detect/ct/cttest"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/pkitest"
)

func seedEntries(t testing.TB) (x509Entry, precert ctgo.LeafEntry, leaf *pkitest.Leaf) {
	root := pkitest.NewRootCA(t, "Fuzz Root", pkitest.Options{})
	leaf = root.Issue(t, pkitest.Options{DNSNames: []string{"www.example.com", "example.com"}, KeyType: pkitest.RSA2048})
	ts := uint64(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli())
	return cttest.X509Entry(t, leaf.Cert, ts, root.Cert),
		cttest.PrecertEntry(t, leaf.Cert.RawTBSCertificate, root.Cert, leaf.Cert.Raw, ts), leaf
}

func TestParseEntry(t *testing.T) {
	x, p, leaf := seedEntries(t)
	for name, e := range map[string]ctgo.LeafEntry{"x509": x, "precert": p} {
		c, err := ParseEntry(e.LeafInput, e.ExtraData)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Pin != pki.SPKIPin(leaf.Cert) || c.Serial != leaf.Cert.SerialNumber.Text(16) || c.ChainLen != 1 ||
			c.Precert != (name == "precert") || !c.Timestamp.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s: %+v", name, c)
		}
		if got := c.Names(); len(got) != 2 || got[0] != "www.example.com" || got[1] != "example.com" {
			t.Errorf("%s: names %v", name, got)
		}
		// extra_data is not authenticated: garbling it hides nothing.
		if c, err := ParseEntry(e.LeafInput, []byte{0xff}); err != nil || c.ChainLen != -1 || c.Pin != pki.SPKIPin(leaf.Cert) {
			t.Errorf("%s with bad extra_data: %+v %v", name, c, err)
		}
	}
	// Trailing bytes, truncation, unknown types: errors, not panics.
	bad := map[string][]byte{
		"trailing":  append(bytes.Clone(x.LeafInput), 0),
		"truncated": x.LeafInput[:len(x.LeafInput)/2],
		"empty":     nil,
	}
	js, _ := cttls.Marshal(ctgo.MerkleTreeLeaf{Version: ctgo.V1, LeafType: ctgo.TimestampedEntryLeafType,
		TimestampedEntry: &ctgo.TimestampedEntry{EntryType: 32768, JSONEntry: &ctgo.JSONDataEntry{Data: []byte("{}")}}})
	bad["json"] = js
	for name, in := range bad {
		if _, err := ParseEntry(in, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseEntry feeds arbitrary leaf_input and extra_data to the parser of
// untrusted log entries: it must return an error or a certificate, never
// panic.
func FuzzParseEntry(f *testing.F) {
	x, p, _ := seedEntries(f)
	f.Add(x.LeafInput, x.ExtraData)
	f.Add(p.LeafInput, p.ExtraData)
	f.Add(x.LeafInput, p.ExtraData)
	f.Add(p.LeafInput[:40], []byte{})
	f.Add([]byte{0, 0}, []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, leafInput, extraData []byte) {
		c, err := ParseEntry(leafInput, extraData)
		if err == nil {
			_ = c.Names()
			_ = c.Pin.String()
		} else if c != nil {
			t.Fatalf("certificate and error: %+v %v", c, err)
		}
	})
}
