package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
)

func newCheckCmd() *cobra.Command {
	var live bool
	cmd := &cobra.Command{
		Use:   "check SCENARIO...",
		Short: "Validate scenarios, find offline what would stop a run, and with --live ask each guest",
		Long: `Check loads each scenario (a file, or a built-in name), lists its cells, and finds offline
what would stop a run: a provider that is not available, tools or images missing, a password
variable unset or a password file others can read, hotfix packages missing. With --live it
also brings the guests up and asks each one over WinRM, changing nothing: WinRM reachable,
credentials, OS build and architecture, netio.sys's version and KB979223 state, test signing,
the driver, free disk; a table with a next step for each problem. Exit 2 on any problem.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				sc, err := scenarios.Open(path)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					failed = true
					continue
				}
				if err := preflight(sc); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: valid, but it cannot run here: %v\n", path, err)
					failed = true
					continue
				}
				cells := sc.Cells()
				n := 0
				for _, c := range cells {
					if c.Expect != "" {
						n++
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: scenario %s: %d targets, %d phases, %d profiles, %d cells, %d expectations\n",
					path, sc.Name, len(sc.Targets), len(sc.Phases), len(sc.Profiles), len(cells), n)
				if live && !liveCheck(cmd.Context(), sc, cmd.OutOrStdout(), cmd.ErrOrStderr()) {
					failed = true
				}
			}
			if failed {
				return withExit(exitFailure, fmt.Errorf("a scenario cannot run"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "bring the guests up and ask each one over WinRM (changes nothing on them)")
	return cmd
}

// liveCheck brings the scenario's guests up, asks each what a run depends on, prints one
// table in the scenario's order, takes the guests down, and reports whether all is well.
func liveCheck(ctx context.Context, sc *scenarios.Scenario, out, errOut io.Writer) bool {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "wfplab-check-")
	if err != nil {
		fmt.Fprintln(errOut, "wfplab: check --live:", err)
		return false
	}
	defer os.RemoveAll(tmp)
	logf := func(format string, args ...any) { fmt.Fprintf(errOut, "  "+format+"\n", args...) }
	provider, _, err := providerFor(ctx, openArgs{sc: sc, seed: 1, runDir: tmp, logf: logf})
	if err != nil {
		fmt.Fprintln(errOut, "wfplab:", err)
		return false
	}
	upCtx, cancelUp := context.WithTimeout(ctx, 10*time.Minute)
	targets, upErr := provider.Up(upCtx)
	cancelUp()
	defer func() {
		downCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := provider.Down(downCtx); err != nil {
			fmt.Fprintln(errOut, "wfplab: taking guests down:", err)
		}
	}()
	byName := map[string]contract.Target{}
	for _, t := range targets {
		byName[t.Name] = t
	}
	wantUnpatched := false
	for _, ph := range sc.Phases {
		wantUnpatched = wantUnpatched || ph.Name == scenarios.PhaseBefore
	}
	found := make([][]lab.Finding, len(sc.Targets))
	var wg sync.WaitGroup
	for i, spec := range sc.Targets {
		t, ok := byName[spec.Name]
		if !ok {
			msg := "did not come up"
			if upErr != nil {
				msg += ": " + upErr.Error()
			}
			found[i] = []lab.Finding{{Check: "up", Problem: msg, Next: "see the provider's message"}}
			continue
		}
		wg.Add(1)
		go func(i int, t contract.Target) {
			defer wg.Done()
			g, err := lab.Dial(t, lab.Options{CommandTimeout: 30 * time.Second})
			if err != nil {
				found[i] = []lab.Finding{{Check: "WinRM", Problem: err.Error(), Next: "fix the target's definition"}}
				return
			}
			defer g.Close()
			found[i] = g.Health(ctx, wantUnpatched)
		}(i, t)
	}
	wg.Wait() // each Health call is bounded by ctx and the session's timeouts
	ok := true
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tCHECK\tVALUE\tSTATUS\tNEXT STEP")
	for i, spec := range sc.Targets {
		for _, f := range found[i] {
			status := "ok"
			if f.Problem != "" {
				status, ok = "PROBLEM: "+f.Problem, false
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", spec.Name, f.Check, f.Value, status, f.Next)
		}
	}
	tw.Flush()
	return ok
}
