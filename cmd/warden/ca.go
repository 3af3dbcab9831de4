package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/pki"
	"github.com/wardengw/warden/internal/pki/ca"
	"github.com/wardengw/warden/internal/store"
)

// Defaults of `warden ca`.
const (
	caDefaultDir   = "ca"
	caDefaultStore = "warden.db"
)

// caCmd is `warden ca`: create the internal CA, issue certificates from
// CSRs, revoke and list them.
func caCmd() *cobra.Command { return caCommand(time.Now) }

// caPassphrase is the --passphrase-env / --passphrase-file pair.
type caPassphrase struct{ env, file string }

func (p *caPassphrase) flags(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&p.env, "passphrase-env", "", "environment variable holding the passphrase "+what)
	cmd.Flags().StringVar(&p.file, "passphrase-file", "", "file holding the passphrase "+what+" (one trailing newline ignored)")
	cmd.MarkFlagsMutuallyExclusive("passphrase-env", "passphrase-file")
}

// read returns the passphrase, nil if neither flag is set.
func (p *caPassphrase) read() ([]byte, error) {
	switch {
	case p.env != "":
		v, ok := os.LookupEnv(p.env)
		if !ok || v == "" {
			return nil, fmt.Errorf("--passphrase-env: %s is not set or empty", p.env)
		}
		return []byte(v), nil
	case p.file != "":
		b, err := os.ReadFile(p.file)
		if err != nil {
			return nil, fmt.Errorf("--passphrase-file: %w", err)
		}
		b = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
		if len(b) == 0 {
			return nil, fmt.Errorf("--passphrase-file: %s is empty", p.file)
		}
		return b, nil
	}
	return nil, nil
}

func caCommand(now func() time.Time) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Run Warden's internal CA: init, issue, revoke, list",
		Long: `Warden's internal certificate authority: a root and an intermediate
(--dir, default ./ca), certificates issued from CSRs (the requester's private
key never leaves it), and revocations that the gateway publishes as a signed
CRL and through its OCSP responder.

Every certificate is recorded in the record store (--store) before it is
written out, so that nothing is ever issued that cannot be revoked.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", caDefaultDir, "CA folder")
	cmd.AddCommand(caInitCmd(&dir, now), caIssueCmd(&dir, now), caRevokeCmd(&dir, now), caListCmd(&dir, now), caTokenCmd(now))
	return cmd
}

func caInitCmd(dir *string, now func() time.Time) *cobra.Command {
	var keyType, name, publishURL string
	var dns, uris, ips, emails []string
	var pass caPassphrase
	cmd := &cobra.Command{
		Use:   "init [--key-type ecdsa|ed25519|rsa3072] [--permit-dns example.com]... [--passphrase-env VAR | --passphrase-file F]",
		Short: "Create a root and an intermediate CA (refuses to overwrite one)",
		Long: `Create a root CA (10 years) and an intermediate (5 years, path length 0)
in --dir. Keys are written mode 0600, encrypted (scrypt + AES-256-GCM) when a
passphrase is given. The --permit-* flags put critical name constraints on
the intermediate; once any is given, the CA issues only names of the
constrained types. root-key.pem is needed only to make a new intermediate:
move it offline.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pass.read()
			if err != nil {
				return err
			}
			opts := ca.InitOptions{KeyType: ca.KeyType(keyType), Name: name, PermittedDNSDomains: dns,
				PermittedURIDomains: uris, PermittedEmailAddresses: emails, PublishURL: publishURL, Passphrase: p, Now: now}
			for _, s := range ips {
				_, n, err := net.ParseCIDR(s)
				if err != nil {
					return fmt.Errorf("--permit-ip %q: want a CIDR such as 10.0.0.0/8", s)
				}
				opts.PermittedIPRanges = append(opts.PermittedIPRanges, n)
			}
			if err := ca.Init(*dir, opts); err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "Created CA in %s (%s).\n", *dir, ca.KeyType(keyType))
			fmt.Fprintf(w, "  trust:  %s\n", filepath.Join(*dir, ca.RootCertFile))
			fmt.Fprintf(w, "  chain:  %s\n", filepath.Join(*dir, ca.IntermediateCertFile))
			if p == nil {
				fmt.Fprintln(w, "  keys are NOT encrypted: protect the folder, or re-create it with --passphrase-env/--passphrase-file.")
			}
			if publishURL == "" {
				fmt.Fprintln(w, "  no --publish-url: give one to `warden ca issue`.")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyType, "key-type", string(ca.KeyECDSAP256), "key type: ecdsa (P-256), ed25519 or rsa3072")
	f.StringVar(&name, "name", "Warden", "CA name (common names \"<name> Root CA\", \"<name> Intermediate CA\")")
	f.StringArrayVar(&dns, "permit-dns", nil, "permitted DNS domain (repeatable); .example.com for subdomains only")
	f.StringArrayVar(&uris, "permit-uri", nil, "permitted URI host domain, e.g. a SPIFFE trust domain (repeatable)")
	f.StringArrayVar(&ips, "permit-ip", nil, "permitted IP range, CIDR (repeatable)")
	f.StringArrayVar(&emails, "permit-email", nil, "permitted email address or domain (repeatable)")
	f.StringVar(&publishURL, "publish-url", "", "default base URL of the gateway's CRL/OCSP endpoint, e.g. https://gw.example:8443/.well-known/warden/pki")
	pass.flags(cmd, "encrypting the keys")
	return cmd
}

func caIssueCmd(dir *string, now func() time.Time) *cobra.Command {
	var csrPath, profile, out, storePath, publishURL string
	var days, hours int
	var pass caPassphrase
	cmd := &cobra.Command{
		Use:   "issue --csr req.pem --profile client|server [--days N | --hours N] [--out cert.pem]",
		Short: "Issue a certificate from a CSR (recorded before it is written out)",
		Long: `Issue a client (24 hours by default) or server (90 days) certificate
from a PKCS#10 CSR. Every name is checked against the CA's constraints and the
key type against the allowed ones (ECDSA P-256/P-384, Ed25519, RSA >= 2048)
before anything is signed. The certificate is recorded in --store, then
written to --out (or stdout) followed by the intermediate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var life time.Duration
			switch {
			case days < 0 || hours < 0:
				return errors.New("--days and --hours must not be negative")
			case days > 0:
				life = time.Duration(days) * 24 * time.Hour
			case hours > 0:
				life = time.Duration(hours) * time.Hour
			}
			csr, err := os.ReadFile(csrPath)
			if err != nil {
				return fmt.Errorf("--csr: %w", err)
			}
			p, err := pass.read()
			if err != nil {
				return err
			}
			s, err := store.Open(storePath)
			if err != nil {
				return err
			}
			defer s.Close()
			c, err := ca.Load(*dir, p, ca.Config{Records: s, PublishURL: publishURL, Now: now})
			if errors.Is(err, ca.ErrKeyEncrypted) {
				return fmt.Errorf("%w (give --passphrase-env or --passphrase-file)", err)
			}
			if err != nil {
				return err
			}
			cert, err := c.Issue(cmd.Context(), ca.IssueRequest{CSR: csr, Profile: ca.Profile(profile), Lifetime: life})
			if err != nil {
				return err
			}
			// Recorded: only now is it written out.
			chain := append(caPEM(cert.Raw), caPEM(c.Intermediate.Raw)...)
			if out == "" || out == "-" {
				if _, err := cmd.OutOrStdout().Write(chain); err != nil {
					return err
				}
			} else if err := pki.WriteFileAtomic(out, 0o644, chain); err != nil {
				return fmt.Errorf("certificate %s is issued and recorded, but: %w (`warden ca list` shows it)", ca.SerialString(cert.SerialNumber), err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Issued %s certificate serial %s for %q, valid until %s.\n",
				profile, ca.SerialString(cert.SerialNumber), cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&csrPath, "csr", "", "PEM or DER certificate request (required)")
	f.StringVar(&profile, "profile", "", "client or server (required)")
	f.IntVar(&days, "days", 0, "lifetime in days (default: 1 for client, 90 for server)")
	f.IntVar(&hours, "hours", 0, "lifetime in hours")
	f.StringVar(&out, "out", "", "write the certificate and the intermediate here (default stdout)")
	f.StringVar(&storePath, "store", caDefaultStore, "record store file")
	f.StringVar(&publishURL, "publish-url", "", "base URL of the gateway's CRL/OCSP endpoint (default: the one given to init)")
	pass.flags(cmd, "of the CA keys")
	cmd.MarkFlagsMutuallyExclusive("days", "hours")
	_ = cmd.MarkFlagRequired("csr")
	_ = cmd.MarkFlagRequired("profile")
	return cmd
}

func caRevokeCmd(dir *string, now func() time.Time) *cobra.Command {
	var reason, storePath string
	cmd := &cobra.Command{
		Use:   "revoke SERIAL --reason keyCompromise",
		Short: "Revoke a certificate: published in the next CRL and OCSP answers",
		Long: `Record the revocation of a certificate this CA issued. Reasons (RFC 5280):
unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
cessationOfOperation, privilegeWithdrawn, aACompromise. Revocation is final.
Gateways sharing the store publish it on their next refresh; the CA key is
not needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serial, err := ca.ParseSerial(args[0])
			if err != nil {
				return err
			}
			_, inter, err := ca.LoadCertificates(*dir)
			if err != nil {
				return err
			}
			s, err := keysOpenStore(storePath, adviceCA)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := ca.RevokeRecord(cmd.Context(), s, ca.IssuerID(inter), serial, reason, now().UTC()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Revoked certificate serial %s (%s).\n", ca.SerialString(serial), reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "RFC 5280 reason (required), e.g. keyCompromise")
	cmd.Flags().StringVar(&storePath, "store", caDefaultStore, "record store file")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func caListCmd(dir *string, now func() time.Time) *cobra.Command {
	var storePath string
	var all bool
	cmd := &cobra.Command{
		Use:   "list [--all]",
		Short: "List the certificates this CA issued, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			issuer := ""
			if !all {
				_, inter, err := ca.LoadCertificates(*dir)
				if err != nil {
					return fmt.Errorf("%w (or --all for every CA's certificates)", err)
				}
				issuer = ca.IssuerID(inter)
			}
			s, err := keysOpenStore(storePath, adviceCA)
			if err != nil {
				return err
			}
			defer s.Close()
			certs, err := s.ListIssued(cmd.Context(), issuer, 0)
			if err != nil {
				return err
			}
			caList(cmd.OutOrStdout(), certs, now())
			return nil
		},
	}
	cmd.Flags().StringVar(&storePath, "store", caDefaultStore, "record store file")
	cmd.Flags().BoolVar(&all, "all", false, "certificates of every CA in the store")
	return cmd
}

func caList(w io.Writer, certs []store.IssuedCert, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tPROFILE\tSUBJECT\tNAMES\tNOT AFTER\tSTATE")
	for _, c := range certs {
		state := "valid"
		switch {
		case c.Revoked():
			state = fmt.Sprintf("revoked %s (%s)", c.RevokedAt.Format(time.RFC3339), caReasonName(c.Reason))
		case now.After(c.NotAfter):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Profile, c.Subject, strings.Join(c.SANs, ","),
			c.NotAfter.Format(time.RFC3339), state)
	}
	_ = tw.Flush()
}

func caReasonName(code int) string {
	for n, c := range ca.Reasons {
		if c == code {
			return n
		}
	}
	return fmt.Sprintf("reason %d", code)
}

func caPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
