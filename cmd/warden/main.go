// Command warden is a security-first API gateway: strict TLS termination,
// verified and pinned upstreams, and an audit trail of every security
// decision. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardengw/warden/internal/audit"
	"github.com/wardengw/warden/internal/config"
	"github.com/wardengw/warden/internal/gateway"
	"github.com/wardengw/warden/internal/gctune"
)

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "Warden: an API gateway that makes man-in-the-middle attacks fail",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), demoCmd(), validateCmd(), pinCmd(), keysCmd(), stepupCmd(), certsCmd(), ctCmd(), caCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newLogger(c *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newAudit(c *config.Config) (*audit.Logger, func(), error) {
	if c.Audit.File == "-" {
		return audit.New(audit.NewJSONSink(os.Stderr)), func() {}, nil
	}
	f, err := os.OpenFile(c.PathOf(c.Audit.File), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open audit log: %w", err)
	}
	return audit.New(audit.NewJSONSink(f)), func() { f.Close() }, nil
}

func serveCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway from a config file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, warns, err := config.Load(file)
			if err != nil {
				return &exitError{1, fmt.Errorf("invalid configuration:\n%w", err)}
			}
			return run(cmd.Context(), c, warns, nil)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "warden.yaml", "config file")
	return cmd
}

// run starts the gateway and blocks until SIGINT or SIGTERM, reloading on
// SIGHUP and on file changes. ready, if set, is called once listening.
func run(ctx context.Context, c *config.Config, warns []config.Warning, ready func(*gateway.Gateway)) error {
	log := newLogger(c, os.Stderr)
	aud, closeAudit, err := newAudit(c)
	if err != nil {
		return err
	}
	defer closeAudit()
	// The GC heap floor (server.gc_heap_floor): started before the
	// gateway so that its start-up allocations already benefit, set again
	// on each reload, and the GC percent restored when run returns.
	gc := gctune.Start(uint64(c.Server.GCHeapFloor), log)
	defer gc.Stop()
	g, err := gateway.New(c, warns, gateway.Options{Audit: aud, Log: log,
		OnReload: func(c *config.Config) { gc.SetFloor(uint64(c.Server.GCHeapFloor)) }})
	if err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		return err
	}
	if err := g.Watch(ctx); err != nil {
		log.Warn("file watch unavailable; reload with SIGHUP", "err", err)
	}
	https, http, admin := g.Addrs()
	attrs := []any{"https", https.String()}
	if http != nil {
		attrs = append(attrs, "http_redirect", http.String())
	}
	if admin != nil {
		attrs = append(attrs, "admin", admin.String())
	}
	log.Info("warden listening", attrs...)
	if ready != nil {
		ready(g)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-ctx.Done():
			sig = syscall.SIGTERM
		}
		if sig == syscall.SIGHUP {
			_ = g.Reload("sighup")
			continue
		}
		timeout := g.Config().Server.ShutdownTimeout
		log.Info("shutting down: no new connections, finishing requests in flight", "signal", sig.String(), "deadline", timeout)
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := g.Shutdown(sctx)
		cancel()
		if err != nil {
			log.Warn("shutdown deadline passed; remaining connections closed", "err", err)
		}
		log.Info("stopped")
		return nil
	}
}

func validateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file; print every error with file:line:column",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, warns, err := config.Load(file)
			out := cmd.OutOrStdout()
			if err != nil {
				printErrors(cmd.ErrOrStderr(), err)
				return &exitError{1, fmt.Errorf("%s is not valid", file)}
			}
			for _, w := range warns {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.String())
			}
			fmt.Fprintf(out, "%s is valid\n", file)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "warden.yaml", "config file")
	return cmd
}

func printErrors(w io.Writer, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			printErrors(w, e)
		}
		return
	}
	fmt.Fprintln(w, "error:", err)
}

// shutdownGrace is how long demo waits for in-flight requests on Ctrl-C.
const shutdownGrace = 10 * time.Second
