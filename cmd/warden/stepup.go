package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/auth/stepup"
	"github.com/wardengw/warden/internal/store"
)

// stepupDefaultIssuer names the service in authenticator apps.
const stepupDefaultIssuer = "Warden"

// stepupCmd is `warden stepup`: enroll TOTP secrets, and list, approve
// and deny out-of-band approvals in the record store.
func stepupCmd() *cobra.Command { return stepupCommand(time.Now) }

func stepupCommand(now func() time.Time) *cobra.Command {
	var storePath string
	cmd := &cobra.Command{
		Use:   "stepup",
		Short: "Enroll TOTP secrets; list, approve and deny step-up approvals",
		Long: `Manage the stepup policy's records in the record store (--store, default
warden.db in the working directory), which every gateway sharing the store
reads on each critical request.

  warden stepup enroll --consumer NAME [--issuer Warden] [--force]
      draws a TOTP secret and prints its otpauth:// URI and base32 secret once
  warden stepup pending
      lists the approvals awaiting a decision
  warden stepup approve ID | warden stepup deny ID
      decides one; an approved request works once, for its consumer and body`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&storePath, "store", keysDefaultStore, "record store file")
	cmd.AddCommand(stepupEnrollCmd(&storePath, now), stepupPendingCmd(&storePath, now),
		stepupDecideCmd(&storePath, now, true), stepupDecideCmd(&storePath, now, false))
	return cmd
}

func stepupEnrollCmd(storePath *string, now func() time.Time) *cobra.Command {
	var consumer, issuer string
	var force bool
	cmd := &cobra.Command{
		Use:   "enroll --consumer NAME [--issuer Warden] [--force]",
		Short: "Enroll a consumer for TOTP and print its secret once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !keysValidConsumer(consumer) {
				return fmt.Errorf("--consumer: %q: want 1-128 letters, digits and . _ - : @, starting with a letter or digit", consumer)
			}
			if issuer == "" || len(issuer) > 64 {
				return fmt.Errorf("--issuer: want 1 to 64 characters")
			}
			s, err := keysOpenStore(*storePath, "")
			if err != nil {
				return err
			}
			defer s.Close()
			secret, err := stepup.Enroll(cmd.Context(), s, consumer, now().UTC(), force)
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("consumer %q is already enrolled; --force replaces its secret (the old one stops working)", consumer)
			}
			if err != nil {
				return err
			}
			// Committed: only now is the secret shown.
			errw := cmd.ErrOrStderr()
			fmt.Fprintf(errw, "Enrolled consumer %q for TOTP (SHA1, 6 digits, 30 s).\n", consumer)
			fmt.Fprintln(errw, "The secret is shown once: add it to the consumer's authenticator now (the URI can be a QR code).")
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, stepup.URI(issuer, consumer, secret))
			fmt.Fprintln(out, stepup.EncodeSecret(secret))
			return nil
		},
	}
	cmd.Flags().StringVar(&consumer, "consumer", "", "consumer to enroll (required)")
	cmd.Flags().StringVar(&issuer, "issuer", stepupDefaultIssuer, "issuer shown by authenticator apps")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing enrollment")
	_ = cmd.MarkFlagRequired("consumer")
	return cmd
}

func stepupPendingCmd(storePath *string, now func() time.Time) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "pending [--all]",
		Short: "List approvals awaiting a decision (--all: every approval)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := keysOpenStore(*storePath, adviceStepup)
			if err != nil {
				return err
			}
			defer s.Close()
			state := store.ApprovalPending
			if all {
				state = ""
			}
			t := now().UTC()
			as, err := stepup.ListApprovals(cmd.Context(), s, state, stepup.MaxListLimit, t)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tCONSUMER\tROUTE\tREQUEST\tREMOTE\tCREATED\tEXPIRES")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", a.ID, stepup.State(a, t), a.Consumer, a.Route,
					a.Method, a.Target, a.Remote, a.CreatedAt.Format(time.RFC3339), a.ExpiresAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list approvals in every state")
	return cmd
}

func stepupDecideCmd(storePath *string, now func() time.Time, approve bool) *cobra.Command {
	verb, past := "deny", "Denied"
	if approve {
		verb, past = "approve", "Approved"
	}
	return &cobra.Command{
		Use:   verb + " ID",
		Short: map[bool]string{true: "Approve a pending request: it may then go through once", false: "Deny a pending request"}[approve],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !stepup.ValidApprovalID(id) {
				return fmt.Errorf("%q is not an approval id (apr_ and 32 hex digits)", id)
			}
			s, err := keysOpenStore(*storePath, adviceStepup)
			if err != nil {
				return err
			}
			defer s.Close()
			a, err := s.DecideApproval(cmd.Context(), id, approve, stepupOperator(), now().UTC())
			switch {
			case errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("no approval with id %s", id)
			case errors.Is(err, store.ErrNotPending):
				return fmt.Errorf("approval %s is already %s", id, a.State)
			case errors.Is(err, store.ErrApprovalExpired):
				return fmt.Errorf("approval %s expired at %s", id, a.ExpiresAt.Format(time.RFC3339))
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s %s of consumer %q on route %q (until %s).\n", past, id,
				a.Method, a.Target, a.Consumer, a.Route, a.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
}

// stepupOperator names who decided, for the record: the OS user.
func stepupOperator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	} else if v := os.Getenv("USER"); v != "" {
		name = v
	}
	return "cli:" + name
}
