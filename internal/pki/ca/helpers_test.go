package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/pki/pkitest"
	"github.com/wardengw/warden/internal/store"
)

// memRecords is an in-memory Records for tests and benchmarks.
type memRecords struct {
	mu   sync.Mutex
	m    map[string]store.IssuedCert
	crlN map[string]int64
	gen  map[string]int64
	fail error // when set, RevocationGeneration fails with it
}

func newMemRecords() *memRecords {
	return &memRecords{m: map[string]store.IssuedCert{}, crlN: map[string]int64{}, gen: map[string]int64{}}
}

func (r *memRecords) RecordIssued(_ context.Context, c store.IssuedCert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[c.Serial]; ok {
		return store.ErrExists
	}
	r.m[c.Serial] = c
	return nil
}

func (r *memRecords) IssuedCert(_ context.Context, serial string) (store.IssuedCert, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[serial]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (r *memRecords) RevokeIssued(_ context.Context, serial string, reason int, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[serial]
	if !ok {
		return store.ErrNotFound
	}
	if c.Revoked() {
		return store.ErrAlreadyRevoked
	}
	c.RevokedAt, c.Reason = at, reason
	r.m[serial] = c
	r.gen[c.Issuer]++
	return nil
}

func (r *memRecords) RevocationGeneration(_ context.Context, issuer string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen[issuer], r.fail
}

func (r *memRecords) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func (r *memRecords) ListIssued(_ context.Context, issuer string, _ int) ([]store.IssuedCert, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.IssuedCert
	for _, c := range r.m {
		if issuer == "" || c.Issuer == issuer {
			out = append(out, c)
		}
	}
	return out, nil
}

func (r *memRecords) RevokedList(ctx context.Context, issuer string) ([]store.IssuedCert, error) {
	all, _ := r.ListIssued(ctx, issuer, 0)
	var out []store.IssuedCert
	for _, c := range all {
		if c.Revoked() {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial < out[j].Serial })
	return out, nil
}

func (r *memRecords) NextCRLNumber(_ context.Context, issuer string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crlN[issuer]++
	return r.crlN[issuer], nil
}

func (r *memRecords) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// failingRecords fails to record.
type failingRecords struct{ *memRecords }

func (failingRecords) RecordIssued(context.Context, store.IssuedCert) error {
	return errors.New("disk full")
}

// testInit makes a CA in a fresh folder, constrained to example.com,
// spiffe trust domain example.com and 10.0.0.0/8, and returns the folder.
func testInit(t testing.TB, o InitOptions) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if o.PermittedDNSDomains == nil && o.PermittedURIDomains == nil && o.PermittedIPRanges == nil {
		_, n, _ := net.ParseCIDR("10.0.0.0/8")
		_, n6, _ := net.ParseCIDR("127.0.0.0/8")
		o.PermittedDNSDomains = []string{"example.com"}
		o.PermittedURIDomains = []string{"example.com"}
		o.PermittedIPRanges = []*net.IPNet{n, n6}
	}
	if err := Init(dir, o); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return dir
}

func testLoad(t testing.TB, dir string, pass []byte, cfg Config) *CA {
	t.Helper()
	if cfg.Records == nil {
		cfg.Records = newMemRecords()
	}
	if cfg.PublishURL == "" {
		cfg.PublishURL = "http://127.0.0.1:1/pki"
	}
	c, err := Load(dir, pass, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// csrSpec describes a CSR.
type csrSpec struct {
	cn     string
	dns    []string
	ips    []string
	uris   []string
	emails []string
	key    pkitest.KeyType
}

func makeCSR(t testing.TB, s csrSpec) ([]byte, crypto.Signer) {
	t.Helper()
	key := pkitest.GenerateKey(t, s.key)
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: s.cn, Organization: []string{"ignored"}},
		DNSNames: s.dns, EmailAddresses: s.emails}
	for _, ip := range s.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range s.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

// pkiServer is a test server that will serve a publisher's handler under
// /pki; the CA is loaded with its URL before the publisher exists.
type pkiServer struct {
	URL string // the publish URL
	mu  sync.Mutex
	h   http.Handler
}

func newPKIServer(t testing.TB) *pkiServer {
	t.Helper()
	s := &pkiServer{}
	mux := http.NewServeMux()
	mux.Handle("/pki/", http.StripPrefix("/pki", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/pki"
	return s
}

func (s *pkiServer) publish(p *Publisher) { s.mu.Lock(); s.h = p.Handler(); s.mu.Unlock() }
