package ct

import (
	"crypto"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/net/idna"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/pki"
)

// Defaults and bounds.
const (
	DefaultPollInterval = 5 * time.Minute
	MinPollInterval     = time.Second
	DefaultBatchSize    = 256
	MaxBatchSize        = 1024
	// DefaultHTTPTimeout bounds each request when Config.HTTPClient is nil.
	DefaultHTTPTimeout = 30 * time.Second
	// MaxResponseBytes bounds every response body read from a log.
	MaxResponseBytes = 64 << 20
)

// Log is one RFC 6962 log to watch.
type Log struct {
	// URL is the log's base URL, the part before "/ct/v1/". It must be https.
	URL string
	// PublicKey is the log's signing key, PEM ("PUBLIC KEY") or DER
	// SubjectPublicKeyInfo, as published in the log list. Signed tree heads
	// that do not verify under it are rejected.
	PublicKey []byte
	// Name labels the log in events; the URL if empty.
	Name string
}

// Config configures a Monitor. Zero values of the optional fields take the
// defaults documented on them.
type Config struct {
	// Logs to poll; at least one.
	Logs []Log
	// Domains watched: each name and every name below it. At least one.
	// Internationalized names are converted to their ASCII (punycode) form.
	Domains []string
	// KnownKeys are the SPKI pins of the operator's legitimate keys. A
	// certificate for a watched domain whose key is not here raises a
	// critical event; an empty list makes every such certificate critical.
	KnownKeys []pki.Pin
	// IsKnown, if set, is asked about a key not in KnownKeys before it is
	// reported: the keys a gateway serves right now (certificates it renews
	// itself get a new key each time).
	IsKnown func(pki.Pin) bool
	// PollInterval is the time between rounds of Run; DefaultPollInterval
	// if zero, at least MinPollInterval.
	PollInterval time.Duration
	// BatchSize is the largest get-entries request; DefaultBatchSize if
	// zero, at most MaxBatchSize.
	BatchSize int
	// StateFile persists the last verified tree head of each log (JSON,
	// mode 0600, replaced atomically). Empty keeps state in memory only, so
	// a restart starts again from the logs' current heads.
	StateFile string
	// Backfill makes a log seen for the first time be scanned from entry 0
	// rather than from its current head. Real logs hold billions of entries;
	// this is for small or test logs.
	Backfill bool
	// HTTPClient fetches from the logs; a client with DefaultHTTPTimeout if
	// nil. Response bodies are capped at MaxResponseBytes either way.
	HTTPClient *http.Client
	// Audit receives the events; nil discards them.
	Audit *audit.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// logSpec is a validated Log.
type logSpec struct {
	url, name string
	verifier  *ctgo.SignatureVerifier
	keyID     [sha256.Size]byte
}

// settings is a validated Config with defaults filled in.
type settings struct {
	logs     []logSpec
	domains  []string
	known    pki.PinSet
	isKnown  func(pki.Pin) bool
	interval time.Duration
	batch    int
}

// validate checks cfg and returns it parsed, reporting every problem at once.
func (cfg *Config) validate() (*settings, error) {
	var errs []error
	s := &settings{interval: cfg.PollInterval, batch: cfg.BatchSize, known: pki.PinSet(cfg.KnownKeys), isKnown: cfg.IsKnown}
	if len(cfg.Logs) == 0 {
		errs = append(errs, errors.New("ct: no logs configured"))
	}
	seen := map[string]bool{}
	for i, l := range cfg.Logs {
		spec, err := parseLog(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("ct: logs[%d]: %w", i, err))
			continue
		}
		if seen[spec.url] {
			errs = append(errs, fmt.Errorf("ct: logs[%d]: %s listed twice", i, spec.url))
		}
		seen[spec.url] = true
		s.logs = append(s.logs, spec)
	}
	if len(cfg.Domains) == 0 {
		errs = append(errs, errors.New("ct: no domains to watch"))
	}
	for i, d := range cfg.Domains {
		n, err := parseDomain(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("ct: domains[%d]: %w", i, err))
			continue
		}
		s.domains = append(s.domains, n)
	}
	switch {
	case s.interval == 0:
		s.interval = DefaultPollInterval
	case s.interval < MinPollInterval:
		errs = append(errs, fmt.Errorf("ct: poll interval %s is below %s", s.interval, MinPollInterval))
	}
	switch {
	case s.batch == 0:
		s.batch = DefaultBatchSize
	case s.batch < 0 || s.batch > MaxBatchSize:
		errs = append(errs, fmt.Errorf("ct: batch size %d is outside 1..%d", s.batch, MaxBatchSize))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func parseLog(l Log) (logSpec, error) {
	u, err := parseLogURL(l.URL)
	if err != nil {
		return logSpec{}, err
	}
	pub, keyID, err := parseLogKey(l.PublicKey)
	if err != nil {
		return logSpec{}, fmt.Errorf("%s: public key: %w", l.URL, err)
	}
	v, err := ctgo.NewSignatureVerifier(pub)
	if err != nil {
		return logSpec{}, fmt.Errorf("%s: public key: %w", l.URL, err)
	}
	name := l.Name
	if name == "" {
		name = u.String()
	}
	return logSpec{url: u.String(), name: name, verifier: v, keyID: keyID}, nil
}

// parseLogKey accepts a PEM or DER SubjectPublicKeyInfo and returns the key
// and its RFC 6962 log ID (SHA-256 of the DER).
func parseLogKey(b []byte) (crypto.PublicKey, [sha256.Size]byte, error) {
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, [sha256.Size]byte{}, fmt.Errorf("PEM block is %q, want PUBLIC KEY", blk.Type)
		}
		der = blk.Bytes
	}
	if len(der) == 0 {
		return nil, [sha256.Size]byte{}, errors.New("missing")
	}
	pub, err := ctx509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	return pub, sha256.Sum256(der), nil
}

// CheckLogURL reports what is wrong with a log's base URL, as New would.
func CheckLogURL(s string) error {
	_, err := parseLogURL(s)
	return err
}

// CheckLogKey reports what is wrong with a log's public key (PEM or DER
// SubjectPublicKeyInfo), as New would.
func CheckLogKey(b []byte) error {
	pub, _, err := parseLogKey(b)
	if err == nil {
		_, err = ctgo.NewSignatureVerifier(pub)
	}
	return err
}

func parseLogURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("url %q: want https://host[/path], the part before /ct/v1/", s)
	}
	return u, nil
}

// NormalizeDomain returns a watched domain in the form the monitor matches
// (lower-case ASCII), or why it cannot be watched.
func NormalizeDomain(d string) (string, error) { return parseDomain(d) }

// parseDomain normalizes a watched domain to lower-case ASCII.
func parseDomain(d string) (string, error) {
	n := normalizeName(d)
	if n == "" {
		return "", errors.New("empty domain")
	}
	if strings.HasPrefix(n, "*.") {
		return "", fmt.Errorf("%q: list the domain itself; its subdomains are watched", d)
	}
	a, err := idna.Lookup.ToASCII(n)
	if err != nil {
		return "", fmt.Errorf("%q: %w", d, err)
	}
	if !strings.Contains(a, ".") {
		return "", fmt.Errorf("%q: not a domain name", d)
	}
	return a, nil
}
