package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/pki/enroll"
)

// caTokenCmd makes a one-time enrollment token: a new client exchanges it,
// once, at the gateway's /.well-known/warden/pki/enroll for its first
// certificate, for the names the token allows.
func caTokenCmd(now func() time.Time) *cobra.Command {
	var consumer, cn, storePath string
	var dns, uris []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token --consumer NAME (--cn NAME | --dns NAME | --uri URI)... [--ttl 1h]",
		Short: "Create a one-time enrollment token (printed once; only its hash is stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := keysOpenStore(storePath, adviceCA)
			if err != nil {
				return err
			}
			defer s.Close()
			tok, err := enroll.CreateToken(cmd.Context(), s, enroll.Constraints{Consumer: consumer, CommonName: cn, DNSNames: dns, URIs: uris}, ttl, now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "enrollment token for %s, valid %s, usable once (shown once; not stored):\n", consumer, ttl)
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&consumer, "consumer", "", "consumer the certificate is for (required)")
	f.StringVar(&cn, "cn", "", "common name the certificate may have")
	f.StringSliceVar(&dns, "dns", nil, "DNS name the certificate may have (repeatable)")
	f.StringSliceVar(&uris, "uri", nil, "URI SAN the certificate may have, e.g. spiffe://… (repeatable)")
	f.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	f.StringVar(&storePath, "store", caDefaultStore, "record store file")
	_ = now
	return cmd
}
