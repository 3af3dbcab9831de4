package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/detect/ct"
	"github.com/wardengw/warden/internal/pki"
)

// ctDefaultState is where `warden ct watch` keeps its verified tree heads.
const ctDefaultState = "ct-state.json"

// ctFile is the YAML file of `warden ct watch --config`. Relative paths are
// relative to the file.
//
//	logs:
//	  - url: https://ct.example.net/2026h1   # the part before /ct/v1/
//	    key_file: example-2026h1.pem         # the log's public key (PEM or DER)
//	    name: example-2026h1
//	domains: [example.com]                   # and every subdomain
//	known_pins: ["sha256/…"]                 # SPKI pins of your own keys
//	known_cert_files: [server.pem]           # or certificates holding them
//	poll_interval: 5m
//	batch_size: 256
//	state_file: ct-state.json
//	backfill: false
type ctFile struct {
	Logs []struct {
		URL     string `yaml:"url"`
		KeyFile string `yaml:"key_file"`
		Name    string `yaml:"name"`
	} `yaml:"logs"`
	Domains        []string `yaml:"domains"`
	KnownPins      []string `yaml:"known_pins"`
	KnownCertFiles []string `yaml:"known_cert_files"`
	PollInterval   string   `yaml:"poll_interval"`
	BatchSize      int      `yaml:"batch_size"`
	StateFile      string   `yaml:"state_file"`
	Backfill       bool     `yaml:"backfill"`
}

// ctFlags are the flags of `warden ct watch`.
type ctFlags struct {
	config, state, interval, auditFile string
	logs, logKeys, logNames            []string
	domains, pins, certFiles           []string
	batch                              int
	once, backfill                     bool
}

// ctCmd is `warden ct`: certificate-transparency monitoring.
func ctCmd() *cobra.Command { return ctCommand(nil, time.Now) }

// ctCommand builds `warden ct`; tests pass the HTTP client that trusts
// their log, and a clock.
func ctCommand(hc *http.Client, now func() time.Time) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "ct",
		Short:         "Watch certificate-transparency logs for certificates naming your domains",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(ctWatchCmd(hc, now))
	return cmd
}

func ctWatchCmd(hc *http.Client, now func() time.Time) *cobra.Command {
	var f ctFlags
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Poll RFC 6962 logs; report certificates for your domains with unknown keys",
		Long: `Poll RFC 6962 certificate-transparency logs for certificates naming the
watched domains (and their subdomains). Every signed tree head is verified
under the log's key and against the last verified one (consistency proof), and
every new entry is proven to be in the signed tree. A certificate whose key
is not one of the known pins is reported as a critical
"ct_unknown_key_certificate" event: someone holds a certificate for your
name with a key that is not yours.

Events are printed to stdout as JSON lines (and appended to --audit). The
last verified tree head of each log is kept in --state, so a restart
continues where it stopped and does not report old entries again. A log seen
for the first time is watched from its current head (--backfill scans it
from the start; only for small logs).

Settings come from --config (YAML; see docs) and/or flags; list flags add to
the file's lists. --log and --log-key are repeated in pairs.

Exit status with --once: 0 all verified and nothing critical, 2 a critical
event was raised, 1 a log could not be polled or bad usage. Without --once
it polls every --interval until interrupted.`,
		Example: `  warden ct watch --log https://ct.example.net/2026h1 --log-key log.pem \
      --domain example.com --known-pin sha256/AAAA… --state ct-state.json --once
  warden ct watch --config ct.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := ctBuildConfig(cmd, &f)
			if err != nil {
				return &exitError{1, err}
			}
			cfg.HTTPClient, cfg.Now = hc, now
			var crit ctCriticalCounter
			sinks := []audit.Sink{audit.NewJSONSink(cmd.OutOrStdout()), &crit}
			if f.auditFile != "" {
				af, err := os.OpenFile(f.auditFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return &exitError{1, fmt.Errorf("open audit log: %w", err)}
				}
				defer af.Close()
				sinks = append(sinks, audit.NewJSONSink(af))
			}
			cfg.Audit = audit.New(sinks...)
			m, err := ct.New(cfg)
			if err != nil {
				return &exitError{1, err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "watching %d log(s) for %d domain(s) with %d known key(s); state in %s\n",
				len(cfg.Logs), len(cfg.Domains), len(cfg.KnownKeys), cfg.StateFile)
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if f.once {
				err := m.Poll(ctx)
				if crit.n.Load() > 0 {
					return &exitError{2, fmt.Errorf("%d critical certificate-transparency event(s)", crit.n.Load())}
				}
				if err != nil {
					return &exitError{1, err}
				}
				return nil
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "polling every %s; Ctrl-C to stop\n", m.Interval())
			m.Run(ctx)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "YAML file with logs, domains, known pins and settings")
	fl.StringArrayVar(&f.logs, "log", nil, "log base URL, the part before /ct/v1/ (repeatable)")
	fl.StringArrayVar(&f.logKeys, "log-key", nil, "the log's public key file, PEM or DER, one per --log")
	fl.StringArrayVar(&f.logNames, "log-name", nil, "a name for each --log in events (optional)")
	fl.StringArrayVar(&f.domains, "domain", nil, "domain to watch, with its subdomains (repeatable)")
	fl.StringArrayVar(&f.pins, "known-pin", nil, "SPKI pin of one of your keys, sha256/<base64> (repeatable)")
	fl.StringArrayVar(&f.certFiles, "known-cert", nil, "certificate file whose first certificate's key is yours (repeatable)")
	fl.StringVar(&f.state, "state", "", "state file of verified tree heads (default "+ctDefaultState+")")
	fl.StringVar(&f.interval, "interval", "", "time between polls (default 5m)")
	fl.IntVar(&f.batch, "batch-size", 0, fmt.Sprintf("entries per get-entries request (default %d, at most %d)", ct.DefaultBatchSize, ct.MaxBatchSize))
	fl.BoolVar(&f.backfill, "backfill", false, "scan logs seen for the first time from entry 0 (small logs only)")
	fl.BoolVar(&f.once, "once", false, "poll once and exit (status 2 on a critical event)")
	fl.StringVar(&f.auditFile, "audit", "", "also append events to this file")
	return cmd
}

// ctBuildConfig merges the config file and the flags into a ct.Config,
// reporting every problem at once.
func ctBuildConfig(cmd *cobra.Command, f *ctFlags) (ct.Config, error) {
	var (
		cfg       ct.Config
		errs      []error
		pins      []string
		certFiles []string
		interval  string
	)
	if f.config != "" {
		raw, err := os.ReadFile(f.config)
		if err != nil {
			return cfg, err
		}
		var file ctFile
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&file); err != nil {
			return cfg, fmt.Errorf("%s: %w", f.config, err)
		}
		rel := func(p string) string {
			if p == "" || filepath.IsAbs(p) {
				return p
			}
			return filepath.Join(filepath.Dir(f.config), p)
		}
		for i, l := range file.Logs {
			key, err := os.ReadFile(rel(l.KeyFile))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: logs[%d].key_file: %w", f.config, i, err))
			}
			cfg.Logs = append(cfg.Logs, ct.Log{URL: l.URL, PublicKey: key, Name: l.Name})
		}
		cfg.Domains = file.Domains
		pins = file.KnownPins
		for _, c := range file.KnownCertFiles {
			certFiles = append(certFiles, rel(c))
		}
		interval = file.PollInterval
		cfg.BatchSize = file.BatchSize
		cfg.StateFile = rel(file.StateFile)
		cfg.Backfill = file.Backfill
	}
	if len(f.logKeys) != len(f.logs) || len(f.logNames) > len(f.logs) {
		errs = append(errs, fmt.Errorf("%d --log, %d --log-key, %d --log-name: give one --log-key (and at most one --log-name) per --log",
			len(f.logs), len(f.logKeys), len(f.logNames)))
	} else {
		for i, u := range f.logs {
			key, err := os.ReadFile(f.logKeys[i])
			if err != nil {
				errs = append(errs, fmt.Errorf("--log-key: %w", err))
			}
			l := ct.Log{URL: u, PublicKey: key}
			if i < len(f.logNames) {
				l.Name = f.logNames[i]
			}
			cfg.Logs = append(cfg.Logs, l)
		}
	}
	cfg.Domains = append(cfg.Domains, f.domains...)
	for _, p := range append(pins, f.pins...) {
		pin, err := pki.ParsePin(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.KnownKeys = append(cfg.KnownKeys, pin)
	}
	for _, c := range append(certFiles, f.certFiles...) {
		// A cert_file, which may hold its key. ReadChain's errors name the
		// file, and a file without a certificate is one of them.
		certs, err := pki.ReadChain(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.KnownKeys = append(cfg.KnownKeys, pki.SPKIPin(certs[0]))
	}
	if cmd.Flags().Changed("interval") {
		interval = f.interval
	}
	if interval != "" {
		d, err := time.ParseDuration(interval)
		if err != nil {
			errs = append(errs, fmt.Errorf("poll interval: %w", err))
		}
		cfg.PollInterval = d
	}
	if cmd.Flags().Changed("batch-size") {
		cfg.BatchSize = f.batch
	}
	if f.state != "" {
		cfg.StateFile = f.state
	}
	if cfg.StateFile == "" {
		cfg.StateFile = ctDefaultState
	}
	if f.backfill {
		cfg.Backfill = true
	}
	return cfg, errors.Join(errs...)
}

// ctCriticalCounter counts critical events, for the exit status of --once.
type ctCriticalCounter struct{ n atomic.Int64 }

// Write implements audit.Sink.
func (c *ctCriticalCounter) Write(e audit.Event) {
	if e.Severity == audit.Critical {
		c.n.Add(1)
	}
}
