package ct

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki"
)

// Audit event types raised by the monitor. They double as Error reasons.
const (
	// EventUnknownKey (critical): a certificate for a watched domain whose
	// key is not in Config.KnownKeys — a possible mis-issuance.
	EventUnknownKey = "ct_unknown_key_certificate"
	// EventKnownCertificate (info): a certificate for a watched domain with
	// a known key; kept as an issuance record.
	EventKnownCertificate = "ct_known_certificate"
	// EventInconsistent (critical): the log's new tree does not extend the
	// last verified one (failed consistency proof, different root at the
	// same size, or a tree that shrank). State is not advanced.
	EventInconsistent = "ct_log_inconsistent"
	// EventBadSignature (critical): a signed tree head that does not verify
	// under the configured log key. State is not advanced.
	EventBadSignature = "ct_sth_bad_signature"
	// EventEntriesMismatch (critical): the entries the log served do not hash
	// to its signed root (a split view that may hide a certificate). State is
	// not advanced.
	EventEntriesMismatch = "ct_entries_mismatch"
	// EventPollFailed (warning): the log could not be polled (network,
	// malformed response); it is retried at the next round.
	EventPollFailed = "ct_poll_failed"
	// EventUnparsedEntries (warning): entries of a poll whose certificate
	// could not be parsed, so their names were not checked.
	EventUnparsedEntries = "ct_entries_unparsed"
)

// Error is the outcome of polling one log, when not a success. Reason is one
// of EventBadSignature, EventInconsistent, EventEntriesMismatch or
// EventPollFailed.
type Error struct {
	Log    string // the log's name
	Reason string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("ct: %s: %s: %v", e.Log, e.Reason, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Monitor polls certificate-transparency logs for certificates naming the
// watched domains. It is safe for concurrent use; polls are serialized.
type Monitor struct {
	s         *settings
	stateFile string
	backfill  bool
	audit     *audit.Logger
	now       func() time.Time
	clients   map[string]*client.LogClient

	mu    sync.Mutex // serializes polls; guards state and early
	state map[string]*logState
	// early holds, per log, the indices of unknown-key certificates already
	// reported unverified from a poll that could not finish, so that a log
	// failing every round repeats none of them.
	early map[string]map[uint64]bool

	statusMu sync.Mutex // guards status; never held across network calls
	status   map[string]LogStatus
	started  time.Time
}

// LogStatus is what Status reports of one log.
type LogStatus struct {
	Name, URL string
	// TreeSize is the size of the last verified tree head; 0 if none yet.
	TreeSize uint64
	// LastSuccess is when the log was last polled, verified and scanned
	// without error (from the state file at first); zero if never.
	LastSuccess time.Time
}

var (
	hasher = rfc6962.DefaultHasher
	ranges = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// New validates cfg, loads the state file and returns a Monitor. It makes
// no network calls.
func New(cfg Config) (*Monitor, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	st, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	limited := *hc
	limited.Transport = limitTransport{base: hc.Transport}
	m := &Monitor{
		s: s, stateFile: cfg.StateFile, backfill: cfg.Backfill, audit: cfg.Audit, now: cfg.Now,
		clients: map[string]*client.LogClient{}, state: st,
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.started = m.now()
	m.status = map[string]LogStatus{}
	for _, l := range s.logs {
		ls := LogStatus{Name: l.name, URL: l.url}
		if prev := st[l.url]; prev != nil {
			ls.TreeSize, ls.LastSuccess = prev.TreeSize, prev.VerifiedAt
		}
		m.status[l.url] = ls
	}
	for _, l := range s.logs {
		c, err := client.New(l.url, &limited, jsonclient.Options{UserAgent: "warden-ct-monitor"})
		if err != nil {
			return nil, fmt.Errorf("ct: %s: %w", l.name, err)
		}
		m.clients[l.url] = c
	}
	return m, nil
}

// Interval is the validated poll interval.
func (m *Monitor) Interval() time.Duration { return m.s.interval }

// Run polls at once and then every interval until ctx ends. Failures are
// reported as audit events and retried at the next round.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.s.interval)
	defer t.Stop()
	m.RunTicks(ctx, t.C)
}

// RunTicks polls at once and then at every tick until ctx ends (tests drive
// it with their own channel). A tick is taken only between polls: sending
// on an unbuffered ticks channel returns once the previous poll is done.
func (m *Monitor) RunTicks(ctx context.Context, ticks <-chan time.Time) {
	for {
		_ = m.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

// Started is when the Monitor was made (by its clock).
func (m *Monitor) Started() time.Time { return m.started }

// Status reports each log's last verified tree size and last successful
// poll, in the configured order. It does not wait for a poll in progress.
func (m *Monitor) Status() []LogStatus {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	out := make([]LogStatus, 0, len(m.s.logs))
	for _, l := range m.s.logs {
		out = append(out, m.status[l.url])
	}
	return out
}

// succeeded records a poll of l that verified and scanned everything.
func (m *Monitor) succeeded(l logSpec) {
	ls := LogStatus{Name: l.name, URL: l.url, LastSuccess: m.now().UTC()}
	if st := m.state[l.url]; st != nil {
		ls.TreeSize = st.TreeSize
	}
	m.statusMu.Lock()
	m.status[l.url] = ls
	m.statusMu.Unlock()
}

// Poll runs one round over every log. It returns nil when every log was
// verified and scanned, or the *Error of each log that was not (joined);
// each is also an audit event.
func (m *Monitor) Poll(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, l := range m.s.logs {
		if err := m.pollLog(ctx, l); err == nil {
			m.succeeded(l)
		} else {
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{Log: l.name, Reason: EventPollFailed, Err: err}
			}
			if e.Reason == EventPollFailed && ctx.Err() == nil { // not when stopped mid-poll
				m.emit(l, audit.Warning, EventPollFailed, e.Err.Error(), nil)
			}
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// match is a certificate for a watched domain found in a log.
type match struct {
	index  uint64
	cert   *Certificate
	domain string
}

func (m *Monitor) pollLog(ctx context.Context, l logSpec) error {
	c := m.clients[l.url]
	sth, err := c.GetSTH(ctx)
	if err != nil {
		return err
	}
	if err := l.verifier.VerifySTHSignature(*sth); err != nil {
		m.emit(l, audit.Critical, EventBadSignature, "signed tree head does not verify under the configured log key",
			map[string]any{"tree_size": sth.TreeSize, "root_hash": hex.EncodeToString(sth.SHA256RootHash[:]), "timestamp": sth.Timestamp})
		return &Error{Log: l.name, Reason: EventBadSignature, Err: err}
	}
	prev := m.state[l.url]
	if prev != nil && !bytes.Equal(prev.KeyID, l.keyID[:]) {
		return fmt.Errorf("state was verified under another log key; remove %s from the state file to start over", l.url)
	}
	if prev == nil {
		if !m.backfill {
			return m.bootstrap(ctx, l, sth)
		}
		prev = &logState{RootHash: hasher.EmptyRoot()}
	}
	newRoot := sth.SHA256RootHash[:]
	switch {
	case sth.TreeSize < prev.TreeSize:
		return m.inconsistent(l, prev, sth, "the tree shrank")
	case sth.TreeSize == prev.TreeSize:
		if !bytes.Equal(prev.RootHash, newRoot) {
			return m.inconsistent(l, prev, sth, "a different root for the same tree size")
		}
		return nil
	}
	if prev.TreeSize > 0 {
		p, err := c.GetSTHConsistency(ctx, prev.TreeSize, sth.TreeSize)
		if err != nil {
			return err
		}
		if err := proof.VerifyConsistency(hasher, prev.TreeSize, sth.TreeSize, p, prev.RootHash, newRoot); err != nil {
			return m.inconsistent(l, prev, sth, err.Error())
		}
	}

	// Fetch the new entries, hashing each into the compact range of the
	// verified tree so that the result must equal the new signed root.
	rng, err := ranges.NewRange(0, prev.TreeSize, prev.Range)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	var (
		found    []match
		unparsed []uint64
		nBad     int
	)
	for start := prev.TreeSize; start < sth.TreeSize; {
		end := min(start+uint64(m.s.batch), sth.TreeSize) - 1
		resp, err := c.GetRawEntries(ctx, int64(start), int64(end))
		if err != nil {
			// The tree cannot be verified this round, but a rogue
			// certificate already seen must not wait for a log that
			// keeps failing: report it now, unverified, once.
			m.reportEarly(l, found)
			return err
		}
		n := uint64(len(resp.Entries))
		if n == 0 || n > end-start+1 {
			return fmt.Errorf("get-entries %d-%d returned %d entries", start, end, n)
		}
		for i, e := range resp.Entries {
			idx := start + uint64(i)
			if err := rng.Append(hasher.HashLeaf(e.LeafInput), nil); err != nil {
				return err
			}
			cert, err := ParseEntry(e.LeafInput, e.ExtraData)
			if err != nil {
				nBad++
				if len(unparsed) < 10 {
					unparsed = append(unparsed, idx)
				}
				continue
			}
			for _, name := range cert.Names() {
				if d := matchDomain(m.s.domains, name); d != "" {
					found = append(found, match{index: idx, cert: cert, domain: d})
					break
				}
			}
		}
		start += n
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return err
	}
	verified := bytes.Equal(root, newRoot)
	if nBad > 0 {
		m.emit(l, audit.Warning, EventUnparsedEntries, fmt.Sprintf("%d entries could not be parsed", nBad),
			map[string]any{"count": nBad, "indices": unparsed})
	}
	for _, f := range found {
		if verified && m.early[l.name][f.index] {
			delete(m.early[l.name], f.index)
			if !m.known(f.cert.Pin) {
				continue // reported when first seen
			}
		}
		m.report(l, f, verified)
	}
	if !verified {
		m.emit(l, audit.Critical, EventEntriesMismatch, "the entries served do not hash to the signed root",
			map[string]any{"old_size": prev.TreeSize, "new_size": sth.TreeSize,
				"root_hash": hex.EncodeToString(newRoot), "computed_root": hex.EncodeToString(root)})
		return &Error{Log: l.name, Reason: EventEntriesMismatch, Err: errors.New("entries do not match the signed tree head")}
	}
	return m.advance(l, sth, rng)
}

// bootstrap starts watching a log at its current head without scanning its
// history. The compact range of the head's tree is obtained from the
// inclusion proof of its last entry, whose siblings are exactly that range.
func (m *Monitor) bootstrap(ctx context.Context, l logSpec, sth *ctgo.SignedTreeHead) error {
	if sth.TreeSize == 0 {
		return m.advance(l, sth, ranges.NewEmptyRange(0))
	}
	c := m.clients[l.url]
	last := sth.TreeSize - 1
	resp, err := c.GetRawEntries(ctx, int64(last), int64(last))
	if err != nil {
		return err
	}
	if len(resp.Entries) != 1 {
		return fmt.Errorf("get-entries %d-%d returned %d entries", last, last, len(resp.Entries))
	}
	leafHash := hasher.HashLeaf(resp.Entries[0].LeafInput)
	p, err := c.GetProofByHash(ctx, leafHash, sth.TreeSize)
	if err != nil {
		return err
	}
	if p.LeafIndex != int64(last) {
		return fmt.Errorf("cannot bootstrap: the last entry is a duplicate of entry %d; retry when the log grows", p.LeafIndex)
	}
	if err := proof.VerifyInclusion(hasher, last, sth.TreeSize, leafHash, p.AuditPath, sth.SHA256RootHash[:]); err != nil {
		m.emit(l, audit.Critical, EventEntriesMismatch, "the last entry and its inclusion proof do not hash to the signed root",
			map[string]any{"tree_size": sth.TreeSize, "root_hash": hex.EncodeToString(sth.SHA256RootHash[:])})
		return &Error{Log: l.name, Reason: EventEntriesMismatch, Err: err}
	}
	hashes := slices.Clone(p.AuditPath)
	slices.Reverse(hashes)
	rng, err := ranges.NewRange(0, last, hashes)
	if err != nil {
		return err
	}
	if err := rng.Append(leafHash, nil); err != nil {
		return err
	}
	return m.advance(l, sth, rng)
}

// advance records sth as the log's last verified head and persists it.
func (m *Monitor) advance(l logSpec, sth *ctgo.SignedTreeHead, rng *compact.Range) error {
	next := &logState{
		TreeSize:   sth.TreeSize,
		Timestamp:  sth.Timestamp,
		RootHash:   slices.Clone(sth.SHA256RootHash[:]),
		Range:      rng.Hashes(),
		KeyID:      slices.Clone(l.keyID[:]),
		VerifiedAt: m.now().UTC(),
	}
	old := m.state[l.url]
	m.state[l.url] = next
	if err := saveState(m.stateFile, m.state); err != nil {
		if old == nil {
			delete(m.state, l.url)
		} else {
			m.state[l.url] = old
		}
		return err
	}
	return nil
}

func (m *Monitor) inconsistent(l logSpec, prev *logState, sth *ctgo.SignedTreeHead, why string) error {
	m.emit(l, audit.Critical, EventInconsistent, "the log's new tree is inconsistent with the verified one: "+why,
		map[string]any{
			"old_size": prev.TreeSize, "old_root": hex.EncodeToString(prev.RootHash),
			"new_size": sth.TreeSize, "new_root": hex.EncodeToString(sth.SHA256RootHash[:]),
		})
	return &Error{Log: l.name, Reason: EventInconsistent, Err: errors.New(why)}
}

// reportEarly reports, unverified, the unknown-key certificates of a poll
// that could not finish, each once; m.mu is held.
func (m *Monitor) reportEarly(l logSpec, found []match) {
	for _, f := range found {
		if m.known(f.cert.Pin) || m.early[l.name][f.index] {
			continue
		}
		if m.early == nil {
			m.early = map[string]map[uint64]bool{}
		}
		if m.early[l.name] == nil {
			m.early[l.name] = map[uint64]bool{}
		}
		m.early[l.name][f.index] = true
		m.report(l, f, false)
	}
}

// known reports whether a key is the operator's.
func (m *Monitor) known(p pki.Pin) bool {
	return m.s.known.Contains(p) || m.s.isKnown != nil && m.s.isKnown(p)
}

// report raises the event for a certificate of a watched domain.
func (m *Monitor) report(l logSpec, f match, verified bool) {
	c := f.cert
	fields := map[string]any{
		"index": f.index, "domain": f.domain, "subject": c.Subject, "sans": c.DNSNames,
		"issuer": c.Issuer, "serial": c.Serial, "pin": c.Pin.String(), "precert": c.Precert,
		"not_before": c.NotBefore, "not_after": c.NotAfter, "logged_at": c.Timestamp,
		"verified": verified,
	}
	if m.known(c.Pin) {
		m.emit(l, audit.Info, EventKnownCertificate, "certificate for "+f.domain+" with a known key", fields)
		return
	}
	m.emit(l, audit.Critical, EventUnknownKey, "certificate for "+f.domain+" with a key not in the known set", fields)
}

func (m *Monitor) emit(l logSpec, sev, typ, detail string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["log"] = l.name
	fields["log_url"] = l.url
	m.audit.Emit(audit.Event{Time: m.now().UTC(), Type: typ, Severity: sev, Reason: typ, Detail: detail, Fields: fields})
}

// limitTransport caps response bodies at MaxResponseBytes: a log must not
// be able to exhaust the monitor's memory.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxResponseBytes}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("ct: response larger than %d bytes", MaxResponseBytes)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
