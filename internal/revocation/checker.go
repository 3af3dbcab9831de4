package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardengw/warden/internal/policy"
)

// Checker checks verified certificate chains against CRLs and OCSP. It is
// safe for concurrent use.
type Checker struct {
	e       *env
	issuers []*x509.Certificate // verify CRL files

	filesMu  sync.Mutex                             // serialises CRL file reloads
	fileCRLs map[string][]*crlIndex                 // last good CRLs per file; guarded by filesMu
	files    atomic.Pointer[map[string][]*crlIndex] // the same, by issuer DER subject

	dpMu     sync.RWMutex
	dps      map[string]*dpEntry // by URL and issuer key
	dpFlight flight[struct{}]

	ocsp       *ocspCache
	ocspFlight flight[*ocspResult]
	keys       issuerKeys

	startOnce sync.Once
	closeOnce sync.Once
	stop      context.CancelFunc // ends the refresh loop's context; set by Start
	stopMu    sync.Mutex
	done      chan struct{}
}

var _ policy.RevocationChecker = (*Checker)(nil)

// dpEntry is one CRL distribution point of one issuer.
type dpEntry struct {
	key    string
	url    string
	issuer *x509.Certificate
	state  atomic.Pointer[dpState]
}

// dpState is a distribution point's last good CRL and last fetch outcome.
type dpState struct {
	crl     *crlIndex // last good CRL; nil if none yet
	err     error     // last fetch's failure; nil if it succeeded
	attempt time.Time // when the last fetch ended
}

// New returns a Checker. issuers are the CAs whose CRL files are accepted
// (the trust bundles' roots and intermediates); each file must be signed
// by one of them. CRLs from distribution points and OCSP responses are
// verified against the issuer in the chain being checked. New loads the
// CRL files and fails if any is unreadable or not signed by an issuer; it
// does no network I/O. Call Start to refresh CRLs in the background.
func New(cfg Config, issuers []*x509.Certificate) (*Checker, error) {
	e, err := newEnv(cfg)
	if err != nil {
		return nil, err
	}
	if len(e.cfg.CRLFiles) > 0 && len(issuers) == 0 {
		return nil, errors.New("revocation: CRL files need the issuers that sign them")
	}
	c := &Checker{
		e:        e,
		issuers:  slices.Clone(issuers),
		fileCRLs: make(map[string][]*crlIndex),
		dps:      make(map[string]*dpEntry),
		ocsp:     newOCSPCache(maxOCSPEntries),
		done:     make(chan struct{}),
	}
	var errs []error
	for _, p := range e.cfg.CRLFiles {
		idx, err := loadCRLFile(p, c.issuers, e.cfg.MaxCRLBytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("revocation: CRL file %s: %w", p, err))
		}
		c.fileCRLs[p] = idx
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.publishFiles()
	return c, nil
}

// Start refreshes CRL files and the distribution points seen so far every
// CRLRefresh, until ctx ends or Close is called. Calls after the first do
// nothing.
func (c *Checker) Start(ctx context.Context) {
	c.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(ctx)
		c.stopMu.Lock()
		c.stop = cancel
		c.stopMu.Unlock()
		go c.loop(ctx)
	})
}

func (c *Checker) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.e.cfg.CRLRefresh)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := c.Refresh(ctx); err != nil {
				c.e.cfg.Log.Warn("revocation: refresh incomplete; last good CRLs kept", "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// Close stops the background refresh and waits for it to end.
func (c *Checker) Close() error {
	c.startOnce.Do(func() { close(c.done) }) // never started: nothing to wait for
	c.closeOnce.Do(func() {
		c.stopMu.Lock()
		defer c.stopMu.Unlock()
		if c.stop != nil {
			c.stop()
		}
	})
	<-c.done
	return nil
}

// Refresh re-reads the CRL files and re-fetches the CRL of every
// distribution point seen so far, now. A failure keeps the last good CRL
// (which the stale rule retires at its nextUpdate+StaleGrace), is counted
// and recorded as an audit event, and is returned, joined with the others.
func (c *Checker) Refresh(ctx context.Context) error {
	errs := []error{c.reloadFiles()}
	c.dpMu.RLock()
	entries := slices.Collect(maps.Values(c.dps))
	c.dpMu.RUnlock()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, 4) // parallel fetches
	)
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, _ = c.dpFlight.do(ctx, e.key, func(ctx context.Context) struct{} { c.fetchDP(ctx, e); return struct{}{} })
			if st := e.state.Load(); st != nil && st.err != nil {
				mu.Lock()
				errs = append(errs, st.err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	c.ocsp.sweep(c.e.now())
	return errors.Join(errs...)
}

// CheckChain implements policy.RevocationChecker. It checks every
// certificate of chain (leaf first) but the last, the trust anchor, against
// its issuer, the next one. A certificate revoked anywhere in the chain
// gives a *RevokedError; otherwise, one whose status no source could
// decide gives an *UnavailableError; otherwise nil. The errors are shared
// with other callers: do not modify them.
func (c *Checker) CheckChain(ctx context.Context, chain []*x509.Certificate) error {
	var firstUnavailable error
	for i := 0; i+1 < len(chain); i++ {
		err := c.checkCert(ctx, chain[i], chain[i+1])
		if err != nil && isRevoked(err) {
			return err
		}
		if firstUnavailable == nil {
			firstUnavailable = err
		}
	}
	return firstUnavailable
}

// checkCert decides cert's status from its CRLs and its OCSP responder:
// revoked by either source wins; otherwise good by either (a fresh CRL, a
// good OCSP response) is good; otherwise the status is unavailable.
func (c *Checker) checkCert(ctx context.Context, cert, issuer *x509.Certificate) error {
	m := c.e.m
	ik := c.keys.get(issuer)
	crlUsed, crlErr := c.checkCRL(ctx, cert, issuer, ik)
	if crlUsed {
		count(m.crlGood, m.crlRevoked, m.crlUnavailable, crlErr)
		if crlErr != nil && isRevoked(crlErr) {
			return crlErr
		}
	}
	ocspUsed, ocspErr := c.checkOCSP(ctx, cert, issuer, ik)
	if ocspUsed {
		count(m.ocspGood, m.ocspRevoked, m.ocspUnavail, ocspErr)
	}
	switch {
	case ocspErr != nil && isRevoked(ocspErr):
		return ocspErr
	case crlUsed && crlErr == nil, ocspUsed && ocspErr == nil:
		return nil
	case crlUsed && ocspUsed: // report the live source's reason, keep both causes
		return &UnavailableError{Reason: Reason(ocspErr), Cause: errors.Join(ocspErr, crlErr)}
	case ocspUsed:
		return ocspErr
	case crlUsed:
		return crlErr
	case cert.IsCA:
		// An intermediate that names no CRL or OCSP responder, and for
		// which no CRL file applies, is treated as not revocable (common in
		// private PKIs); its leaves are still checked, and a CRL file from
		// its issuer would be used if configured.
		return nil
	default:
		return unavailable(ReasonNoSource, "certificate %q serial %s: no CRL or OCSP responder applies", cert.Subject, cert.SerialNumber.Text(16))
	}
}

// checkCRL consults the CRL files, then the distribution points (only when
// no file CRL decided). used is false when no CRL applies to cert.
func (c *Checker) checkCRL(ctx context.Context, cert, issuer *x509.Certificate, ik [32]byte) (used bool, err error) {
	grace := c.e.cfg.StaleGrace
	for _, idx := range (*c.files.Load())[string(issuer.RawSubject)] {
		if idx.issuerKey != ik || idx.scope.covers(cert) != nil {
			continue
		}
		used = true
		if err = idx.status(cert, c.e.now(), grace); err == nil || isRevoked(err) {
			return true, err
		}
	}
	if c.e.cfg.DisableDistributionPoints {
		return used, err
	}
	for _, u := range cert.CRLDistributionPoints {
		if !isHTTP(u) {
			continue
		}
		used = true
		idx, dpErr := c.dpCRL(ctx, u, issuer, ik)
		if dpErr == nil {
			dpErr = idx.status(cert, c.e.now(), grace)
		}
		if dpErr == nil || isRevoked(dpErr) {
			return true, dpErr
		}
		if err == nil {
			err = dpErr
		}
	}
	return used, err
}

// dpCRL returns the last good CRL of the distribution point url of issuer,
// fetching it on first sight, or when it is no longer fresh and the last
// attempt is older than failureTTL. Concurrent callers share one fetch.
func (c *Checker) dpCRL(ctx context.Context, url string, issuer *x509.Certificate, ik [32]byte) (*crlIndex, error) {
	e := c.dpEntry(url, issuer, ik)
	st, now := e.state.Load(), c.e.now()
	if st == nil || !st.crl.fresh(now, c.e.cfg.StaleGrace) && now.Sub(st.attempt) >= failureTTL {
		_, err := c.dpFlight.do(ctx, e.key, func(ctx context.Context) struct{} { c.fetchDP(ctx, e); return struct{}{} })
		if err != nil {
			return nil, unavailable(ReasonCRLUnreachable, "%s: %w", url, err)
		}
		st = e.state.Load()
	}
	if st.crl != nil {
		return st.crl, nil
	}
	return nil, st.err
}

func (c *Checker) dpEntry(url string, issuer *x509.Certificate, ik [32]byte) *dpEntry {
	key := url + "\x00" + string(ik[:])
	c.dpMu.RLock()
	e := c.dps[key]
	c.dpMu.RUnlock()
	if e != nil {
		return e
	}
	c.dpMu.Lock()
	defer c.dpMu.Unlock()
	if e = c.dps[key]; e != nil {
		return e
	}
	for k := range c.dps { // bounded: drop an arbitrary one
		if len(c.dps) < maxDPEntries {
			break
		}
		delete(c.dps, k)
	}
	e = &dpEntry{key: key, url: url, issuer: issuer}
	c.dps[key] = e
	return e
}

// fetchDP fetches and verifies e's CRL. A failure, or a CRL older than the
// one held (a replay), keeps the last good CRL.
func (c *Checker) fetchDP(ctx context.Context, e *dpEntry) {
	old := e.state.Load()
	der, err := c.e.fetch(ctx, e.url, nil, c.e.cfg.MaxCRLBytes, ReasonCRLUnreachable, ReasonCRLTooLarge)
	var idx *crlIndex
	if err == nil {
		idx, err = parseCRL(der, e.issuer, e.url)
	}
	if err == nil && old != nil && old.crl != nil && idx.thisUpdate.Before(old.crl.thisUpdate) {
		err = unavailable(ReasonCRLRollback, "CRL %s: thisUpdate %s is older than the held CRL's %s",
			e.url, idx.thisUpdate.UTC().Format(time.RFC3339), old.crl.thisUpdate.UTC().Format(time.RFC3339))
	}
	now := c.e.now()
	if err == nil {
		e.state.Store(&dpState{crl: idx, attempt: now})
		return
	}
	st := &dpState{err: err, attempt: now}
	if old != nil {
		st.crl = old.crl
	}
	e.state.Store(st)
	c.e.fetchFailed(sourceCRL, e.url, err, map[string]any{"issuer": e.issuer.Subject.String(), "kept_last_good": st.crl != nil})
}

// checkOCSP returns the cached OCSP answer for cert, or asks its
// responder (one request for all concurrent callers) and caches the
// answer until min(nextUpdate, now+CRLRefresh); a failure is cached for
// failureTTL. used is false when OCSP is off or cert names no responder.
func (c *Checker) checkOCSP(ctx context.Context, cert, issuer *x509.Certificate, ik [32]byte) (used bool, err error) {
	if c.e.cfg.DisableOCSP || !hasHTTP(cert.OCSPServer) {
		return false, nil
	}
	key := ocspKey(ik, cert.SerialNumber)
	if r, ok := c.ocsp.get(key, c.e.now()); ok {
		c.e.m.ocspHit.Inc()
		return true, r.err
	}
	c.e.m.ocspMiss.Inc()
	r, err := c.ocspFlight.do(ctx, key.String(), func(ctx context.Context) *ocspResult {
		return c.fetchOCSP(ctx, key, cert, issuer)
	})
	if err != nil {
		return true, unavailable(ReasonOCSPUnreachable, "%w", err)
	}
	return true, r.err
}

func (c *Checker) fetchOCSP(ctx context.Context, key cacheKey, cert, issuer *x509.Certificate) *ocspResult {
	refresh := c.e.cfg.CRLRefresh
	resp, _, err := c.e.queryOCSP(ctx, sourceOCSP, cert.OCSPServer, cert, issuer)
	now := c.e.now()
	r := &ocspResult{err: err, expires: now.Add(min(failureTTL, refresh))}
	if err == nil {
		if r.err = statusOf(resp, cert.SerialNumber); r.err == nil || isRevoked(r.err) {
			r.expires = now.Add(refresh)
			if end := validUntil(resp, refresh); end.Before(r.expires) {
				r.expires = end
			}
		} else { // a verified "unknown": the CA does not know a certificate that chains to it
			c.e.fetchFailed(sourceOCSP, cert.OCSPServer[0], r.err, map[string]any{"serial": cert.SerialNumber.Text(16), "issuer": issuer.Subject.String()})
		}
	}
	c.ocsp.put(key, r, now)
	return r
}

func (c *Checker) reloadFiles() error {
	if len(c.e.cfg.CRLFiles) == 0 {
		return nil
	}
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	var errs []error
	for _, p := range c.e.cfg.CRLFiles {
		idx, err := loadCRLFile(p, c.issuers, c.e.cfg.MaxCRLBytes)
		if err != nil {
			c.e.fetchFailed(sourceCRLFile, p, err, map[string]any{"kept_last_good": true})
			errs = append(errs, fmt.Errorf("CRL file %s: %w", p, err))
			continue
		}
		c.fileCRLs[p] = idx
	}
	c.publishFiles()
	return errors.Join(errs...)
}

// publishFiles indexes the file CRLs by issuer for lookups. filesMu held
// (or not yet shared).
func (c *Checker) publishFiles() {
	m := make(map[string][]*crlIndex)
	for _, p := range c.e.cfg.CRLFiles {
		for _, idx := range c.fileCRLs[p] {
			m[string(idx.issuerName)] = append(m[string(idx.issuerName)], idx)
		}
	}
	c.files.Store(&m)
}
