package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/lab/sim/appliance"
)

// Exit codes: 0 every expectation met, 1 an expectation not met, 2 an error.
const (
	exitOK      = 0
	exitUnmet   = 1
	exitFailure = 2
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withExit(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	if appliance.Booted() { // /init of a `wfplab sim appliance` VM; never returns
		appliance.Init()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != exitUnmet {
			fmt.Fprintln(stderr, "wfplab:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "wfplab:", err)
	return exitFailure
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "wfplab",
		Short: "Reproduce and benchmark KB979223, the WFP multi-NBL nonpaged pool leak",
		Long: `wfplab drives Windows Vista/7/2008/2008 R2 guests over WinRM: it installs a WFP test
callout driver, sends traffic that Windows indicates as multi-NBL chains, which the driver
blocks, samples nonpaged pool, and reports the leak rate before and after the hotfix.
Without real VMs it runs on built-in simulated guests.`,
		Version:       toolVersion() + " (" + goVersion() + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newReportCmd(), newCompareCmd(), newCheckCmd(), newSimCmd(), newTrafficCmd())
	return root
}
