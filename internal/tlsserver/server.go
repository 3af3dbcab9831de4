package tlsserver

import (
	"cmp"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Settings is the TLS policy of a listener. The zero value of each field
// means its default (see defaults.go); Certificates is required.
type Settings struct {
	// Profile selects the protocol versions; empty means DefaultProfile.
	Profile Profile
	// CipherSuites lists the TLS 1.2 suites, each one CipherSuiteByName
	// accepts; empty means DefaultCipherSuites. Must be empty for Modern.
	CipherSuites []uint16
	// Curves lists the key exchanges, each one CurveByName accepts; empty
	// means DefaultCurves.
	Curves []tls.CurveID
	// Certificates are chosen per ClientHello: the first that fits the
	// server name (SNI) and the client's algorithms, else the first one.
	Certificates []tls.Certificate
	// ClientAuth is NoClientCert, RequestClientCert, VerifyClientCertIfGiven
	// or RequireAndVerifyClientCert. RequestClientCert accepts any client
	// certificate unverified (the route's mtls policy verifies it);
	// RequireAnyClientCert is refused.
	ClientAuth tls.ClientAuthType
	// ClientCAs verifies client certificates; required when ClientAuth
	// verifies them.
	ClientCAs *x509.CertPool
	// NextProtos lists the ALPN protocols; empty means DefaultNextProtos.
	NextProtos []string
	// TicketRotation is the session-ticket key rotation period; zero means
	// DefaultTicketRotation.
	TicketRotation time.Duration
	// ACMEChallenge, if set, answers tls-alpn-01 validations (RFC 8737):
	// it is consulted only for a ClientHello whose ALPN list is exactly
	// ["acme-tls/1"], on a connection accepted by this package's listener,
	// which closes the connection after the handshake. With it, Certificates
	// may be empty (while the first ACME certificate is being obtained):
	// other handshakes then fail.
	ACMEChallenge ACMEChallengeFunc
}

// ACMETLS1 is the ALPN protocol of tls-alpn-01 validation.
const ACMETLS1 = "acme-tls/1"

// ACMEChallengeFunc returns the tls-alpn-01 certificate for a validation
// ClientHello, or an error (no pending challenge) that fails the handshake.
type ACMEChallengeFunc func(*tls.ClientHelloInfo) (*tls.Certificate, error)

// Validate reports every problem with s in one error (errors.Join), without
// filling defaults or touching anything else. A nil error means Update
// would accept s.
func (s Settings) Validate() error {
	var errs []error
	if s.Profile != "" && s.Profile != Modern && s.Profile != Intermediate {
		errs = append(errs, fmt.Errorf("profile: unknown TLS profile %q (want %q or %q)", s.Profile, Modern, Intermediate))
	}
	if s.Profile == Modern && len(s.CipherSuites) > 0 {
		errs = append(errs, fmt.Errorf("cipher suites: profile %q is TLS 1.3 only, whose suites are not configurable", Modern))
	}
	for _, id := range s.CipherSuites {
		if allowedSuite(id) {
			continue
		}
		name := CipherName(id)
		if name == "unknown" {
			errs = append(errs, fmt.Errorf("cipher suites: 0x%04x: unknown cipher suite", id))
			continue
		}
		_, err := CipherSuiteByName(name) // refuses it, saying why
		errs = append(errs, fmt.Errorf("cipher suites: %w", cmp.Or(err, fmt.Errorf("%s: not allowed", name))))
	}
	for _, c := range s.Curves {
		if !allowedCurve(c) {
			errs = append(errs, fmt.Errorf("curves: %v is not allowed", c))
		}
	}
	if len(s.Certificates) == 0 && s.ACMEChallenge == nil {
		errs = append(errs, errNoCertificates)
	}
	if slices.Contains(s.NextProtos, ACMETLS1) {
		errs = append(errs, fmt.Errorf("next protos: %s is reserved for ACME tls-alpn-01 validation", ACMETLS1))
	}
	for i := range s.Certificates {
		c := &s.Certificates[i]
		leaf, err := leafOf(c)
		if err == nil {
			err = CheckCertificate(leaf)
		}
		if err == nil && c.PrivateKey == nil {
			err = errors.New("no private key")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %d: %w", i, err))
		}
	}
	switch s.ClientAuth {
	case tls.NoClientCert:
	case tls.VerifyClientCertIfGiven, tls.RequireAndVerifyClientCert:
		if s.ClientCAs == nil {
			errs = append(errs, fmt.Errorf("client auth %v: needs client CAs", s.ClientAuth))
		}
	case tls.RequestClientCert:
		// client_auth "optional": the handshake succeeds with any
		// certificate (its key possession is still proven by
		// CertificateVerify) so that a route's mtls policy can refuse it
		// with a precise 401 reason instead of a bare TLS alert. Nothing
		// is verified here: ConnectionState.VerifiedChains stays empty, and
		// only the mtls policy, after its own verification, makes a
		// certificate an identity. ClientCAs, if set, only names the
		// acceptable CAs in the CertificateRequest.
	case tls.RequireAnyClientCert:
		errs = append(errs, fmt.Errorf("client auth %v: accepts client certificates without verifying them", s.ClientAuth))
	default:
		errs = append(errs, fmt.Errorf("client auth %d: unknown mode", s.ClientAuth))
	}
	if s.TicketRotation < 0 {
		errs = append(errs, fmt.Errorf("ticket rotation %v: must not be negative", s.TicketRotation))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of s with defaults filled in and slices cloned,
// so a caller mutating its Settings later cannot change a live config.
func (s Settings) withDefaults() Settings {
	if s.Profile == "" {
		s.Profile = DefaultProfile
	}
	s.CipherSuites = slices.Clone(s.CipherSuites)
	if len(s.CipherSuites) == 0 {
		s.CipherSuites = DefaultCipherSuites()
	}
	s.Curves = slices.Clone(s.Curves)
	if len(s.Curves) == 0 {
		s.Curves = DefaultCurves()
	}
	s.NextProtos = slices.Clone(s.NextProtos)
	if len(s.NextProtos) == 0 {
		s.NextProtos = DefaultNextProtos()
	}
	if s.TicketRotation == 0 {
		s.TicketRotation = DefaultTicketRotation
	}
	s.Certificates = slices.Clone(s.Certificates)
	return s
}

// build turns defaulted settings into a tls.Config. Every security-relevant
// field is set explicitly, so GODEBUG defaults cannot widen it.
func (s Settings) build() *tls.Config {
	return &tls.Config{
		MinVersion:             s.Profile.MinVersion(),
		MaxVersion:             tls.VersionTLS13,
		CipherSuites:           s.CipherSuites, // TLS 1.2 only; Go orders them itself (PreferServerCipherSuites is obsolete)
		CurvePreferences:       s.Curves,
		Certificates:           s.Certificates,
		ClientAuth:             s.ClientAuth,
		ClientCAs:              s.ClientCAs,
		NextProtos:             s.NextProtos,
		SessionTicketsDisabled: false,
		Renegotiation:          tls.RenegotiateNever, // a Go server never renegotiates; stated for readers
	}
}

// Server holds the current TLS settings of a listener and rotates its
// session-ticket keys. It is safe for concurrent use.
type Server struct {
	current atomic.Pointer[active] // built from the current settings
	base    *tls.Config            // returned by TLSConfig

	mu     sync.Mutex // serialises Update and RotateTicketKeys
	keys   [][32]byte // session-ticket keys: current, then previous
	period time.Duration

	periodChanged chan struct{}
	stop          chan struct{}
	stopOnce      sync.Once
	stopped       chan struct{}
}

// NewServer validates s and returns a Server using it. It starts a goroutine
// that calls RotateTicketKeys every s.TicketRotation; Close stops it.
func NewServer(s Settings) (*Server, error) {
	srv := &Server{
		keys:          [][32]byte{newTicketKey()},
		periodChanged: make(chan struct{}, 1),
		stop:          make(chan struct{}),
		stopped:       make(chan struct{}),
	}
	srv.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Tells net/http to serve HTTP/2 on "h2" connections; what is
		// negotiated comes from the current settings.
		NextProtos:         DefaultNextProtos(),
		GetConfigForClient: srv.configForClient,
	}
	if err := srv.Update(s); err != nil {
		return nil, err
	}
	go srv.rotateLoop()
	return srv, nil
}

// Update validates s and, if valid, makes it apply to new handshakes; open
// connections keep what they negotiated. On error nothing changes.
func (srv *Server) Update(s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("tls settings: %w", err)
	}
	s = s.withDefaults()
	cfg := s.build()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	cfg.SetSessionTicketKeys(srv.keys)
	srv.current.Store(&active{cfg: cfg, acme: s.ACMEChallenge})
	if srv.period != s.TicketRotation {
		srv.period = s.TicketRotation
		select {
		case srv.periodChanged <- struct{}{}:
		default:
		}
	}
	return nil
}

// TLSConfig returns the base config for tls.Server, tls.NewListener or
// http.Server.TLSConfig. Its GetConfigForClient answers every ClientHello
// with the config built from the current settings, so it (and any Clone of
// it) follows Update. The same pointer is returned each time; do not modify
// it.
func (srv *Server) TLSConfig() *tls.Config { return srv.base }

// configForClient is the base config's GetConfigForClient. It records the
// ClientHello on connections accepted by this package's listener.
func (srv *Server) configForClient(chi *tls.ClientHelloInfo) (*tls.Config, error) {
	a := srv.current.Load()
	c, ours := chi.Conn.(*conn)
	if ours {
		c.hello = captureHello(chi)
	}
	if ours && a.acme != nil && slices.Equal(chi.SupportedProtos, []string{ACMETLS1}) {
		c.acmeChallenge = true // the listener closes it after the handshake
		return acmeChallengeConfig(a, chi)
	}
	return a.cfg, nil
}

// active is what Update installs: the built config and the ACME hook.
type active struct {
	cfg  *tls.Config
	acme ACMEChallengeFunc
}

// acmeChallengeConfig is the config of a tls-alpn-01 validation handshake:
// the current policy with only the challenge certificate, only acme-tls/1,
// no client certificates and no session tickets.
func acmeChallengeConfig(a *active, chi *tls.ClientHelloInfo) (*tls.Config, error) {
	cert, err := a.acme(chi)
	if err != nil {
		return nil, fmt.Errorf("acme tls-alpn-01: %w", err)
	}
	if cert == nil {
		return nil, errors.New("acme tls-alpn-01: no challenge certificate")
	}
	cfg := a.cfg.Clone()
	cfg.Certificates = []tls.Certificate{*cert}
	cfg.NextProtos = []string{ACMETLS1}
	cfg.ClientAuth = tls.NoClientCert
	cfg.ClientCAs = nil
	cfg.SessionTicketsDisabled = true
	return cfg, nil
}

// Serves reports whether one of the current certificates is valid for
// host (a DNS name or an IP literal), as a client verifying it would check.
// The plain-HTTP listener redirects only to such hosts.
func (srv *Server) Serves(host string) bool {
	certs := srv.current.Load().cfg.Certificates
	for i := range certs {
		if leaf, err := leafOf(&certs[i]); err == nil && leaf.VerifyHostname(host) == nil {
			return true
		}
	}
	return false
}

// Leaves returns the leaf of every current certificate.
func (srv *Server) Leaves() []*x509.Certificate {
	certs := srv.current.Load().cfg.Certificates
	out := make([]*x509.Certificate, 0, len(certs))
	for i := range certs {
		if leaf, err := leafOf(&certs[i]); err == nil {
			out = append(out, leaf)
		}
	}
	return out
}

// RotateTicketKeys makes a fresh random key the one that encrypts new
// session tickets and keeps the previous one for decryption only. Tickets
// encrypted under older keys no longer resume (full handshake instead).
// The Server's own goroutine calls it every TicketRotation; tests call it
// directly instead of waiting.
func (srv *Server) RotateTicketKeys() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.keys = [][32]byte{newTicketKey(), srv.keys[0]}
	srv.current.Load().cfg.SetSessionTicketKeys(srv.keys)
}

// Close stops ticket-key rotation. Connections and listeners are not
// affected.
func (srv *Server) Close() error {
	srv.stopOnce.Do(func() { close(srv.stop) })
	<-srv.stopped
	return nil
}

func (srv *Server) rotateLoop() {
	defer close(srv.stopped)
	srv.mu.Lock()
	t := time.NewTicker(srv.period)
	srv.mu.Unlock()
	defer t.Stop()
	for {
		select {
		case <-t.C:
			srv.RotateTicketKeys()
		case <-srv.periodChanged:
			srv.mu.Lock()
			t.Reset(srv.period)
			srv.mu.Unlock()
		case <-srv.stop:
			return
		}
	}
}

func newTicketKey() [32]byte {
	var k [32]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go 1.24+); it aborts the program instead
	return k
}
