package expiry

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/wardengw/warden/internal/auth/mtls"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/acme"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/telemetry"
)

// States of an inventory Entry.
const (
	StateOK          = "ok"
	StateExpiring    = "expiring"
	StateExpired     = "expired"
	StateNotYetValid = "not_yet_valid"
	// StateNotObtained: a certificate the gateway obtains itself
	// (internal_ca, acme) that it has not obtained (and persisted) yet. It
	// is not an error: the gateway obtains it when it runs.
	StateNotObtained = "not_obtained"
)

// Sources of a server certificate the gateway obtains and renews itself
// (Entry.Source); file certificates have none.
const (
	SourceInternalCA = "internal_ca"
	SourceACME       = "acme"
)

// DefaultWarn is the window within which a certificate is "expiring".
const DefaultWarn = 30 * Day

// Uses of a certificate, as in telemetry.CertInfo.Use.
const (
	UseServer               = "server"
	UseServerIntermediate   = "server_intermediate"
	UseClientCA             = "client_ca"
	UseAdminClientCA        = "admin_client_ca"
	UseUpstreamCA           = "upstream_ca"
	UseUpstreamClient       = "upstream_client"
	UseUpstreamIntermediate = "upstream_client_intermediate"
)

// Entry is one certificate the gateway uses or trusts.
type Entry struct {
	Use string `json:"use"`
	// Name is the upstream or route the certificate serves, if any; for a
	// managed certificate, its names (comma-separated).
	Name string `json:"name,omitempty"`
	// Source is where the gateway gets a managed server certificate
	// (SourceInternalCA, SourceACME); empty for a file certificate.
	Source string `json:"source,omitempty"`
	// File is the certificate file; for a managed certificate, the file in
	// which the gateway persists it (which need not exist yet).
	File    string `json:"file"`
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	Serial  string `json:"serial"` // hex, as in telemetry.CertInfo
	// SPKIPin is the certificate's key pin ("sha256/…").
	SPKIPin     string    `json:"spki_pin"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	State       string    `json:"state"`
	SecondsLeft int64     `json:"seconds_left"`
	// Pinned: an upstream's pins name this certificate's key.
	Pinned bool `json:"pinned,omitempty"`

	// Cert is the parsed certificate; nil when State is StateNotObtained
	// (and so are the fields taken from it).
	Cert *x509.Certificate `json:"-"`
}

// CertInfo describes the entry for the expiry gauge and a Watcher.
func (e Entry) CertInfo() telemetry.CertInfo {
	return telemetry.CertInfoOf(e.Use, e.Name, e.Cert)
}

// Report is the inventory of a config.
type Report struct {
	Entries  []Entry   `json:"certificates"`
	Findings []Finding `json:"findings,omitempty"`
}

// stateRank orders states by severity; unknown states rank with ok.
var stateRank = map[string]int{StateOK: 0, StateNotObtained: 0, StateExpiring: 1, StateNotYetValid: 2, StateExpired: 3}

// Worst returns the most severe state among the entries, whatever their
// order: expired before not_yet_valid before expiring before ok.
func (r Report) Worst() string {
	worst := StateOK
	for _, e := range r.Entries {
		if stateRank[e.State] > stateRank[worst] {
			worst = e.State
		}
	}
	return worst
}

// State classifies c at now: expiring when NotAfter is within warn.
func State(c *x509.Certificate, now time.Time, warn time.Duration) string {
	switch {
	case now.Before(c.NotBefore):
		return StateNotYetValid
	case !now.Before(c.NotAfter):
		return StateExpired
	case c.NotAfter.Sub(now) < warn:
		return StateExpiring
	}
	return StateOK
}

// Inventory lists every certificate cfg makes the gateway use or trust, at
// time now (warn, 0 for DefaultWarn, is the "expiring" window): server
// chains (from files, and those the gateway obtains from its internal CA or
// by ACME, as it persisted them; StateNotObtained when it has not yet),
// client CA bundles (the listener's and each route's mtls policy),
// admin client CAs, and each upstream's CA bundle and client chain. It
// only reads files: it never issues, obtains or contacts anything. For
// each upstream with pins it adds the findings of CheckPins and says when
// no pin matches a certificate of its ca_file. A file that cannot be read
// is reported in the error; the entries of the others are returned.
func Inventory(cfg *config.Config, now time.Time, warn time.Duration) (Report, error) {
	if warn <= 0 {
		warn = DefaultWarn
	}
	inv := &inventory{cfg: cfg, now: now, warn: warn, seen: map[[3]string]bool{}}
	for _, c := range cfg.TLS.Certificates {
		switch {
		case c.InternalCA != nil:
			inv.internalCA(*c.InternalCA)
		case c.ACME != nil:
			inv.acme(c.ACME.Names)
		case c.CertFile != "":
			inv.chain(c.CertFile, "", UseServer, UseServerIntermediate)
		}
	}
	for _, f := range cfg.TLS.ClientAuth.CAFiles {
		inv.bundle(cfg.PathOf(f), UseClientCA, "")
	}
	if a := cfg.Server.Admin; a != nil {
		for _, f := range a.ClientCAFiles {
			inv.bundle(cfg.PathOf(f), UseAdminClientCA, "")
		}
	}
	for _, r := range cfg.Routes {
		specs := slices.Clone(r.Policies)
		if r.Legacy != nil {
			specs = append(specs, r.Legacy.Policies...)
		}
		for _, s := range specs {
			if s.Type != mtls.Type {
				continue
			}
			var mc mtls.Config
			if err := s.Decode(&mc); err != nil {
				inv.errs = append(inv.errs, fmt.Errorf("route %q: mtls policy: %w", r.Name, err))
				continue
			}
			for _, f := range mc.CAFiles { // resolved by the decoder
				inv.bundle(string(f), UseClientCA, "route "+r.Name)
			}
		}
	}
	for _, u := range cfg.Upstreams {
		var local []*x509.Certificate
		if u.CAFile != "" {
			local = inv.bundle(cfg.PathOf(u.CAFile), UseUpstreamCA, u.Name)
		}
		if u.ClientCertFile != "" {
			inv.chain(u.ClientCertFile, u.Name, UseUpstreamClient, UseUpstreamIntermediate)
		}
		inv.pins(u, local)
	}
	return Report{Entries: inv.entries, Findings: inv.findings}, errors.Join(inv.errs...)
}

type inventory struct {
	cfg      *config.Config
	issuerID string // of the internal CA, once read
	now      time.Time
	warn     time.Duration
	seen     map[[3]string]bool // use, file, serial
	entries  []Entry
	findings []Finding
	errs     []error
}

// chain adds a certificate file's leaf under use and the certificates
// after it under chainUse. The file may also hold the private key (as
// tls.LoadX509KeyPair allows): that block is skipped, never parsed.
func (inv *inventory) chain(file, name, use, chainUse string) {
	path := inv.cfg.PathOf(file)
	certs, err := pki.ReadChain(path)
	if err != nil {
		inv.errs = append(inv.errs, err)
		return
	}
	for i, c := range certs {
		u := use
		if i > 0 {
			u = chainUse
		}
		inv.add(c, u, name, path)
	}
}

// internalCA adds the chain the gateway persisted for an internal_ca entry
// (in config.ManagedCertDir, named after the CA and the entry), read
// without its key; StateNotObtained if there is none yet.
func (inv *inventory) internalCA(spec config.InternalCACertificate) {
	name := strings.Join(spec.Names, ",")
	if inv.issuerID == "" {
		if inv.cfg.CA == nil {
			inv.errs = append(inv.errs, fmt.Errorf("internal_ca certificate for %s: no ca block", name))
			return
		}
		_, inter, err := ca.LoadCertificates(inv.cfg.PathOf(inv.cfg.CA.Dir))
		if err != nil {
			inv.errs = append(inv.errs, fmt.Errorf("internal_ca certificate for %s: %w", name, err))
			return
		}
		inv.issuerID = ca.IssuerID(inter)
	}
	path := inv.cfg.InternalCACertPath(inv.issuerID, spec)
	certs, err := pki.ReadChain(path)
	inv.managed(certs, err, SourceInternalCA, name, path)
}

// acme adds the chain certmagic stored for each name of an acme entry;
// StateNotObtained for a name it holds none for yet.
func (inv *inventory) acme(names []string) {
	a := inv.cfg.ACME
	if a == nil {
		inv.errs = append(inv.errs, fmt.Errorf("acme certificate for %s: no acme block", strings.Join(names, ",")))
		return
	}
	for _, n := range names {
		path := acme.CertificateFile(inv.cfg.PathOf(a.Storage), a.DirectoryURL, n)
		certs, err := pki.ReadCertificates(path)
		inv.managed(certs, err, SourceACME, n, path)
	}
}

// managed adds a managed certificate's chain as read from path (leaf
// first), or an entry in StateNotObtained if path does not exist.
func (inv *inventory) managed(certs []*x509.Certificate, err error, source, name, path string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		inv.entries = append(inv.entries, Entry{Use: UseServer, Name: name, Source: source, File: path, State: StateNotObtained})
		return
	case err != nil:
		inv.errs = append(inv.errs, fmt.Errorf("%s certificate for %s: %w", source, name, err))
		return
	case len(certs) == 0:
		inv.errs = append(inv.errs, fmt.Errorf("%s certificate for %s: %s holds no certificate", source, name, path))
		return
	}
	for i, c := range certs {
		use := UseServer
		if i > 0 {
			use = UseServerIntermediate
		}
		inv.addFrom(c, use, name, path, source)
	}
}

func (inv *inventory) bundle(path, use, name string) []*x509.Certificate {
	certs, err := config.LoadCerts(path)
	if err != nil {
		inv.errs = append(inv.errs, err)
		return nil
	}
	for _, c := range certs {
		inv.add(c, use, name, path)
	}
	return certs
}

func (inv *inventory) add(c *x509.Certificate, use, name, path string) {
	inv.addFrom(c, use, name, path, "")
}

func (inv *inventory) addFrom(c *x509.Certificate, use, name, path, source string) {
	serial := c.SerialNumber.Text(16)
	k := [3]string{use, path, serial}
	if inv.seen[k] { // a bundle shared by several routes is listed once
		return
	}
	inv.seen[k] = true
	inv.entries = append(inv.entries, Entry{
		Use: use, Name: name, Source: source, File: path, Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		Serial: serial, SPKIPin: pki.SPKIPin(c).String(), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		State: State(c, inv.now, inv.warn), SecondsLeft: int64(c.NotAfter.Sub(inv.now) / time.Second), Cert: c,
	})
}

func (inv *inventory) pins(u config.Upstream, local []*x509.Certificate) {
	if len(u.Pins) == 0 {
		return
	}
	pins, err := pki.ParsePins(u.Pins)
	if err != nil {
		inv.errs = append(inv.errs, fmt.Errorf("upstream %q: %w", u.Name, err))
		return
	}
	subject := "upstream " + u.Name
	for _, f := range CheckPins(pins, nil, nil) {
		f.Subject = subject
		inv.findings = append(inv.findings, f)
	}
	matched := false
	for i := range inv.entries {
		e := &inv.entries[i]
		if e.Name == u.Name && e.Use == UseUpstreamCA && pins.Contains(pki.SPKIPin(e.Cert)) {
			e.Pinned, matched = true, true
		}
	}
	if !matched {
		msg := "no pin matches a certificate of the upstream's ca_file; the pins presumably name the upstream's own keys (check them with `warden pin host:port`)"
		if len(local) == 0 {
			msg = "no local certificate to compare the pins with (no ca_file); check them with `warden pin host:port`"
		}
		inv.findings = append(inv.findings, Finding{Kind: PinsMatchNoLocalCert, Severity: "info", Subject: subject, Message: msg})
	}
}
