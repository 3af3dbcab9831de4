package mtls_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/revocation"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
	"github.com/wardengw/warden/internal/testkit"
)

// TestVerification: through a real listener that only asks for a
// certificate, every bad client certificate is refused with its own 401
// reason and a client_cert_rejected event naming the presented leaf; a
// good one reaches the upstream with its identity.
func TestVerification(t *testing.T) {
	p := newPKI(t)
	constrained := p.root.NewIntermediate(t, "Constrained Intermediate", pkitest.Options{PermittedDNSDomains: []string{"acme.example"}})
	now := time.Now()
	valid := p.client(t, pkitest.Options{CommonName: "svc-a", URIs: []string{"spiffe://acme.example/billing/api"}})
	leafOnly := *valid
	leafOnly.Chain = valid.Chain[:1] // the client forgets its intermediate

	tests := []struct {
		name   string
		leaf   *pkitest.Leaf
		reason string // "" means admitted
		check  func(t *testing.T, fields map[string]any)
	}{
		{"valid", valid, "", nil},
		{"no certificate", nil, mtls.ReasonCertificateRequired, nil},
		{"expired", p.client(t, pkitest.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}), mtls.ReasonExpired, nil},
		{"not yet valid", p.client(t, pkitest.Options{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}), mtls.ReasonNotYetValid, nil},
		{"another CA", p.other.Issue(t, pkitest.Options{CommonName: "stranger"}), mtls.ReasonUnknownCA, func(t *testing.T, f map[string]any) {
			if f["chain_top_issuer"] != "CN=Other Root,O=Warden Test" || f["issuer_in_bundle"] != false {
				t.Errorf("fields = %v, want the chain to end at Other Root, not in the bundle", f)
			}
		}},
		{"missing intermediate", &leafOnly, mtls.ReasonUnknownCA, func(t *testing.T, f map[string]any) {
			if f["chain_top_issuer"] != "CN=Client Intermediate,O=Warden Test" || f["presented"] != 1 {
				t.Errorf("fields = %v, want the chain to end at the intermediate the client did not send", f)
			}
		}},
		{"serverAuth only", p.client(t, pkitest.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), mtls.ReasonWrongEKU, nil},
		{"name constraint", constrained.Issue(t, pkitest.Options{DNSNames: []string{"api.evil.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}),
			mtls.ReasonNameConstraint, func(t *testing.T, f map[string]any) {
				if f["failed_subject"] != nil && !strings.Contains(f["failed_subject"].(string), "Constrained") {
					t.Errorf("failed_subject = %v", f["failed_subject"])
				}
			}},
		{"inside the name constraint", constrained.Issue(t, pkitest.Options{DNSNames: []string{"api.acme.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), "", nil},
		{"SHA-1 signature", p.sha1Client(t), mtls.ReasonSHA1Signature, nil},
		{"RSA-1024", p.client(t, pkitest.Options{KeyType: pkitest.RSA1024}), mtls.ReasonWeakKey, nil},
		{"RSA-2048", p.client(t, pkitest.Options{KeyType: pkitest.RSA2048}), "", nil},
		{"self-signed", pkitest.SelfSigned(t, pkitest.Options{CommonName: "me"}), mtls.ReasonUnknownCA, nil},
		// A rogue CA copying the trusted root's name: same reason, but the
		// event says the issuer name is trusted, a forgery signal.
		{"rogue CA with the root's name", pkitest.NewRootCA(t, "Client Root", pkitest.Options{}).Issue(t, pkitest.Options{CommonName: "rogue"}),
			mtls.ReasonUnknownCA, func(t *testing.T, f map[string]any) {
				if f["issuer_in_bundle"] != true {
					t.Errorf("issuer_in_bundle = %v, want true", f["issuer_in_bundle"])
				}
			}},
	}
	w := start(t, p, mtls.Config{Revocation: mtls.RevocationOff}, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.get(t, w.client(t, tt.leaf), nil)
			if tt.reason == "" {
				if r.status != http.StatusOK {
					t.Fatalf("status %d (%v), want 200", r.status, r.problem)
				}
				if r.view.LeafSHA256 != fingerprint(tt.leaf.Cert) || len(r.view.Methods) != 1 || r.view.Methods[0] != "mtls" {
					t.Errorf("upstream identity = %+v, want the leaf and method mtls", r.view)
				}
				return
			}
			if r.status != http.StatusUnauthorized || r.problem["reason"] != tt.reason {
				t.Fatalf("got %d %v, want 401 %s", r.status, r.problem["reason"], tt.reason)
			}
			var cert *x509.Certificate
			if tt.leaf != nil {
				cert = tt.leaf.Cert
			}
			e := w.waitEvent(t, mtls.EventRejected, tt.reason, cert)
			if tt.leaf != nil {
				if e.Fields["cert_sha256"] != fingerprint(tt.leaf.Cert) || e.Fields["subject"] != tt.leaf.Cert.Subject.String() ||
					e.Fields["issuer"] != tt.leaf.Cert.Issuer.String() || e.Fields["serial"] != tt.leaf.Cert.SerialNumber.Text(16) {
					t.Errorf("event fields %v do not describe the presented leaf", e.Fields)
				}
			}
			if tt.check != nil {
				tt.check(t, e.Fields)
			}
		})
	}
}

// TestForwardedIdentity: the upstream gets RFC 9440 headers decoding to the
// verified leaf and intermediate, and the identity header; whatever the
// client sent under those names never arrives.
func TestForwardedIdentity(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, pkitest.Options{CommonName: "svc-a", URIs: []string{"spiffe://acme.example/billing/api"}})
	forged := http.Header{
		"Client-Cert":       {":" + base64.StdEncoding.EncodeToString(p.other.Cert.Raw) + ":"},
		"Client-Cert-Chain": {":AAAA:"},
		"X-Client-Identity": {`{"consumer":"admin"}`},
	}
	t.Run("headers", func(t *testing.T) {
		w := start(t, p, mtls.Config{
			Revocation: mtls.RevocationOff,
			Consumers:  []mtls.ConsumerRule{{Name: "billing", Match: mtls.Match{SPIFFEID: "spiffe://acme.example/billing/**"}}},
			Forward:    mtls.Forward{IdentityHeader: "x-client-identity"},
		}, false)
		r := w.get(t, w.client(t, leaf), forged)
		if r.status != http.StatusOK {
			t.Fatalf("status %d %v", r.status, r.problem)
		}
		if len(r.view.ClientCert) != 1 || !bytes.Equal(parseSFBinary(t, r.view.ClientCert[0]), leaf.Cert.Raw) {
			t.Errorf("Client-Cert = %q, want the leaf (and only it)", r.view.ClientCert)
		}
		if len(r.view.ClientCertChain) != 1 {
			t.Fatalf("Client-Cert-Chain = %q, want one field", r.view.ClientCertChain)
		}
		chain := parseSFList(t, r.view.ClientCertChain[0])
		if len(chain) != 1 || !bytes.Equal(chain[0], p.inter.Cert.Raw) {
			t.Errorf("Client-Cert-Chain holds %d certificates, want the intermediate alone", len(chain))
		}
		if len(r.view.Identity) != 1 {
			t.Fatalf("identity header = %q", r.view.Identity)
		}
		var id map[string]string
		if err := json.Unmarshal([]byte(r.view.Identity[0]), &id); err != nil {
			t.Fatal(err)
		}
		spki := sha256b64(leaf.Cert.RawSubjectPublicKeyInfo)
		if id["consumer"] != "billing" || id["spiffe_id"] != "spiffe://acme.example/billing/api" ||
			id["serial"] != leaf.Cert.SerialNumber.Text(16) || id["spki_sha256"] != spki || !strings.Contains(id["subject"], "CN=svc-a") {
			t.Errorf("identity = %v", id)
		}
		if r.view.Consumer != "billing" {
			t.Errorf("Exchange consumer = %q, want billing", r.view.Consumer)
		}
	})
	t.Run("forwarding off still strips", func(t *testing.T) {
		off := false
		w := start(t, p, mtls.Config{Revocation: mtls.RevocationOff, Forward: mtls.Forward{ClientCertHeaders: &off}}, false)
		r := w.get(t, w.client(t, leaf), forged)
		if r.status != http.StatusOK || len(r.view.ClientCert)+len(r.view.ClientCertChain) != 0 {
			t.Errorf("status %d, upstream saw Client-Cert %q, chain %q; want none", r.status, r.view.ClientCert, r.view.ClientCertChain)
		}
	})
	t.Run("Connection cannot drop them at the proxy", func(t *testing.T) {
		upstream := httptest.NewServer(http.HandlerFunc(echo))
		defer upstream.Close()
		target, _ := url.Parse(upstream.URL)
		proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
		pol, err := mtls.New(mtls.Config{CAFiles: []policy.FilePath{policy.FilePath(p.bundle)}, Revocation: mtls.RevocationOff, Forward: mtls.Forward{IdentityHeader: "X-Client-Identity"}})
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{"Connection": {"keep-alive, Client-Cert", "client-cert-chain,x-client-identity"}}
		rec := serveDirectTo(pol, &policy.Env{}, leaf.Chain, "", proxy, h)
		var v upstreamView
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
		}
		if len(v.ClientCert) != 1 || len(v.ClientCertChain) != 1 || len(v.Identity) != 1 {
			t.Errorf("behind a reverse proxy the upstream saw Client-Cert %q, chain %q, identity %q; want one of each", v.ClientCert, v.ClientCertChain, v.Identity)
		}
	})
	t.Run("refused requests strip too", func(t *testing.T) {
		h := forged.Clone()
		mtls.StripIdentityHeaders(h, "X-Client-Identity")
		if len(h) != 0 {
			t.Errorf("left %v", h)
		}
	})
}

// TestAuthorization: allow rules by SPIFFE pattern, subject and consumer.
func TestAuthorization(t *testing.T) {
	p := newPKI(t)
	spiffe := func(id string) *pkitest.Leaf { return p.client(t, pkitest.Options{URIs: []string{id}}) }
	cn := func(cn string) *pkitest.Leaf { return p.client(t, pkitest.Options{CommonName: cn}) }
	billingAPI := spiffe("spiffe://acme.example/billing/api")
	tests := []struct {
		name     string
		cfg      mtls.Config
		leaf     *pkitest.Leaf
		want     int
		consumer string
	}{
		{"spiffe one segment", mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/*"}}}, billingAPI, 200, ""},
		{"spiffe other service", mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/*"}}}, spiffe("spiffe://acme.example/payments/api"), 403, ""},
		{"spiffe too deep for *", mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/*"}}}, spiffe("spiffe://acme.example/billing/api/v2"), 403, ""},
		{"spiffe ** suffix", mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/**"}}}, spiffe("spiffe://acme.example/billing/api/v2"), 200, ""},
		{"spiffe other trust domain", mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/billing/*"}}}, spiffe("spiffe://evil.example/billing/api"), 403, ""},
		{"no SPIFFE ID", mtls.Config{Allow: []mtls.Match{{SPIFFEID: "spiffe://acme.example/**"}}}, cn("svc-a"), 403, ""},
		{"subject glob", mtls.Config{Allow: []mtls.Match{{Subject: &mtls.SubjectMatch{CN: "svc-*", O: "Warden Test"}}}}, cn("svc-a"), 200, ""},
		{"subject glob refused", mtls.Config{Allow: []mtls.Match{{Subject: &mtls.SubjectMatch{CN: "svc-*", O: "Warden Test"}}}}, cn("web-a"), 403, ""},
		{"subject all keys must match", mtls.Config{Allow: []mtls.Match{{Subject: &mtls.SubjectMatch{CN: "svc-*", O: "Acme"}}}}, cn("svc-a"), 403, ""},
		{"any rule", mtls.Config{Allow: []mtls.Match{{Subject: &mtls.SubjectMatch{CN: "ops"}}, {Subject: &mtls.SubjectMatch{CN: "svc-a"}}}}, cn("svc-a"), 200, ""},
		{"consumer", mtls.Config{
			Consumers: []mtls.ConsumerRule{{Name: "billing", Match: mtls.Match{SPIFFEID: "spiffe://acme.example/billing/**"}}},
			Allow:     []mtls.Match{{Consumer: "billing"}},
		}, billingAPI, 200, "billing"},
		{"consumer refused", mtls.Config{
			Consumers: []mtls.ConsumerRule{
				{Name: "billing", Match: mtls.Match{SPIFFEID: "spiffe://acme.example/billing/**"}},
				{Name: "payments", Match: mtls.Match{SPIFFEID: "spiffe://acme.example/payments/**"}},
			},
			Allow: []mtls.Match{{Consumer: "billing"}},
		}, spiffe("spiffe://acme.example/payments/api"), 403, "payments"},
		{"first consumer rule wins", mtls.Config{Consumers: []mtls.ConsumerRule{
			{Name: "first", Match: mtls.Match{Subject: &mtls.SubjectMatch{O: "Warden Test"}}},
			{Name: "second", Match: mtls.Match{Subject: &mtls.SubjectMatch{CN: "svc-a"}}},
		}}, cn("svc-a"), 200, "first"},
		{"spki and serial", mtls.Config{Allow: []mtls.Match{{
			SPKISHA256: sha256b64(billingAPI.Cert.RawSubjectPublicKeyInfo), Serial: billingAPI.Cert.SerialNumber.Text(16),
		}}}, billingAPI, 200, ""},
		{"spki of another key", mtls.Config{Allow: []mtls.Match{{SPKISHA256: sha256b64(billingAPI.Cert.RawSubjectPublicKeyInfo)}}}, cn("svc-a"), 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Revocation = mtls.RevocationOff
			w := start(t, p, tt.cfg, false)
			r := w.get(t, w.client(t, tt.leaf), nil)
			if r.status != tt.want {
				t.Fatalf("status %d %v, want %d", r.status, r.problem, tt.want)
			}
			if tt.want == http.StatusForbidden {
				if r.problem["reason"] != mtls.ReasonNotAuthorized {
					t.Errorf("reason %v", r.problem["reason"])
				}
				e := w.waitEvent(t, mtls.EventRejected, mtls.ReasonNotAuthorized, nil)
				if e.Status != http.StatusForbidden || e.Fields["cert_sha256"] != fingerprint(tt.leaf.Cert) {
					t.Errorf("event %+v", e)
				}
				if tt.consumer != "" && e.Fields["consumer"] != tt.consumer {
					t.Errorf("event consumer %v, want %s", e.Fields["consumer"], tt.consumer)
				}
				return
			}
			if r.view.Consumer != tt.consumer {
				t.Errorf("consumer %q, want %q", r.view.Consumer, tt.consumer)
			}
		})
	}
}

var keyCompromise = &revocation.RevokedError{Serial: big.NewInt(1), ReasonCode: 1, ReasonText: "keyCompromise", Source: "ocsp"}

// TestRevocation: revoked, unavailable under hard and soft fail, no
// checker.
func TestRevocation(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, pkitest.Options{})
	down := &revocation.UnavailableError{Reason: revocation.ReasonOCSPUnreachable}
	tests := []struct {
		name      string
		mode      string
		err       error
		noChecker bool
		want      int
		reason    string
	}{
		{"good", mtls.RevocationHardFail, nil, false, 200, ""},
		{"revoked", mtls.RevocationHardFail, keyCompromise, false, 401, mtls.ReasonRevoked},
		{"revoked under soft_fail", mtls.RevocationSoftFail, keyCompromise, false, 401, mtls.ReasonRevoked},
		{"hard_fail, responder down", "", down, false, 401, mtls.ReasonRevocationUnavailable},
		{"soft_fail, responder down", mtls.RevocationSoftFail, down, false, 200, ""},
		// soft_fail forgives only an outside source that could not answer.
		{"soft_fail, own CA has no record", mtls.RevocationSoftFail, &revocation.UnavailableError{Reason: revocation.ReasonLocalUnknown}, false, 401, mtls.ReasonRevocationUnavailable},
		{"soft_fail, own CA store unreadable", mtls.RevocationSoftFail, &revocation.UnavailableError{Reason: revocation.ReasonLocalUnavailable, Cause: errors.New("disk I/O error")}, false, 401, mtls.ReasonRevocationUnavailable},
		{"soft_fail, request abandoned", mtls.RevocationSoftFail, &revocation.UnavailableError{Reason: revocation.ReasonOCSPUnreachable, Cause: context.Canceled}, false, 401, mtls.ReasonRevocationUnavailable},
		{"hard_fail, no checker", mtls.RevocationHardFail, nil, true, 401, mtls.ReasonRevocationUnavailable},
		{"off", mtls.RevocationOff, keyCompromise, false, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := start(t, p, mtls.Config{Revocation: tt.mode}, tt.noChecker)
			w.rev.set(tt.err)
			r := w.get(t, w.client(t, leaf), nil)
			if r.status != tt.want || tt.reason != "" && r.problem["reason"] != tt.reason {
				t.Fatalf("got %d %v, want %d %s", r.status, r.problem["reason"], tt.want, tt.reason)
			}
			switch {
			case tt.reason == mtls.ReasonRevoked:
				if !r.close {
					t.Error("revoked: connection not closed")
				}
				e := w.waitEvent(t, mtls.EventRejected, mtls.ReasonRevoked, nil)
				if e.Fields["revocation_reason"] != 1 || e.Fields["revocation_reason_text"] != "keyCompromise" || e.Severity != "critical" {
					t.Errorf("event %+v, want RFC 5280 reason 1 keyCompromise, critical", e)
				}
			case tt.reason == mtls.ReasonRevocationUnavailable:
				w.waitEvent(t, mtls.EventRejected, mtls.ReasonRevocationUnavailable, nil)
			case tt.name == "soft_fail, responder down":
				e := w.waitEvent(t, mtls.EventRevocationSoftFail, mtls.ReasonRevocationUnavailable, nil)
				if e.Fields["revocation_status"] != revocation.ReasonOCSPUnreachable {
					t.Errorf("event %+v", e)
				}
				w.get(t, w.client(t, leaf), nil) // counted again, recorded once a minute
				if n := metricSum(t, w, "warden_mtls_revocation_soft_fail_total"); n != 2 {
					t.Errorf("soft-fail metric = %v, want 2", n)
				}
				if n := countEvents(w, mtls.EventRevocationSoftFail); n != 1 {
					t.Errorf("%d soft-fail events, want 1 (rate-limited)", n)
				}
			}
		})
	}
}

// TestRevokedWhileConnected: a kept-alive connection is refused at its next
// request once its certificate is known revoked, and closed.
func TestRevokedWhileConnected(t *testing.T) {
	p := newPKI(t)
	w := start(t, p, mtls.Config{}, false)
	c := w.client(t, p.client(t, pkitest.Options{}))
	if r := w.get(t, c, nil); r.status != http.StatusOK {
		t.Fatalf("first request: %d %v", r.status, r.problem)
	}
	if r := w.get(t, c, nil); r.status != http.StatusOK || !r.reused {
		t.Fatalf("second request: %d, reused %v; want 200 on the same connection", r.status, r.reused)
	}
	w.rev.set(keyCompromise)
	r := w.get(t, c, nil)
	if !r.reused || r.status != http.StatusUnauthorized || r.problem["reason"] != mtls.ReasonRevoked || !r.close {
		t.Fatalf("after revocation: reused %v, %d %v, close %v; want 401 revoked with Connection: close on the open connection",
			r.reused, r.status, r.problem["reason"], r.close)
	}
	if r := w.get(t, c, nil); r.reused || r.status != http.StatusUnauthorized {
		t.Errorf("next: reused %v, status %d; want a new connection, still refused", r.reused, r.status)
	}
	if n := w.rev.count(); n != 4 {
		t.Errorf("revocation checked %d times, want once per request (4)", n)
	}
}

// TestMaxConnectionAge: a connection older than max_connection_age is
// refused and closed at its next request; a new one works.
func TestMaxConnectionAge(t *testing.T) {
	p := newPKI(t)
	w := start(t, p, mtls.Config{Revocation: mtls.RevocationOff, MaxConnectionAge: time.Hour}, false)
	c := w.client(t, p.client(t, pkitest.Options{}))
	if r := w.get(t, c, nil); r.status != http.StatusOK {
		t.Fatalf("first request: %d %v", r.status, r.problem)
	}
	w.clock.Advance(59 * time.Minute)
	if r := w.get(t, c, nil); r.status != http.StatusOK || !r.reused {
		t.Fatalf("at 59m: %d reused %v", r.status, r.reused)
	}
	w.clock.Advance(2 * time.Minute)
	r := w.get(t, c, nil)
	if !r.reused || r.status != http.StatusUnauthorized || r.problem["reason"] != mtls.ReasonConnectionTooOld || !r.close {
		t.Fatalf("at 61m: reused %v, %d %v, close %v; want 401 connection_too_old, closed", r.reused, r.status, r.problem["reason"], r.close)
	}
	w.waitEvent(t, mtls.EventRejected, mtls.ReasonConnectionTooOld, nil)
	if r := w.get(t, c, nil); r.reused || r.status != http.StatusOK {
		t.Errorf("new connection: reused %v, %d", r.reused, r.status)
	}
}

// TestVerificationCached: keep-alive requests and new connections with the
// same chain verify once; a bad chain is not re-verified on every request
// either.
func TestVerificationCached(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, pkitest.Options{})
	w := start(t, p, mtls.Config{Revocation: mtls.RevocationOff}, false)
	for range 3 {
		if r := w.get(t, w.client(t, leaf), nil); r.status != http.StatusOK {
			t.Fatalf("%d %v", r.status, r.problem)
		}
	}
	if n := mtls.CacheLen(w.policy); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
	// Past the cache TTL the chain is verified again, at the new time.
	w.clock.Advance(25 * time.Hour)
	if r := w.get(t, w.client(t, leaf), nil); r.status != http.StatusUnauthorized || r.problem["reason"] != mtls.ReasonExpired {
		t.Errorf("after expiry: %d %v", r.status, r.problem["reason"])
	}
}

// TestConsumerMismatch: a certificate naming another consumer than an
// earlier policy established is refused.
func TestConsumerMismatch(t *testing.T) {
	p := newPKI(t)
	pol, err := mtls.New(mtls.Config{CAFiles: []policy.FilePath{policy.FilePath(p.bundle)}, Revocation: mtls.RevocationOff,
		Consumers: []mtls.ConsumerRule{{Name: "billing", Match: mtls.Match{Subject: &mtls.SubjectMatch{CN: "client"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := p.client(t, pkitest.Options{})
	for _, tt := range []struct {
		earlier string
		want    int
	}{{"", 200}, {"billing", 200}, {"payments", 401}} {
		rec := serveDirect(pol, &policy.Env{}, leaf.Chain, tt.earlier)
		if rec.Code != tt.want || tt.want == 401 && !strings.Contains(rec.Body.String(), mtls.ReasonConsumerMismatch) {
			t.Errorf("earlier consumer %q: %d %s, want %d", tt.earlier, rec.Code, rec.Body, tt.want)
		}
	}
}

func countEvents(w *world, typ string) int {
	n := 0
	for _, e := range w.sink.Events() {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestHTTP2: the same over HTTP/2, where Connection: close becomes GOAWAY.
func TestHTTP2(t *testing.T) {
	p := newPKI(t)
	w := start(t, p, mtls.Config{}, false)
	leaf := p.client(t, pkitest.Options{})
	c := leaf.TLS()
	cl := w.clientCert(t, &c)
	cl.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	cl.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"h2"}
	resp, err := cl.Get(w.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	w.rev.set(keyCompromise)
	resp, err = cl.Get(w.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked over h2: %d", resp.StatusCode)
	}
}

// TestRevocationOCSP: with the real revocation checker and a real OCSP
// responder on 127.0.0.1, a revocation published while a client is
// connected takes effect within the checker's cache bound, on the same
// kept-alive connection, with the RFC 5280 reason in the audit event.
func TestRevocationOCSP(t *testing.T) {
	p := newPKI(t)
	clock := testkit.NewClock(time.Now())
	responder := revocationtest.NewResponder(t, p.inter)
	responder.SetClock(clock.Now)
	leaf := p.client(t, pkitest.Options{OCSPServer: []string{responder.URL}})
	checker, err := revocation.New(revocation.Config{DisableDistributionPoints: true, Now: clock.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := mtls.New(mtls.Config{CAFiles: []policy.FilePath{policy.FilePath(p.bundle)}})
	if err != nil {
		t.Fatal(err)
	}
	w := startChecker(t, p, pol, clock, checker)
	c := w.client(t, leaf)
	for i := range 2 {
		if r := w.get(t, c, nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, r.status, r.problem)
		}
	}
	if n := responder.Hits(); n != 1 {
		t.Errorf("OCSP responder asked %d times, want once (then cached)", n)
	}
	responder.Revoke(leaf.Cert.SerialNumber, 1, clock.Now())
	clock.Advance(revocation.DefaultCRLRefresh + time.Minute)
	r := w.get(t, c, nil)
	if !r.reused || r.status != http.StatusUnauthorized || r.problem["reason"] != mtls.ReasonRevoked || !r.close {
		t.Fatalf("after the revocation: reused %v, %d %v, close %v; want 401 revoked, closed, on the open connection",
			r.reused, r.status, r.problem["reason"], r.close)
	}
	e := w.waitEvent(t, mtls.EventRejected, mtls.ReasonRevoked, leaf.Cert)
	if e.Fields["revocation_reason"] != 1 || e.Fields["revocation_source"] != "ocsp" {
		t.Errorf("event fields %v, want reason 1 from ocsp", e.Fields)
	}
}
