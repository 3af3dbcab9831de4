package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/telemetry"
)

// ManagedCertificate is a server certificate the gateway obtains and renews
// itself instead of loading it from files: a tls.certificates[] entry with
// internal_ca (internalCASource). The acme entries do not use this seam:
// their acme.Manager obtains and renews them (acmeSource, acme.go).
//
// The gateway makes a source when its entry first appears in the config;
// the constructor obtains the first certificate before returning (the
// gateway never starts or reloads without one). The source is kept across
// reloads while the entry is unchanged (same managedKey: kind and every
// parameter), and stopped (Run's context ends) when the entry is removed
// or the gateway shuts down.
//
// A source renews on its own schedule, in Run, using the gateway's clock.
// When it has a new certificate it makes Certificate return it, then calls
// renewed: the gateway re-applies its TLS settings with it (main and admin
// listeners, OCSP staples, certificate-expiry metric and watch). New
// handshakes get the new certificate; open connections keep what they
// negotiated. While renewal fails, the source keeps the current
// certificate, retries with back-off, and says so (log and audit event).
type ManagedCertificate interface {
	// Certificate returns the certificate to serve now: the chain (leaf
	// first), its private key, and Leaf set. It is safe for concurrent
	// use, does not block, and never returns nil.
	Certificate() *tls.Certificate
	// Run keeps the certificate current until ctx ends, then returns.
	// After each renewal (Certificate returns the new certificate) it
	// calls renewed, which returns once the gateway serves it.
	Run(ctx context.Context, renewed func())
}

// managedUse is a tls.certificates[] entry whose certificate a
// ManagedCertificate supplies.
type managedUse struct {
	index int    // in the settings' Certificates and in the snapshot's certs (file and managed entries, in config order)
	key   string // managedKey
	src   ManagedCertificate
}

// managedRun is a running source.
type managedRun struct {
	src    ManagedCertificate
	cancel context.CancelFunc
	done   chan struct{} // closed when its Run has returned
}

// managedKey identifies a managed entry by its kind and every parameter:
// a reload keeps the source of an entry whose key is unchanged. ok is
// false for an entry with certificate files.
func managedKey(cc config.Certificate) (key string, ok bool) {
	switch {
	case cc.InternalCA != nil:
		return cc.InternalCA.Key(), true
	}
	return "", false
}

// managedSource returns the source of a managed entry: the one already
// used by this snapshot or running, else a new one (which obtains its
// first certificate now). Called with reloadMu held, or from New.
func (g *Gateway) managedSource(c *config.Config, rt *snapshot, key string, cc config.Certificate) (ManagedCertificate, error) {
	for _, m := range rt.managed {
		if m.key == key {
			return m.src, nil
		}
	}
	if r, ok := g.managed[key]; ok {
		return r.src, nil
	}
	switch {
	case cc.InternalCA != nil:
		return g.newInternalCASource(c, cc.InternalCA)
	}
	return nil, errors.New("not a managed certificate")
}

// syncManaged starts the sources rt uses that are not running yet and stops
// the running ones it no longer uses. Called with reloadMu held, or from
// New, when rt goes live.
func (g *Gateway) syncManaged(rt *snapshot) {
	used := map[string]bool{}
	for _, m := range rt.managed {
		used[m.key] = true
		if _, ok := g.managed[m.key]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(g.ctx)
		r := &managedRun{src: m.src, cancel: cancel, done: make(chan struct{})}
		g.managed[m.key] = r
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer close(r.done)
			m.src.Run(ctx, func() { g.managedRenewed(m.src) })
		}()
	}
	for key, r := range g.managed {
		if !used[key] {
			r.cancel()
			delete(g.managed, key)
		}
	}
}

// managedRenewed serves src's new certificate: it re-applies the TLS
// settings in force with it, as a reload would (serialised with Reload),
// and refreshes the certificate-expiry metric and watch.
func (g *Gateway) managedRenewed(src ManagedCertificate) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.stopping {
		return
	}
	rt := g.rt.Load()
	st := rt.tlsSettings
	st.Certificates = slices.Clone(st.Certificates)
	certs := slices.Clone(rt.certs)
	used := false
	for _, m := range rt.managed {
		if m.src == src {
			used = true
			cur := src.Certificate()
			st.Certificates[m.index] = *cur
			certs[m.index] = telemetry.CertInfoOf("server", "", cur.Leaf)
		}
	}
	if !used { // removed by a reload while it renewed
		return
	}
	if err := g.applyTLS(rt.cfg, st, rt); err != nil {
		g.log.Error("renewed certificate not applied; the previous one keeps serving", "err", err)
		g.audit.Emit(audit.Event{Type: "certificate_renewal_failed", Severity: audit.Critical, Reason: "not_applied", Detail: err.Error()})
		return
	}
	// Only ever touched with reloadMu held.
	rt.tlsSettings, rt.certs = st, certs
	g.publishCerts(rt)
}
