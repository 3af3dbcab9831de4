package tlsserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultStapleCheck is how often Stapling.Run asks its stapler whether a
// response is due; the stapler decides when to fetch.
const DefaultStapleCheck = time.Minute

// OCSPStapler supplies OCSP responses for the server's own certificates.
// *revocation.Stapler implements it.
type OCSPStapler interface {
	// Staple returns the verified, current, good response to staple for
	// cert; nil and no error when cert has no OCSP responder; nil and an
	// error when nothing may be stapled (revoked, responder down and no
	// current response).
	Staple(ctx context.Context, cert *tls.Certificate) ([]byte, error)
}

// StapleCertificates returns a copy of certs in which each certificate's
// OCSPStaple is st's current response for it. A certificate st has no
// response for keeps no staple; the reasons are returned, joined, for the
// log. The returned certificates are usable either way.
func StapleCertificates(ctx context.Context, st OCSPStapler, certs []tls.Certificate) ([]tls.Certificate, error) {
	out := slices.Clone(certs)
	var errs []error
	for i := range out {
		staple, err := st.Staple(ctx, &out[i])
		switch {
		case err != nil:
			out[i].OCSPStaple = nil
			errs = append(errs, fmt.Errorf("certificate %d: %w", i, err))
		case staple != nil:
			out[i].OCSPStaple = staple
		}
	}
	return out, errors.Join(errs...)
}

// Stapling keeps the OCSP staples of a Server's certificates current. Use
// its Update in place of Server.Update: it staples the certificates before
// applying the settings. Refresh (called by Run every DefaultStapleCheck)
// re-staples them and updates the Server when a staple changed: a fresh
// response, or one withdrawn because the certificate was revoked.
type Stapling struct {
	srv *Server
	st  OCSPStapler
	log *slog.Logger

	mu       sync.Mutex // serialises Update and Refresh
	settings *Settings  // last applied, unstapled; nil before the first Update
	staples  [][]byte   // the staples applied with it
}

// NewStapling returns a Stapling for srv; log nil means slog.Default().
func NewStapling(srv *Server, st OCSPStapler, log *slog.Logger) *Stapling {
	if log == nil {
		log = slog.Default()
	}
	return &Stapling{srv: srv, st: st, log: log}
}

// Update staples s's certificates and applies s to the Server. A
// certificate that cannot be stapled is served without a staple (and the
// reason logged); only an invalid s is an error, and then nothing changes.
func (x *Stapling) Update(ctx context.Context, s Settings) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	s.Certificates = slices.Clone(s.Certificates)
	return x.apply(ctx, s, true)
}

// Refresh re-staples the certificates of the last settings given to
// Update, and updates the Server if a staple changed.
func (x *Stapling) Refresh(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.settings == nil {
		return nil
	}
	return x.apply(ctx, *x.settings, false)
}

func (x *Stapling) apply(ctx context.Context, s Settings, force bool) error {
	certs, err := StapleCertificates(ctx, x.st, s.Certificates)
	if err != nil {
		x.log.Warn("tls: serving without OCSP staple", "err", err)
	}
	staples := make([][]byte, len(certs))
	for i := range certs {
		staples[i] = certs[i].OCSPStaple
	}
	if !force && slices.EqualFunc(staples, x.staples, bytes.Equal) {
		return nil
	}
	stapled := s
	stapled.Certificates = certs
	if err := x.srv.Update(stapled); err != nil {
		return err
	}
	x.settings, x.staples = &s, staples
	return nil
}

// Run calls Refresh every interval (DefaultStapleCheck if not positive)
// until ctx ends.
func (x *Stapling) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultStapleCheck
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := x.Refresh(ctx); err != nil {
				x.log.Error("tls: applying refreshed OCSP staples failed", "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// Forget drops the settings Stapling holds, so that Refresh does nothing
// until the next Update: for settings applied with stapling turned off.
func (x *Stapling) Forget() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.settings, x.staples = nil, nil
}
