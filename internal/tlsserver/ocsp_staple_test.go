package tlsserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/revocation"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
	"github.com/wardengw/warden/internal/testkit"
	"github.com/wardengw/warden/internal/tlsserver"
)

// TestOCSPStapling: the gateway staples its certificate's OCSP response,
// a default client receives it, and a revoked own certificate stops being
// stapled and raises a critical event.
func TestOCSPStapling(t *testing.T) {
	root := pkitest.NewRootCA(t, "Staple Root", pkitest.Options{})
	inter := root.NewIntermediate(t, "Staple Intermediate", pkitest.Options{})
	responder := revocationtest.NewResponder(t, inter)
	clock := testkit.NewClock(time.Now())
	responder.SetClock(clock.Now)
	leaf := inter.Issue(t, pkitest.Options{DNSNames: []string{"a.example"}, OCSPServer: []string{responder.URL}})
	plain := inter.Issue(t, pkitest.Options{DNSNames: []string{"b.example"}}) // no OCSP URL: served unstapled

	sink := audit.NewMemorySink()
	stapler, err := revocation.NewStapler(revocation.Config{Now: clock.Now, Audit: audit.New(sink)})
	if err != nil {
		t.Fatal(err)
	}
	settings := tlsserver.Settings{Certificates: certs(leaf, plain)}
	h := start(t, settings, tlsserver.ListenerOptions{})
	stapling := tlsserver.NewStapling(h.srv, stapler, nil)
	if err := stapling.Update(context.Background(), settings); err != nil {
		t.Fatal(err)
	}

	client := &tls.Config{RootCAs: root.Pool(), ServerName: "a.example"}
	st := handshake(t, h.addr, client)
	if !bytes.Equal(st.OCSPResponse, responder.Last()) || len(st.OCSPResponse) == 0 {
		t.Fatalf("client got staple %x, want the responder's response", st.OCSPResponse)
	}
	resp, err := ocsp.ParseResponseForCert(st.OCSPResponse, st.PeerCertificates[0], inter.Cert)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("staple: %v, %+v", err, resp)
	}
	if st := handshake(t, h.addr, &tls.Config{RootCAs: root.Pool(), ServerName: "b.example"}); st.OCSPResponse != nil {
		t.Error("certificate without OCSP URL stapled")
	}
	// Nothing due: Refresh changes nothing and asks nobody.
	hits := responder.Hits()
	if err := stapling.Refresh(context.Background()); err != nil || responder.Hits() != hits {
		t.Fatalf("refresh before due: %v, hits %d → %d", err, hits, responder.Hits())
	}

	// The gateway's own certificate is revoked.
	responder.Revoke(leaf.Cert.SerialNumber, 1, clock.Now())
	clock.Advance(revocation.DefaultCRLRefresh)
	if err := stapling.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := handshake(t, h.addr, client); st.OCSPResponse != nil {
		t.Fatal("revoked response (or the last good one) still stapled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := sink.Wait(ctx, audit.OfType(revocation.EventOwnCertificateRevoked))
	if err != nil || e.Severity != audit.Critical {
		t.Fatalf("no critical %s event: %v %+v", revocation.EventOwnCertificateRevoked, err, e)
	}
}

func TestStapleCertificatesErrors(t *testing.T) {
	p := newPKI(t)
	in := certs(p.ecdsaA)
	in[0].OCSPStaple = []byte("old")
	out, err := tlsserver.StapleCertificates(context.Background(), failingStapler{}, in)
	if err == nil || out[0].OCSPStaple != nil || string(in[0].OCSPStaple) != "old" {
		t.Fatalf("err %v; staple %q; input modified: %q", err, out[0].OCSPStaple, in[0].OCSPStaple)
	}
}

type failingStapler struct{}

func (failingStapler) Staple(context.Context, *tls.Certificate) ([]byte, error) {
	return nil, errors.New("responder down")
}

func handshake(t *testing.T, addr string, cfg *tls.Config) tls.ConnectionState {
	t.Helper()
	c, err := dial(t, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState()
}
