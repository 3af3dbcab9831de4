package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/pki"
)

func pinCmd() *cobra.Command {
	var caFile, serverName string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "pin <host:port | file.pem>",
		Short: "Print the SPKI SHA-256 pins of a live endpoint's chain or of a PEM file",
		Long: `Print the SPKI SHA-256 pins of a certificate chain, in the form an
upstream's "pins" list takes. For a live endpoint the chain is verified first
(system roots, or --ca), so that a man in the middle cannot hand you his pin;
--insecure-skip-verify prints unverified pins, with a warning.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := args[0]
			var chain []*x509.Certificate
			var err error
			if _, statErr := os.Stat(target); statErr == nil {
				chain, err = pki.ReadChain(target) // a cert_file may hold its key: skipped
			} else {
				chain, err = fetchChain(cmd.Context(), target, caFile, serverName, insecure, cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			printPins(cmd.OutOrStdout(), chain)
			return nil
		},
	}
	cmd.Flags().StringVar(&caFile, "ca", "", "verify the endpoint against this CA bundle instead of the system roots")
	cmd.Flags().StringVar(&serverName, "servername", "", "name to verify (and send as SNI) instead of the host")
	cmd.Flags().BoolVar(&insecure, "insecure-skip-verify", false, "print pins without verifying the chain (unsafe)")
	return cmd
}

func fetchChain(ctx context.Context, addr, caFile, serverName string, insecure bool, warn io.Writer) ([]*x509.Certificate, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q is neither a file nor host:port", addr)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if serverName != "" {
		cfg.ServerName = serverName
	}
	if caFile != "" {
		if cfg.RootCAs, err = config.LoadCertPool(caFile); err != nil {
			return nil, err
		}
	}
	if insecure {
		fmt.Fprintln(warn, "warning: --insecure-skip-verify: these pins are NOT verified; a man in the middle could have supplied them")
		cfg.InsecureSkipVerify = true
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := &tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	if len(st.VerifiedChains) > 0 {
		return st.VerifiedChains[0], nil
	}
	return st.PeerCertificates, nil
}

func printPins(w io.Writer, chain []*x509.Certificate) {
	fmt.Fprintln(w, "pins:")
	for i, c := range chain {
		role := "intermediate"
		switch {
		case i == 0 && !c.IsCA:
			role = "leaf"
		case c.IsCA && string(c.RawIssuer) == string(c.RawSubject):
			role = "root"
		}
		name := c.Subject.CommonName
		if name == "" {
			name = strings.Join(c.DNSNames, ",")
		}
		fmt.Fprintf(w, "  - %s  # %s: %s, expires %s\n", pki.SPKIPin(c), role, name, c.NotAfter.UTC().Format("2006-01-02"))
	}
}
