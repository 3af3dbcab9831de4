package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/auth/apikey"
	"github.com/wardengw/warden/internal/store"
)

// Defaults of `warden keys`.
const (
	keysDefaultStore   = "warden.db"
	keysDefaultExpires = "90d"
	keysDefaultOverlap = "24h"
)

// keysCmd is `warden keys`: create, list, revoke and rotate API keys in
// the record store.
func keysCmd() *cobra.Command { return keysCommand(time.Now) }

func keysCommand(now func() time.Time) *cobra.Command {
	var storePath string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, revoke and rotate API keys",
		Long: `Manage the API keys the api_key policy accepts. Keys live in the record
store (--store, default warden.db in the working directory), which the gateway
reads on every request: a revocation or rotation takes effect on the next
request, on every gateway sharing the store.

A key is shown once, when it is created or rotated, and only after its record
is committed; the store keeps a hash of it, never the key.`,
		Args: cobra.NoArgs,
		// As under the root command: errors are reported once, by the
		// caller, without the usage text.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&storePath, "store", keysDefaultStore, "record store file")
	cmd.AddCommand(keysCreateCmd(&storePath, now), keysListCmd(&storePath, now),
		keysRevokeCmd(&storePath, now), keysRotateCmd(&storePath, now))
	return cmd
}

func keysCreateCmd(storePath *string, now func() time.Time) *cobra.Command {
	var consumer, expires string
	var metadata []string
	cmd := &cobra.Command{
		Use:   "create --consumer NAME [--expires 90d] [--metadata k=v]...",
		Short: "Create an API key for a consumer (created if needed) and print it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !keysValidConsumer(consumer) {
				return fmt.Errorf("--consumer: %q: want 1-128 letters, digits and . _ - : @, starting with a letter or digit", consumer)
			}
			life, err := keysParseLifetime(expires)
			if err != nil {
				return fmt.Errorf("--expires: %w", err)
			}
			meta, err := keysParseMetadata(metadata)
			if err != nil {
				return fmt.Errorf("--metadata: %w", err)
			}
			s, err := keysOpenStore(*storePath, "")
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, t := cmd.Context(), now().UTC()
			created, err := keysEnsureConsumer(ctx, s, consumer, meta, t)
			if err != nil {
				return err
			}
			k, rec, err := apikey.Issue(ctx, s, consumer, t, keysExpiryAt(t, life))
			if err != nil {
				return err
			}
			// Committed: only now is the key shown.
			errw := cmd.ErrOrStderr()
			if created {
				fmt.Fprintf(errw, "Created consumer %q.\n", consumer)
			}
			fmt.Fprintf(errw, "Created API key %s for consumer %q, %s.\n", rec.ID, consumer, keysDescribeExpiry(rec.ExpiresAt))
			keysShow(cmd.OutOrStdout(), errw, k)
			return nil
		},
	}
	cmd.Flags().StringVar(&consumer, "consumer", "", "consumer the key belongs to (required)")
	cmd.Flags().StringVar(&expires, "expires", keysDefaultExpires, `key lifetime: a number of days ("90d") or a Go duration ("36h"); "never" for no expiry`)
	cmd.Flags().StringArrayVar(&metadata, "metadata", nil, "consumer metadata as key=value (repeatable), recorded when the consumer is created")
	_ = cmd.MarkFlagRequired("consumer")
	return cmd
}

func keysListCmd(storePath *string, now func() time.Time) *cobra.Command {
	var consumer string
	cmd := &cobra.Command{
		Use:   "list [--consumer NAME]",
		Short: "List API keys (ids and states; never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := keysOpenStore(*storePath, adviceKeys)
			if err != nil {
				return err
			}
			defer s.Close()
			keys, err := s.ListKeys(cmd.Context(), consumer)
			if err != nil {
				return err
			}
			t := now().UTC()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCONSUMER\tCREATED\tEXPIRES\tSTATE")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Consumer, k.CreatedAt.Format(time.RFC3339),
					keysTime(k.ExpiresAt), keysState(k, t))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&consumer, "consumer", "", "only this consumer's keys")
	return cmd
}

func keysRevokeCmd(storePath *string, now func() time.Time) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key: refused from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := keysOpenStore(*storePath, adviceKeys)
			if err != nil {
				return err
			}
			defer s.Close()
			id := keysLookupID(args[0])
			if err := s.RevokeKey(cmd.Context(), id, now().UTC()); err != nil {
				return keysNotFound(err, id)
			}
			rec, err := s.KeyByLookupID(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked API key %s of consumer %q (at %s).\n", id, rec.Consumer, rec.RevokedAt.Format(time.RFC3339))
			return nil
		},
	}
}

func keysRotateCmd(storePath *string, now func() time.Time) *cobra.Command {
	var overlap, expires string
	cmd := &cobra.Command{
		Use:   "rotate ID [--overlap 24h] [--expires 90d]",
		Short: "Replace an API key: print the new key once; the old one works until the overlap ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ov, err := keysParseDuration(overlap)
			if err != nil || ov < 0 {
				return fmt.Errorf("--overlap: %q: want a non-negative number of days (\"1d\") or Go duration (\"24h\")", overlap)
			}
			s, err := keysOpenStore(*storePath, adviceKeys)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, t, id := cmd.Context(), now().UTC(), keysLookupID(args[0])
			old, err := s.KeyByLookupID(ctx, id)
			if err != nil {
				return keysNotFound(err, id)
			}
			// By default the new key lives as long as the old one did.
			var life time.Duration
			if !old.ExpiresAt.IsZero() {
				life = old.ExpiresAt.Sub(old.CreatedAt)
			}
			if cmd.Flags().Changed("expires") {
				if life, err = keysParseLifetime(expires); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			k, rec, err := apikey.Rotate(ctx, s, id, t, keysExpiryAt(t, life), t.Add(ov))
			if err != nil {
				return keysNotFound(err, id)
			}
			errw := cmd.ErrOrStderr()
			fmt.Fprintf(errw, "Rotated API key %s of consumer %q: it works until %s; its replacement is %s, %s.\n",
				id, rec.Consumer, t.Add(ov).Format(time.RFC3339), rec.ID, keysDescribeExpiry(rec.ExpiresAt))
			keysShow(cmd.OutOrStdout(), errw, k)
			return nil
		},
	}
	cmd.Flags().StringVar(&overlap, "overlap", keysDefaultOverlap, "how long the old key keeps working")
	cmd.Flags().StringVar(&expires, "expires", "", `new key's lifetime ("90d", "36h", "never"); default: the old key's lifetime`)
	return cmd
}

// keysShow prints the key alone on stdout (so that scripts can capture it)
// and the warning on stderr.
func keysShow(out, errw io.Writer, k apikey.Key) {
	fmt.Fprintln(errw, "This key is shown once and cannot be recovered: store it now in a secret manager.")
	fmt.Fprintln(out, k.Reveal())
}

// keysOpenStore opens the store file. With advice empty (the commands
// that create records: keys create, stepup enroll) a missing file is
// created; otherwise a missing file is an error rather than a new empty
// store, and advice, which says where the store comes from for the
// command at hand, completes the message.
func keysOpenStore(path, advice string) (*store.Store, error) {
	if advice != "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no record store at %s (%s)", path, advice)
		}
	}
	return store.Open(path)
}

// Advice of keysOpenStore when the store file is missing.
const (
	adviceKeys   = "create a key first, or pass --store"
	adviceStepup = "the gateway records step-up requests in its store.path: pass it with --store"
	adviceCA     = "the CA's records are in the gateway's store.path: pass it with --store"
)

// keysEnsureConsumer creates the consumer if it does not exist. Metadata for
// an existing consumer must match what it has.
func keysEnsureConsumer(ctx context.Context, s *store.Store, name string, meta map[string]string, now time.Time) (created bool, err error) {
	c, err := s.Consumer(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		err = s.CreateConsumer(ctx, store.Consumer{Name: name, Metadata: meta, CreatedAt: now})
		if errors.Is(err, store.ErrExists) { // created meanwhile by another process
			return keysEnsureConsumer(ctx, s, name, meta, now)
		}
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	if len(meta) > 0 && !maps.Equal(meta, c.Metadata) {
		return false, fmt.Errorf("consumer %q exists with other metadata; --metadata only applies to a new consumer", name)
	}
	return false, nil
}

// keyID accepts a lookup id, or a whole key pasted by mistake (only its
// lookup id is used).
func keysLookupID(arg string) string {
	if k, err := apikey.Parse(arg); err == nil {
		return k.LookupID()
	}
	return arg
}

func keysNotFound(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no API key with id %s", id)
	}
	return err
}

func keysState(k store.APIKey, now time.Time) string {
	switch apikey.Status(k, now) {
	case apikey.ReasonRevoked:
		return "revoked"
	case apikey.ReasonExpired:
		if k.ReplacedBy != "" {
			return "replaced by " + k.ReplacedBy
		}
		return "expired"
	case apikey.ReasonConsumerDisabled:
		return "consumer disabled"
	}
	if k.ReplacedBy != "" {
		return "active until " + k.OverlapUntil.Format(time.RFC3339) + ", replaced by " + k.ReplacedBy
	}
	return "active"
}

func keysTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}

func keysDescribeExpiry(t time.Time) string {
	if t.IsZero() {
		return "never expires"
	}
	return "expires " + t.Format(time.RFC3339)
}

// expiryAt is now+life, or the zero time (never) for life 0.
func keysExpiryAt(now time.Time, life time.Duration) time.Time {
	if life == 0 {
		return time.Time{}
	}
	return now.Add(life)
}

// parseLifetime parses a key lifetime: "never" is 0; otherwise positive.
func keysParseLifetime(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	d, err := keysParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive number of days (\"90d\"), a Go duration (\"36h\") or \"never\"", s)
	}
	return d, nil
}

// parseDuration accepts Go durations and whole days ("90d").
func keysParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func keysParseMetadata(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

func keysValidConsumer(s string) bool {
	if s == "" || len(s) > 128 || !keysIsAlnum(s[0]) {
		return false
	}
	return !slices.ContainsFunc([]byte(s), func(b byte) bool {
		return !keysIsAlnum(b) && b != '.' && b != '_' && b != '-' && b != ':' && b != '@'
	})
}

func keysIsAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}
