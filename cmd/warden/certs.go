package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki/expiry"
)

// Exit codes of `warden certs`, those of monitoring plugins (Nagios,
// Icinga, Sensu), so that a cron job or check can alert on them.
const (
	certsExitOK       = 0 // every certificate valid for longer than --warn
	certsExitWarning  = 1 // one expires within --warn
	certsExitCritical = 2 // one is expired or not yet valid
	certsExitUnknown  = 3 // the config or a certificate file cannot be read (a managed certificate not obtained yet is no error)
)

// certsCmd is `warden certs`: every certificate the config makes the
// gateway use or trust, with its state.
func certsCmd() *cobra.Command { return certsCommand(time.Now) }

func certsCommand(now func() time.Time) *cobra.Command {
	var file, warn string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "certs [-c warden.yaml] [--json] [--warn 30d]",
		Short: "List every certificate the gateway uses or trusts, with its expiry state",
		Long: `List every certificate the config makes the gateway use or trust: server
chains (from files, and those the gateway obtains itself from its internal CA
or by ACME, as it persisted them), client CA bundles (the listener's and each
mtls policy's), admin client CAs, and each upstream's CA bundle and client
certificate. Each has a state: ok, expiring (within --warn), expired or
not_yet_valid; a certificate the gateway obtains itself and has not obtained
yet is not_obtained, which is not an error. Only files are read: nothing is
issued or requested. Upstream pin sets are
checked too: one without a backup pin, or matching no local certificate, is
listed under "pins" (for information: pins usually name the upstream's own
keys, which only the live endpoint shows; see "warden pin").

Exit status, as monitoring plugins report it:
  0  every certificate is valid for longer than --warn
  1  warning: a certificate expires within --warn
  2  critical: a certificate is expired or not yet valid
  3  unknown: the config or a certificate file cannot be read`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := expiry.ParseThreshold(warn)
			if err != nil {
				return &exitError{certsExitUnknown, fmt.Errorf("--warn: %w", err)}
			}
			cfg, _, err := config.Load(file)
			if err != nil {
				printErrors(cmd.ErrOrStderr(), err)
				return &exitError{certsExitUnknown, fmt.Errorf("%s is not valid", file)}
			}
			rep, loadErr := expiry.Inventory(cfg, now(), window)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				certsPrint(out, rep)
			}
			if loadErr != nil {
				printErrors(cmd.ErrOrStderr(), loadErr)
				return &exitError{certsExitUnknown, fmt.Errorf("some certificates could not be read")}
			}
			return certsStatus(rep)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "warden.yaml", "config file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the inventory as JSON")
	cmd.Flags().StringVar(&warn, "warn", "30d", `"expiring" window, such as 30d or 72h`)
	return cmd
}

// certsStatus turns the worst state into the exit status.
func certsStatus(rep expiry.Report) error {
	count := func(states ...string) int {
		n := 0
		for _, e := range rep.Entries {
			for _, s := range states {
				if e.State == s {
					n++
				}
			}
		}
		return n
	}
	switch rep.Worst() {
	case expiry.StateExpired, expiry.StateNotYetValid:
		return &exitError{certsExitCritical, fmt.Errorf("%d certificate(s) expired or not yet valid", count(expiry.StateExpired, expiry.StateNotYetValid))}
	case expiry.StateExpiring:
		return &exitError{certsExitWarning, fmt.Errorf("%d certificate(s) expiring soon", count(expiry.StateExpiring))}
	}
	return nil
}

func certsPrint(w io.Writer, rep expiry.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USE\tNAME\tSUBJECT\tSERIAL\tNOT AFTER\tSTATE\tLEFT\tFILE")
	for _, e := range rep.Entries {
		name := e.Name
		if e.Source != "" {
			name = e.Source + " " + name
		}
		if name == "" {
			name = "-"
		}
		state := e.State
		if e.Pinned {
			state += " (pinned)"
		}
		if e.State == expiry.StateNotObtained { // nothing to describe yet
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\t-\t%s\n", e.Use, name, state, e.File)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Use, name, e.Subject, e.Serial,
			e.NotAfter.UTC().Format(time.RFC3339), state, certsLeft(e.SecondsLeft), e.File)
	}
	tw.Flush()
	if len(rep.Findings) > 0 {
		fmt.Fprintln(w, "\npins:")
		for _, f := range rep.Findings {
			fmt.Fprintf(w, "  %-8s %s: %s (%s)\n", f.Severity, f.Subject, f.Message, f.Kind)
		}
	}
}

// certsLeft writes seconds as days and hours: "12d3h", "-2d5h".
func certsLeft(s int64) string {
	sign := ""
	if s < 0 {
		sign, s = "-", -s
	}
	d := time.Duration(s) * time.Second
	days, hours := int64(d/expiry.Day), int64(d%expiry.Day/time.Hour)
	var b strings.Builder
	b.WriteString(sign)
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	fmt.Fprintf(&b, "%dh", hours)
	return b.String()
}
