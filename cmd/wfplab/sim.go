package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/lab/sim"
)

func newSimCmd() *cobra.Command {
	simCmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulated Windows guests",
	}
	var target, listen string
	var seed int64
	var quiet bool
	var hangPoolMB uint64
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run one simulated guest in the foreground until interrupted",
		Long: `Serve runs one simulated Windows guest: a WinRM server (Basic auth, user vagrant; the
password is vagrant unless WFPLAB_SIM_PASSWORD is set) and its traffic sockets, on loopback.
It prints the WinRM URL and the traffic addresses, then serves until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := sim.DefaultConfig()
			cfg.Seed = seed
			cfg.Noise = !quiet
			cfg.HangPoolBytes = hangPoolMB << 20
			if err := sim.Serve(ctx, target, listen, cfg, cmd.OutOrStdout()); err != nil {
				return withExit(exitFailure, err)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&target, "target", "win7-x64", "catalog OS of the guest (vista-sp1-x86, vista-sp2-x64, 2008-sp2-x64, win7-x86, win7-x64, 2008r2-x64)")
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:5985", "WinRM listen address (loopback only; port 0 picks one)")
	serve.Flags().Int64Var(&seed, "seed", 1, "seed for the kernel model's noise")
	serve.Flags().BoolVar(&quiet, "no-noise", false, "turn the pool's background noise off")
	serve.Flags().Uint64Var(&hangPoolMB, "hang-pool-mb", 0, "stop answering (WinRM and sampler) once nonpaged pool passes this many MiB, as Windows does when the leak exhausts pool (0: never)")
	simCmd.AddCommand(serve)
	return simCmd
}
