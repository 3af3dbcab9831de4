// Package config is Warden's configuration: the YAML schema, its secure
// defaults (all in defaults.go), strict decoding that reports every error
// with file:line:column, and validation.
//
// Unknown keys are errors: a typo must never silently switch a protection
// off. Validation reads the files the config names (certificates, CA
// bundles) but makes no network call and changes nothing.
package config

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardengw/warden/internal/auth/lockout"
)

// Config is the whole configuration file.
type Config struct {
	Server     Server     `yaml:"server"`
	TLS        TLS        `yaml:"tls"`
	Upstreams  []Upstream `yaml:"upstreams"`
	Routes     []Route    `yaml:"routes"`
	Revocation Revocation `yaml:"revocation"`
	Store      Store      `yaml:"store"`
	// BruteForce configures the lock-out of clients and consumers that
	// keep failing authentication (on every route).
	BruteForce lockout.Config `yaml:"brute_force"`
	Expiry     Expiry         `yaml:"expiry"`
	// CA, if set, is the internal CA (made by `warden ca init`) whose CRL
	// and OCSP responses the gateway publishes.
	CA *InternalCA `yaml:"ca"`
	// ACME, if set, is the ACME account that tls.certificates[].acme
	// entries get their certificates from.
	ACME *ACME `yaml:"acme"`
	// CT, if set, makes the gateway watch certificate-transparency logs
	// for certificates of its domains with keys it does not know.
	CT    *CT   `yaml:"ct"`
	Audit Audit `yaml:"audit"`
	Log   Log   `yaml:"log"`

	// File is the path the config was read from; relative file names in the
	// config are resolved against its directory.
	File string `yaml:"-"`
	// positions of every key path, for errors found after decoding.
	pos map[string]Pos
}

// Server holds the listeners and connection-level limits.
type Server struct {
	HTTPS           HTTPSListener     `yaml:"https"`
	HTTP            *RedirectListener `yaml:"http"`
	Admin           *AdminListener    `yaml:"admin"`
	TrustedProxies  []string          `yaml:"trusted_proxies"`
	ShutdownTimeout time.Duration     `yaml:"shutdown_timeout"`
	// GCHeapFloor is the heap growth the garbage collector always allows
	// over the live heap (internal/gctune): fewer collections under load
	// for up to this much more heap. 0 turns it off; ignored when GOGC is
	// set in the environment.
	GCHeapFloor ByteSize `yaml:"gc_heap_floor"`
}

// HTTPSListener is the TLS listener that serves the routes.
type HTTPSListener struct {
	Address           string        `yaml:"address"`
	MaxConnections    int           `yaml:"max_connections"`
	HandshakeTimeout  time.Duration `yaml:"handshake_timeout"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    ByteSize      `yaml:"max_header_bytes"`
	MaxBodyBytes      ByteSize      `yaml:"max_body_bytes"`
}

// RedirectListener is the plain-HTTP listener. It only redirects to HTTPS.
type RedirectListener struct {
	Address string `yaml:"address"`
	// RedirectPort is the HTTPS port named in redirects; default: the
	// HTTPS listener's port (omitted when 443).
	RedirectPort int `yaml:"redirect_port"`
}

// AdminListener serves /metrics and (later) the admin API.
type AdminListener struct {
	Address string `yaml:"address"`
	// InsecureNonLoopback allows an address other than loopback.
	InsecureNonLoopback bool `yaml:"insecure_non_loopback"`
	// ClientCAFiles turn the admin API on: its clients must present a
	// certificate from one of these CAs.
	ClientCAFiles []string `yaml:"client_ca_files"`
}

// TLS is the inbound TLS policy.
type TLS struct {
	Profile               string        `yaml:"profile"`
	CipherSuites          []string      `yaml:"cipher_suites"`
	Curves                []string      `yaml:"curves"`
	Certificates          []Certificate `yaml:"certificates"`
	ClientAuth            ClientAuth    `yaml:"client_auth"`
	SessionTicketRotation time.Duration `yaml:"session_ticket_rotation"`
	HSTS                  HSTS          `yaml:"hsts"`
	// OCSPStapling staples an OCSP response to each served certificate
	// that names an OCSP responder. Default true.
	OCSPStapling *bool `yaml:"ocsp_stapling"`
}

// Certificate is one server certificate, from exactly one source: PEM
// files (CertFile and KeyFile, hot-reloaded), the internal CA (InternalCA)
// or an ACME CA (ACME), the last two obtained and renewed by the gateway
// itself.
type Certificate struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InternalCA has the gateway obtain this certificate from the internal
	// CA of the ca block, for a key it generates and keeps, and renew it at
	// two thirds of its lifetime.
	InternalCA *InternalCACertificate `yaml:"internal_ca"`
	// ACME has the gateway obtain this certificate from the ACME CA of the
	// acme block, and renew it.
	ACME *CertificateACME `yaml:"acme"`
}

// Sources names the certificate sources an entry sets; a valid entry sets
// exactly one. A new source is one more line here.
func (c Certificate) Sources() []string {
	var s []string
	if c.CertFile != "" || c.KeyFile != "" {
		s = append(s, "cert_file/key_file")
	}
	if c.InternalCA != nil {
		s = append(s, "internal_ca")
	}
	if c.ACME != nil {
		s = append(s, "acme")
	}
	return s
}

// InternalCACertificate is a server certificate the gateway obtains from
// its internal CA.
type InternalCACertificate struct {
	// Names are the certificate's DNS names and IP addresses.
	Names []string `yaml:"names"`
	// KeyType of the key the gateway generates: ecdsa-p256 (default),
	// ed25519 or rsa-3072.
	KeyType string `yaml:"key_type"`
	// Lifetime of each certificate; default the CA's server default (90
	// days).
	Lifetime time.Duration `yaml:"lifetime"`
}

// Key types of internal_ca certificates.
const (
	KeyTypeECDSAP256 = "ecdsa-p256"
	KeyTypeEd25519   = "ed25519"
	KeyTypeRSA3072   = "rsa-3072"
)

// ClientAuth is the listener's client-certificate policy.
type ClientAuth struct {
	Mode    string   `yaml:"mode"` // none, optional, require
	CAFiles []string `yaml:"ca_files"`
}

// HSTS is the Strict-Transport-Security header the gateway sets on every
// HTTPS response.
type HSTS struct {
	MaxAge            time.Duration `yaml:"max_age"`
	IncludeSubdomains *bool         `yaml:"include_subdomains"`
	Preload           bool          `yaml:"preload"`
}

// Upstream is a service the gateway forwards to.
type Upstream struct {
	Name                  string        `yaml:"name"`
	URL                   string        `yaml:"url"`
	ServerName            string        `yaml:"server_name"`
	CAFile                string        `yaml:"ca_file"`
	ClientCertFile        string        `yaml:"client_cert_file"`
	ClientKeyFile         string        `yaml:"client_key_file"`
	Pins                  []string      `yaml:"pins"`
	DialTimeout           time.Duration `yaml:"dial_timeout"`
	TLSHandshakeTimeout   time.Duration `yaml:"tls_handshake_timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	IdleConnTimeout       time.Duration `yaml:"idle_conn_timeout"`
	MaxIdleConns          int           `yaml:"max_idle_conns"`
	MaxConns              int           `yaml:"max_conns"`
	// HTTP2 speaks HTTP/2 to the upstream when it offers it (ALPN).
	HTTP2 bool `yaml:"http2"`
	// ForwardHeaders are the forwarding fields the gateway sets on requests
	// to this upstream.
	ForwardHeaders ForwardHeaders `yaml:"forward_headers"`
}

// ForwardHeaders names forwarding fields (proxy.ParseForwardFields): nil,
// the key absent, means all of them; an empty list none. An explicit null
// is refused rather than read as "all": it is most likely meant as none.
type ForwardHeaders []string

func (f *ForwardHeaders) decodeYAML(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.errorf(n, path, "expected a list: [] sends none of the forwarding fields; leave the key out to send all five")
		return
	}
	names := []string{}
	d.decode(n, reflect.ValueOf(&names).Elem(), path)
	*f = names
}

// Route maps host + path prefix + methods to an upstream through an
// ordered list of policies.
type Route struct {
	Name       string   `yaml:"name"`
	Host       string   `yaml:"host"`
	PathPrefix string   `yaml:"path_prefix"`
	Methods    []string `yaml:"methods"`
	Upstream   string   `yaml:"upstream"`
	// InsecurePlaintextUpstream allows an http:// upstream for this route.
	InsecurePlaintextUpstream bool         `yaml:"insecure_plaintext_upstream"`
	Policies                  []PolicySpec `yaml:"policies"`
	// Legacy is a weaker variant of the route for clients that present no
	// client certificate yet, on its way out.
	Legacy *Legacy `yaml:"legacy"`
}

// Legacy is a route's legacy variant: reached by requests whose connection
// presented no client certificate, through its own policies (the weaker
// requirement, e.g. an API key), with a tighter rate limit, an audit event
// for every request, Deprecation/Sunset/Link headers, and 410 after the
// sunset.
type Legacy struct {
	Policies    []PolicySpec    `yaml:"policies"`
	RateLimit   LegacyRateLimit `yaml:"rate_limit"`
	Deprecation time.Time       `yaml:"deprecation"`
	Sunset      time.Time       `yaml:"sunset"`
	Link        string          `yaml:"link"`
}

// LegacyRateLimit is the legacy variant's per-client limit.
type LegacyRateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
}

// PolicySpec is one policy block: its type and its type-specific keys,
// decoded later by the policy's factory.
type PolicySpec struct {
	Type string
	Node *yaml.Node // the whole block, "type" included
	Pos  Pos
	path string
	file string
}

func (p *PolicySpec) decodeYAML(d *decoder, n *yaml.Node, path string) {
	p.Node, p.Pos, p.path, p.file = n, Pos{n.Line, n.Column}, path, d.file
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a policy mapping with a type key, found %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			v := n.Content[i+1]
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				d.errorf(v, path+".type", "policy type must be a name")
				return
			}
			p.Type = v.Value
			return
		}
	}
	d.errorf(n, path, "policy has no type")
}

// Decode decodes the policy block, without its type key, into v strictly.
func (p *PolicySpec) Decode(v any) error {
	d := &decoder{file: p.file, pos: map[string]Pos{}}
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: p.Node.Line, Column: p.Node.Column}
	for i := 0; i+1 < len(p.Node.Content); i += 2 {
		if p.Node.Content[i].Value != "type" {
			rest.Content = append(rest.Content, p.Node.Content[i], p.Node.Content[i+1])
		}
	}
	rv := reflectValue(v)
	d.decode(rest, rv, p.path)
	return d.err()
}

// Revocation configures how client certificates are checked against CRLs
// and OCSP (by the mtls policy) and how the gateway's own certificates are
// stapled.
type Revocation struct {
	CRLFiles              []string      `yaml:"crl_files"`
	CRLRefresh            time.Duration `yaml:"crl_refresh"`
	CRLDistributionPoints *bool         `yaml:"crl_distribution_points"`
	OCSP                  *bool         `yaml:"ocsp"`
	Timeout               time.Duration `yaml:"timeout"`
	MaxCRLBytes           ByteSize      `yaml:"max_crl_bytes"`
	StaleGrace            time.Duration `yaml:"stale_grace"`
}

// InternalCA is the internal CA the gateway publishes revocation for.
type InternalCA struct {
	// Dir holds the CA made by `warden ca init`.
	Dir string `yaml:"dir"`
	// PassphraseEnv or PassphraseFile names where the key's passphrase is,
	// when the key is encrypted.
	PassphraseEnv  string `yaml:"passphrase_env"`
	PassphraseFile string `yaml:"passphrase_file"`
	// PublishURL is the public https base URL of the publishing endpoint:
	// the gateway's address followed by /.well-known/warden/pki. Issued
	// certificates name <base>/crl and <base>/ocsp.
	PublishURL string `yaml:"publish_url"`
}

// PKIPath is where the gateway publishes its internal CA's CRL and OCSP
// responses, on the HTTPS and the plain-HTTP listener.
const PKIPath = "/.well-known/warden/pki"

// Expiry configures the watch over every certificate the gateway uses or
// trusts.
type Expiry struct {
	// Thresholds: how long before expiry a certificate is reported (each
	// once). Default 720h, 336h, 168h, 24h (30, 14, 7, 1 days).
	Thresholds []time.Duration `yaml:"thresholds"`
	// Interval between checks. Default 1h.
	Interval time.Duration `yaml:"interval"`
	// Webhook, if set, receives every notification.
	Webhook *ExpiryWebhook `yaml:"webhook"`
}

// ExpiryWebhook is where expiry notifications are posted.
type ExpiryWebhook struct {
	URL        string        `yaml:"url"`
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
	Retries    int           `yaml:"retries"`
}

// CT configures the background certificate-transparency monitor (see
// internal/detect/ct). Absent: off.
type CT struct {
	// Logs are the RFC 6962 logs to poll; at least one.
	Logs []CTLog `yaml:"logs"`
	// CAFile, if set, is the CA bundle the logs' HTTPS certificates are
	// verified against instead of the system roots (a private log).
	CAFile string `yaml:"ca_file"`
	// Domains are watched with every name below them; at least one.
	Domains []string `yaml:"domains"`
	// KnownPins are SPKI pins (sha256/…) of keys that are the operator's.
	// The keys of tls.certificates are always known.
	KnownPins []string `yaml:"known_pins"`
	// KnownCertFiles are PEM files whose first certificate's key is known
	// too (a certificate served elsewhere, a key about to be rotated in).
	KnownCertFiles []string `yaml:"known_cert_files"`
	// PollInterval is the time between rounds. Default 5m, at least 1m.
	PollInterval time.Duration `yaml:"poll_interval"`
	// BatchSize is the largest get-entries request. Default 256, at most 1024.
	BatchSize int `yaml:"batch_size"`
	// StateFile keeps the last verified tree head of each log, so that a
	// restart resumes there. Default ct-state.json next to the config.
	StateFile string `yaml:"state_file"`
	// Backfill scans a log seen for the first time from entry 0.
	Backfill bool `yaml:"backfill"`
}

// CTLog is one certificate-transparency log.
type CTLog struct {
	Name string `yaml:"name"`
	// URL is the log's https base URL, the part before /ct/v1/.
	URL string `yaml:"url"`
	// KeyFile holds the log's public key (PEM or DER), from the log list.
	KeyFile string `yaml:"key_file"`
}

// Store is the embedded record store (consumers, API-key hashes, …).
type Store struct {
	// Path of the SQLite file, created with mode 0600 if missing.
	Path string `yaml:"path"`
}

// Audit configures where security events go.
type Audit struct {
	// File receives JSON lines; "-" or empty means standard error.
	File string `yaml:"file"`
}

// Log configures operational logs.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// ByteSize is a size in bytes; the config accepts 1048576, 64KiB, 10MiB or 1GiB.
type ByteSize int64

// UnmarshalText parses a size with an optional KiB, MiB or GiB suffix.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return fmt.Errorf("expected a size such as 65536, 64KiB or 10MiB, found %q", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// Parse decodes config data strictly, fills in defaults and validates it.
// The returned error lists every problem, each with file:line:column.
func Parse(file string, data []byte) (*Config, []Warning, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	c := &Config{File: file}
	d := &decoder{file: file, pos: map[string]Pos{}}
	if len(root.Content) == 0 {
		return nil, nil, &Error{File: file, Msg: "the file is empty"}
	}
	d.decode(&root, reflectValue(c), "")
	if err := d.err(); err != nil {
		return nil, nil, err
	}
	c.pos = d.pos
	c.applyDefaults()
	warns, err := c.validate()
	if err != nil {
		return nil, nil, err
	}
	return c, warns, nil
}

// Load reads and parses a config file.
func Load(path string) (*Config, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}
