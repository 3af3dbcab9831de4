package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// runCommand runs cmd in process with args and returns what it wrote to
// stdout and stderr, and its error.
func runCommand(cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return o.String(), e.String(), err
}

// exitCode is the exit status err stands for: 0 for nil, the code of an
// *exitError; any other error fails the test (a command with documented
// exit codes returns only those).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	t.Fatalf("untyped error: %v", err)
	return 0
}

// at is a clock stopped at now.
func at(now time.Time) func() time.Time { return func() time.Time { return now } }
