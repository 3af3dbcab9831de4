package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/demo"
	"github.com/wardengw/warden/internal/gateway"
	"github.com/wardengw/warden/internal/pki"
)

func demoCmd() *cobra.Command {
	var dir, listen, httpAddr, admin string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local gateway with a generated dev PKI and a demo upstream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pki.LoadOrCreateDevPKI(dir)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			up, upAddr, err := demo.StartUpstream(p, log)
			if err != nil {
				return err
			}
			defer up.Close()
			path, err := demo.WriteConfig(p, demo.Addresses{HTTPS: listen, HTTP: httpAddr, Admin: admin, Upstream: upAddr.String()})
			if err != nil {
				return err
			}
			c, warns, err := config.Load(path)
			if err != nil {
				return fmt.Errorf("demo config:\n%w", err)
			}
			return run(cmd.Context(), c, warns, func(g *gateway.Gateway) {
				printDemo(cmd.OutOrStdout(), dir, g)
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".warden-demo", "state folder for the dev PKI and config (reused on later runs)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "HTTPS listen address")
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8080", "plain-HTTP (redirect only) listen address")
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:9443", "admin (metrics) listen address")
	return cmd
}

func printDemo(w io.Writer, dir string, g *gateway.Gateway) {
	https, http, admin := g.Addrs()
	port := func(a net.Addr) int { return a.(*net.TCPAddr).Port }
	d := dir
	if !filepath.IsAbs(d) {
		d = "./" + filepath.Clean(d)
	}
	ca := d + "/ca.pem"
	fmt.Fprintf(w, `
Warden demo is running (config: %[1]s/warden.yaml). Ctrl-C stops it.

  # HTTPS, server-authenticated: the demo upstream echoes what it received
  curl --cacert %[2]s https://localhost:%[3]d/public/hello

  # mutual TLS: the /secure/ route needs the demo client certificate
  curl --cacert %[2]s --cert %[1]s/client.pem --key %[1]s/client-key.pem https://localhost:%[3]d/secure/hello

  # refused: /secure/ without a client certificate (401, problem+json)
  curl --cacert %[2]s https://localhost:%[3]d/secure/hello

  # plain HTTP only redirects to HTTPS (308)
  curl -i http://localhost:%[4]d/public/hello

  # Prometheus metrics on the admin listener
  curl --cacert %[2]s https://localhost:%[5]d/metrics

`, d, ca, port(https), port(http), port(admin))
}

var _ = context.Background
