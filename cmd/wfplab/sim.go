package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/sim/appliance"
	"github.com/wfplab/wfplab/lab/sim/kernel"
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
	var patched bool
	var ports struct{ stream, forward, control uint16 }
	var faults, auth, caOut, winrmVersion string
	var https bool
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run one simulated guest in the foreground until interrupted",
		Long: `Serve runs one simulated Windows guest: a WinRM server (Basic and NTLM auth, user
vagrant; the password is vagrant unless WFPLAB_SIM_PASSWORD is set) and its traffic sockets,
on loopback. It prints the WinRM URL and the traffic addresses, then serves until Ctrl-C.
Vista and Server 2008 targets answer as WinRM 1.1 does (shell ids in the uuid: form;
--winrm-version 2.0 makes one with WMF 2.0). With --https it listens with TLS, its
certificate signed by a CA of its own, written to --ca-out for the scenario's ca_file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := sim.DefaultConfig()
			cfg.Seed = seed
			cfg.Noise = !quiet
			cfg.HangPoolBytes = hangPoolMB << 20
			cfg.Patched = patched
			cfg.TrafficPorts = kernel.Ports{Stream: ports.stream, Forward: ports.forward, Control: ports.control}
			f, err := contract.ParseFaults(faults)
			if err != nil {
				return withExit(exitFailure, fmt.Errorf("sim serve --faults: %w", err))
			}
			cfg.Faults = f
			switch auth {
			case "both":
				cfg.WinRMAuth = ""
			case contract.AuthBasic, contract.AuthNTLM:
				cfg.WinRMAuth = auth
			default:
				return withExit(exitFailure, fmt.Errorf("sim serve --auth %q: use basic, ntlm or both", auth))
			}
			cfg.HTTPS, cfg.ServeCAFile, cfg.WinRMVersion = https, caOut, winrmVersion
			if https && caOut == "" {
				return withExit(exitFailure, errors.New("sim serve --https needs --ca-out FILE: the guest's CA certificate goes there, for the scenario's ca_file"))
			}
			if err := sim.Serve(ctx, target, listen, cfg, cmd.OutOrStdout()); err != nil {
				return withExit(exitFailure, fmt.Errorf("%w (ports: --listen, --stream-port, --forward-port, --control-port)", err))
			}
			return nil
		},
	}
	serve.Flags().StringVar(&target, "target", "win7-x64", "catalog OS of the guest (vista-sp1-x86, vista-sp2-x64, 2008-sp2-x64, win7-x86, win7-x64, 2008r2-x64)")
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:5985", "WinRM listen address (loopback only; port 0 picks one)")
	serve.Flags().Int64Var(&seed, "seed", 1, "seed for the kernel model's noise")
	serve.Flags().BoolVar(&quiet, "no-noise", false, "turn the pool's background noise off")
	serve.Flags().Uint64Var(&hangPoolMB, "hang-pool-mb", 0, "stop answering (WinRM and sampler) once nonpaged pool passes this many MiB, as Windows does when the leak exhausts pool (0: never)")
	serve.Flags().Uint16Var(&ports.stream, "stream-port", 0, "TCP port of the stream path (0: a free one)")
	serve.Flags().Uint16Var(&ports.forward, "forward-port", 0, "UDP port of the forwarding path (0: a free one)")
	serve.Flags().Uint16Var(&ports.control, "control-port", 0, "UDP port of single-NBL traffic (0: a free one)")
	serve.Flags().BoolVar(&patched, "patched", false, "start with KB979223 already installed (the fixed netio.sys)")
	serve.Flags().StringVar(&faults, "faults", "", "failures to inject on purpose, as key=value pairs: "+strings.Join(contract.FaultKeys, ", ")+` (e.g. "http_500_every=7,slow_every=5,slow_by=2s,reboot_every=90s")`)
	serve.Flags().StringVar(&auth, "auth", "both", "WinRM authentication the guest accepts: basic, ntlm (Negotiate only, Basic off as Windows ships) or both")
	serve.Flags().BoolVar(&https, "https", false, "listen with TLS (HTTPS), with a certificate signed by a CA of the guest's own")
	serve.Flags().StringVar(&caOut, "ca-out", "", "with --https: file to write the guest's CA certificate (PEM) to")
	serve.Flags().StringVar(&winrmVersion, "winrm-version", "", "WinRM version to answer as: 1.1 or 2.0 (default: the OS's own, 1.1 on Vista and Server 2008)")
	simCmd.AddCommand(serve, newSimApplianceCmd(), newSimHotfixesCmd())
	return simCmd
}

func newSimHotfixesCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "hotfixes",
		Short: "Write the simulated KB979223 packages that the simulated wusa accepts",
		Long: `Hotfixes writes one simulated .msu per package name of the catalog into DIR, for a
scenario whose lab.hotfix_dir serves simulated guests (sim serve, static provider). The
simulated wusa accepts a file named as the guest's package that begins with the cabinet
signature MSCF; these say in plain text that they are simulations and install nothing on
Windows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			paths, err := sim.WriteHotfixPackages(out)
			if err != nil {
				return withExit(exitFailure, err)
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the packages to (required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newSimApplianceCmd() *cobra.Command {
	var o appliance.Options
	var out string
	cmd := &cobra.Command{
		Use:   "appliance",
		Short: "Build a bootable micro-VM (kernel + initramfs) of a simulated guest",
		Long: `Appliance builds a simulated Windows guest that boots in a real VM: Debian's kernel
(the current linux-image-amd64 package, fetched with apt-get download, or --kernel) and an
initramfs whose /init is this wfplab binary, running the simulated guest on the VM's NIC
(WinRM 5985, stream tcp 5001, control udp 5002; user vagrant, password vagrant). Both are
cached under the user's cache folder and rebuilt when the wfplab binary changes. It writes
DIR/vmlinuz and DIR/initrd.gz and prints the QEMU command line to boot them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = cmd.ErrOrStderr()
			b, err := appliance.Build(cmd.Context(), o)
			if err == nil {
				b, err = appliance.Install(b, out)
			}
			if err != nil {
				return withExit(exitFailure, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "kernel  %s (%s)\ninitrd  %s\nappend  %s\n\n", b.Kernel, b.KernelVersion, b.Initrd, b.Append)
			fmt.Fprintf(w, "boot it (TCG; a blank raw state disk keeps what Windows keeps across reboots):\n")
			fmt.Fprintf(w, "  qemu-img create -f raw state.img 64M\n")
			fmt.Fprintf(w, "  qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -kernel %s -initrd %s \\\n", b.Kernel, b.Initrd)
			fmt.Fprintf(w, "    -append %q \\\n", b.Append)
			fmt.Fprintf(w, "    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:5985-:5985,hostfwd=tcp:127.0.0.1:5001-:5001,hostfwd=udp:127.0.0.1:5002-:5002 \\\n")
			fmt.Fprintf(w, "    -device virtio-net-pci,netdev=n0 -drive file=state.img,format=raw,if=virtio\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Target, "target", "win7-x64", "catalog OS of the guest")
	cmd.Flags().StringVar(&out, "out", "", "folder to write vmlinuz and initrd.gz to (required)")
	cmd.Flags().StringVar(&o.KernelPath, "kernel", "", "a linux-image .deb or its unpacked tree (default: fetch the current Debian package with apt-get)")
	cmd.Flags().StringVar(&o.CacheDir, "cache-dir", "", "cache folder (default: the user's cache folder/wfplab)")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "seed for the kernel model's noise")
	cmd.Flags().BoolVar(&o.NoNoise, "no-noise", false, "turn the pool's background noise off")
	cmd.Flags().Uint64Var(&o.HangPoolMB, "hang-pool-mb", 0, "stop answering once nonpaged pool passes this many MiB (0: never)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
