// Package cttest serves a small, in-memory RFC 6962 certificate-transparency
// log over HTTPS on loopback, for tests of the CT monitor. Besides honest
// behaviour it can misbehave the ways a compromised or buggy log would:
// rewrite history, shrink, sign badly, or show monitors entries that are not
// the ones in its tree.
package cttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	stdx509 "crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// Log is a running test log. Its methods are safe for concurrent use with
// the requests it serves.
type Log struct {
	t   testing.TB
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu       sync.Mutex
	leaves   []ct.LeafEntry
	tree     *testonly.Tree
	ts       uint64
	badSig   bool
	served   map[int64]ct.LeafEntry // get-entries substitutions: a split view
	maxBatch int                    // the log's own cap on get-entries; 0 = none
	failFrom int64                  // get-entries from this index on answer 429; -1 = never
	stats    Stats
	changed  chan struct{} // closed (and cleared) when stats change; nil: no waiter
}

// Stats counts what monitors asked of the log.
type Stats struct {
	GetSTH, GetEntries, GetConsistency, GetProofByHash int
	// LargestEntriesRequest is the largest end-start+1 a get-entries asked for.
	LargestEntriesRequest int
}

// New starts a log on 127.0.0.1 with a fresh ECDSA P-256 key; it stops at
// the end of the test.
func New(t testing.TB) *Log {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := &Log{t: t, key: key, tree: testonly.New(rfc6962.DefaultHasher), served: map[int64]ct.LeafEntry{}, failFrom: -1}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ct/v1/get-sth", l.getSTH)
	mux.HandleFunc("GET /ct/v1/get-entries", l.getEntries)
	mux.HandleFunc("GET /ct/v1/get-sth-consistency", l.getConsistency)
	mux.HandleFunc("GET /ct/v1/get-proof-by-hash", l.getProofByHash)
	l.srv = httptest.NewUnstartedServer(mux)
	l.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose are not news
	l.srv.StartTLS()
	t.Cleanup(l.srv.Close)
	return l
}

// URL is the log's base URL (the part before /ct/v1/).
func (l *Log) URL() string { return l.srv.URL }

// CertificatePEM returns the log's TLS certificate as PEM, for a client's
// trust bundle.
func (l *Log) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.srv.Certificate().Raw})
}

// Client returns an HTTP client that trusts the log's TLS certificate.
func (l *Log) Client() *http.Client { return l.srv.Client() }

// PublicKeyPEM returns the log's STH-signing public key as PEM.
func (l *Log) PublicKeyPEM() []byte {
	der, err := stdx509.MarshalPKIXPublicKey(&l.key.PublicKey)
	if err != nil {
		l.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// X509Entry returns the get-entries form of an X.509 entry for cert, with
// chain as its extra data.
func X509Entry(t testing.TB, cert *stdx509.Certificate, timestamp uint64, chain ...*stdx509.Certificate) ct.LeafEntry {
	t.Helper()
	leaf := ct.CreateX509MerkleTreeLeaf(ct.ASN1Cert{Data: cert.Raw}, timestamp)
	in, err := cttls.Marshal(*leaf)
	if err != nil {
		t.Fatal(err)
	}
	var cc ct.CertificateChain
	for _, c := range chain {
		cc.Entries = append(cc.Entries, ct.ASN1Cert{Data: c.Raw})
	}
	extra, err := cttls.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	return ct.LeafEntry{LeafInput: in, ExtraData: extra}
}

// PrecertEntry returns the get-entries form of a precertificate entry:
// tbs is the DER TBSCertificate (poison removed), issuer the issuing CA.
func PrecertEntry(t testing.TB, tbs []byte, issuer *stdx509.Certificate, precert []byte, timestamp uint64) ct.LeafEntry {
	t.Helper()
	leaf := ct.MerkleTreeLeaf{
		Version:  ct.V1,
		LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: timestamp,
			EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(issuer.RawSubjectPublicKeyInfo),
				TBSCertificate: tbs,
			},
		},
	}
	in, err := cttls.Marshal(leaf)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := cttls.Marshal(ct.PrecertChainEntry{
		PreCertificate:   ct.ASN1Cert{Data: precert},
		CertificateChain: []ct.ASN1Cert{{Data: issuer.Raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ct.LeafEntry{LeafInput: in, ExtraData: extra}
}

// AddCert appends an X.509 entry for cert and returns its index.
func (l *Log) AddCert(cert *stdx509.Certificate, chain ...*stdx509.Certificate) int64 {
	return l.AddEntry(X509Entry(l.t, cert, l.now(), chain...))
}

// AddEntry appends a raw entry and returns its index.
func (l *Log) AddEntry(e ct.LeafEntry) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaves = append(l.leaves, e)
	l.tree.AppendData(e.LeafInput)
	return int64(len(l.leaves) - 1)
}

// Size is the number of entries in the tree.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.leaves))
}

// Rewrite replaces the entry at index with e and rebuilds the tree: the
// history a monitor has already seen is changed, which a consistency proof
// must expose.
func (l *Log) Rewrite(index int64, e ct.LeafEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaves[index] = e
	l.rebuild()
}

// Truncate drops every entry from size on: the tree shrinks.
func (l *Log) Truncate(size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaves = l.leaves[:size]
	l.rebuild()
}

// SplitView makes get-entries serve e at index instead of the entry in the
// tree: the tree and its signed heads stay honest, the monitor is lied to.
func (l *Log) SplitView(index int64, e ct.LeafEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.served[index] = e
}

// BadSignatures makes get-sth sign with a key other than the published one.
func (l *Log) BadSignatures(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.badSig = on
}

// FailEntriesFrom makes get-entries requests that start at index or later
// fail with 429 Too Many Requests, as a busy public log does; -1 stops it.
func (l *Log) FailEntriesFrom(index int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failFrom = index
}

// CapEntries makes get-entries return at most n entries, as real logs do.
func (l *Log) CapEntries(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxBatch = n
}

// Stats returns the request counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// WaitStats blocks until cond holds for the request counters, checking
// after every request the log serves, or until ctx ends.
func (l *Log) WaitStats(ctx context.Context, cond func(Stats) bool) error {
	for {
		l.mu.Lock()
		if cond(l.stats) {
			l.mu.Unlock()
			return nil
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cttest: waiting for stats (now %+v): %w", l.Stats(), ctx.Err())
		}
	}
}

// statsChanged wakes WaitStats callers; l.mu must be held.
func (l *Log) statsChanged() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

func (l *Log) rebuild() {
	l.tree = testonly.New(rfc6962.DefaultHasher)
	for _, e := range l.leaves {
		l.tree.AppendData(e.LeafInput)
	}
}

// now returns strictly increasing millisecond timestamps.
func (l *Log) now() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := uint64(time.Now().UnixMilli())
	if ts <= l.ts {
		ts = l.ts + 1
	}
	l.ts = ts
	return ts
}

func (l *Log) getSTH(w http.ResponseWriter, _ *http.Request) {
	ts := l.now()
	l.mu.Lock()
	l.stats.GetSTH++
	l.statsChanged()
	sth := ct.SignedTreeHead{Version: ct.V1, TreeSize: l.tree.Size(), Timestamp: ts}
	copy(sth.SHA256RootHash[:], l.tree.Hash())
	key := l.key
	if l.badSig {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			l.t.Error(err)
		}
	}
	l.mu.Unlock()
	input, err := ct.SerializeSTHSignatureInput(sth)
	if err != nil {
		l.t.Error(err)
	}
	sig, err := cttls.CreateSignature(*key, cttls.SHA256, input) // takes the key by value
	if err != nil {
		l.t.Error(err)
	}
	sigBytes, err := cttls.Marshal(sig)
	if err != nil {
		l.t.Error(err)
	}
	writeJSON(w, ct.GetSTHResponse{TreeSize: sth.TreeSize, Timestamp: ts, SHA256RootHash: sth.SHA256RootHash[:], TreeHeadSignature: sigBytes})
}

func (l *Log) getEntries(w http.ResponseWriter, r *http.Request) {
	start, err1 := strconv.ParseInt(r.FormValue("start"), 10, 64)
	end, err2 := strconv.ParseInt(r.FormValue("end"), 10, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.statsChanged() // runs before the unlock
	l.stats.GetEntries++
	if err1 != nil || err2 != nil || start < 0 || end < start || start >= int64(len(l.leaves)) {
		http.Error(w, "bad range", http.StatusBadRequest)
		return
	}
	if l.failFrom >= 0 && start >= l.failFrom {
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	l.stats.LargestEntriesRequest = max(l.stats.LargestEntriesRequest, int(end-start+1))
	end = min(end, int64(len(l.leaves))-1)
	if l.maxBatch > 0 {
		end = min(end, start+int64(l.maxBatch)-1)
	}
	var resp ct.GetEntriesResponse
	for i := start; i <= end; i++ {
		e := l.leaves[i]
		if s, ok := l.served[i]; ok {
			e = s
		}
		resp.Entries = append(resp.Entries, e)
	}
	writeJSON(w, resp)
}

func (l *Log) getConsistency(w http.ResponseWriter, r *http.Request) {
	first, err1 := strconv.ParseUint(r.FormValue("first"), 10, 64)
	second, err2 := strconv.ParseUint(r.FormValue("second"), 10, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.statsChanged() // runs before the unlock
	l.stats.GetConsistency++
	if err1 != nil || err2 != nil || first > second || second > l.tree.Size() {
		http.Error(w, "bad sizes", http.StatusBadRequest)
		return
	}
	p, err := l.tree.ConsistencyProof(first, second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, ct.GetSTHConsistencyResponse{Consistency: p})
}

func (l *Log) getProofByHash(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.ParseUint(r.FormValue("tree_size"), 10, 64)
	var hash ct.SHA256Hash
	err2 := hash.FromBase64String(r.FormValue("hash"))
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.statsChanged() // runs before the unlock
	l.stats.GetProofByHash++
	if err != nil || err2 != nil || size > l.tree.Size() {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for i := uint64(0); i < size; i++ {
		if string(l.tree.LeafHash(i)) == string(hash[:]) {
			p, err := l.tree.InclusionProof(i, size)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			writeJSON(w, ct.GetProofByHashResponse{LeafIndex: int64(i), AuditPath: p})
			return
		}
	}
	http.Error(w, "not found", http.StatusNotFound)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
