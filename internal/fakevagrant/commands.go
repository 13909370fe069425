package fakevagrant

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// Vagrant's own messages for the cases the provider meets (Vagrant 2.2/2.3, templates/locales/en.yml).
const (
	msgNoEnv      = "A Vagrant environment or target machine is required to run this\ncommand. Run `vagrant init` to create a new Vagrant environment. Or,\nget an ID of a target machine from `vagrant global-status` to run\nthis command on. A final option is to change to a directory with a\nVagrantfile and to try again.\n"
	msgNoSnapshot = "No snapshots have been taken yet!"
)

// record writes one machine-readable line, escaped as Vagrant escapes data.
func record(w io.Writer, target, typ string, data ...string) {
	for i, d := range data {
		d = strings.ReplaceAll(d, ",", "%!(VAGRANT_COMMA)")
		d = strings.ReplaceAll(d, "\n", `\n`)
		data[i] = strings.ReplaceAll(d, "\r", `\r`)
	}
	fmt.Fprintf(w, "%d,%s,%s,%s\n", time.Now().Unix(), target, typ, strings.Join(data, ","))
}

// run answers one command line; it returns the exit status.
func (s *Server) run(ctx context.Context, c Call, out, errOut io.Writer) int {
	var args []string
	mr := false
	for _, a := range c.Args {
		switch a {
		case "--machine-readable":
			mr = true
		case "--no-color", "--no-tty":
		default:
			args = append(args, a)
		}
	}
	if len(args) == 0 {
		fmt.Fprintln(errOut, "Usage: vagrant [options] <command> [<args>]")
		return 1
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(out, "Vagrant 2.3.4")
		return 0
	}
	if dir, err := filepath.Abs(c.Dir); err != nil || dir != s.dir {
		fmt.Fprint(errOut, msgNoEnv)
		return 1
	}
	cmd, rest := args[0], args[1:]
	flags, names := splitFlags(rest)
	fail := func(format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		if mr {
			record(out, "", "error-exit", "Vagrant::Errors::VagrantError", msg)
		} else {
			fmt.Fprintln(errOut, msg)
		}
		return 1
	}
	switch cmd {
	case "validate":
		fmt.Fprintln(out, "Vagrantfile validated successfully.")
		return 0
	case "status", "up", "halt":
		ms, err := s.pick(names)
		if err != nil {
			return fail("%v", err)
		}
		for _, m := range ms {
			var code int
			switch cmd {
			case "status":
				s.status(out, m, mr)
			case "up":
				code = s.up(m, flags["--provider"], out)
			case "halt":
				code = s.halt(ctx, m, out)
			}
			if code != 0 {
				return code
			}
		}
		return 0
	case "winrm-config":
		ms, err := s.pick(names)
		if err != nil {
			return fail("%v", err)
		}
		for _, m := range ms {
			if m.state != "running" {
				return fail("The provider for this Vagrant-managed machine is reporting that it\nis not yet ready for WinRM. Depending on your provider this can carry\ndifferent meanings. Make sure your machine is created and running and\ntry again.")
			}
			// Vagrant 2.2/2.3 (templates/commands/winrm_config/config.erb): the RDP lines only
			// when a port forwards to the guest's 3389, which this Vagrantfile has none of; a
			// blank line after each machine. The same for :ssl: Port is then the port forwarded
			// to the HTTPS listener.
			fmt.Fprintf(out, "Host %s\n  HostName %s\n  User %s\n  Password %s\n  Port %d\n\n",
				m.name, m.winrm.Addr(), s.cfg.Sim.User, s.cfg.Sim.Password, m.winrm.Port())
		}
		return 0
	case "snapshot":
		if len(names) == 0 {
			return fail("Usage: vagrant snapshot <subcommand> [<args>]")
		}
		return s.snapshot(ctx, names[0], names[1:], flags, out, mr, fail)
	}
	return fail("Unknown command %q; the fake vagrant answers validate, status, up, halt, winrm-config and snapshot", cmd)
}

// splitFlags separates --flag[=value] and --provider VALUE from positional arguments.
func splitFlags(args []string) (map[string]string, []string) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok && k == "--provider" && i+1 < len(args) {
			i++
			v = args[i]
		}
		flags[k] = v
	}
	return flags, pos
}

// pick is the machines named, or all of them in the Vagrantfile's order.
func (s *Server) pick(names []string) ([]*machine, error) {
	if len(names) == 0 {
		names = s.order
	}
	var ms []*machine
	for _, n := range names {
		m := s.machines[n]
		if m == nil {
			//lint:ignore ST1005 Vagrant's own wording, which the lab shows as it came
			return nil, fmt.Errorf("The machine with the name '%s' was not found configured for\nthis Vagrant environment.", n)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func (s *Server) status(out io.Writer, m *machine, mr bool) {
	prov := m.provider
	if prov == "" {
		prov = s.cfg.Provider
	}
	short := map[string]string{"not_created": "not created", "running": "running", "poweroff": "poweroff"}[m.state]
	if !mr {
		fmt.Fprintf(out, "Current machine states:\n\n%-25s %s (%s)\n", m.name, short, prov)
		return
	}
	record(out, m.name, "metadata", "provider", prov)
	record(out, m.name, "provider-name", prov)
	record(out, m.name, "state", m.state)
	record(out, m.name, "state-human-short", short)
	record(out, m.name, "state-human-long", "The fake vagrant's simulated machine is "+short+".")
	record(out, "", "ui", "info", fmt.Sprintf("Current machine states:\n\n%-25s %s (%s)", m.name, short, prov))
}

// up boots a machine that is not running: a fresh box, or its disk as it was halted.
func (s *Server) up(m *machine, provider string, out io.Writer) int {
	if provider != "" {
		if m.provider != "" && m.provider != provider {
			fmt.Fprintf(out, "An active machine was found with a different provider. Vagrant\ncurrently allows each machine to be brought up with only a single\nprovider at a time.\n\nActive provider: %s\nRequested provider: %s\n", m.provider, provider)
			return 1
		}
		m.provider = provider
	}
	fmt.Fprintf(out, "Bringing machine '%s' up with '%s' provider...\n", m.name, cmpOr(m.provider, s.cfg.Provider))
	if m.state == "running" {
		fmt.Fprintf(out, "==> %s: Machine already provisioned. Run `vagrant provision` or use the `--provision`\n", m.name)
		return 0
	}
	if err := s.boot(m); err != nil {
		fmt.Fprintf(out, "==> %s: %v\n", m.name, err)
		return 1
	}
	fmt.Fprintf(out, "==> %s: Machine booted and ready!\n", m.name)
	return 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// boot starts the simulated machine from its disk, its sockets where the layout puts them.
func (s *Server) boot(m *machine) error {
	traffic, err := s.cfg.Layout.Addrs(m.n)
	if err != nil {
		return err
	}
	cfg := s.cfg.Sim
	cfg.ListenHost = traffic.Stream.Addr().String()
	cfg.TrafficPorts = kernel.Ports{Stream: traffic.Stream.Port(), Control: traffic.Control.Port(),
		Forward: traffic.Forward.Port(), ForwardHost: traffic.Forward.Addr()}
	winrm := m.winrm
	if !winrm.IsValid() {
		winrm = netip.MustParseAddrPort("127.0.0.1:0")
	}
	if m.ssl {
		cfg.HTTPS, cfg.HTTPSCA, cfg.HTTPSAddrs = true, s.cfg.CA, []netip.Addr{winrm.Addr()}
	}
	g, err := sim.NewMachine(sim.MachineSpec{Name: m.name, OS: m.os}, cfg)
	if err != nil {
		return err
	}
	if m.disk != nil {
		if err := g.LoadState(m.disk); err != nil {
			return err
		}
	}
	if err := g.Start(winrm); err != nil {
		_ = g.Close(context.Background())
		if winrm.Port() == 0 {
			return err
		}
		// The kept port was taken meanwhile: another, as Vagrant's auto_correct does.
		m.winrm = netip.AddrPort{}
		return s.boot(m)
	}
	// Target names the traffic host; WinRM listens where it was asked to (the forwarded port).
	m.winrm = netip.AddrPortFrom(winrm.Addr(), uint16(g.Target().Endpoint.Port))
	m.g, m.state = g, "running"
	return nil
}

// halt saves the machine's disk and powers it off.
func (s *Server) halt(ctx context.Context, m *machine, out io.Writer) int {
	if m.state != "running" {
		fmt.Fprintf(out, "==> %s: VM not created. Moving on...\n", m.name)
		return 0
	}
	fmt.Fprintf(out, "==> %s: Attempting graceful shutdown of VM...\n", m.name)
	if err := s.powerOff(ctx, m); err != nil {
		fmt.Fprintf(out, "==> %s: %v\n", m.name, err)
		return 1
	}
	return 0
}

func (s *Server) powerOff(ctx context.Context, m *machine) error {
	disk, err := m.g.SaveState()
	if err != nil {
		return err
	}
	if err := m.g.Close(ctx); err != nil {
		return err
	}
	m.g, m.disk, m.state = nil, disk, "poweroff"
	return nil
}

func (s *Server) snapshot(ctx context.Context, sub string, args []string, flags map[string]string, out io.Writer, mr bool, fail func(string, ...any) int) int {
	if len(args) == 0 {
		return fail("Usage: vagrant snapshot %s [options] [vm-name] <name>", sub)
	}
	ms, err := s.pick(args[:1])
	if err != nil {
		return fail("%v", err)
	}
	m := ms[0]
	if sub == "list" {
		if m.state == "not_created" {
			record(out, m.name, "ui", "info", "==> "+m.name+": VM not created. Moving on...")
			return 0
		}
		record(out, m.name, "metadata", "provider", cmpOr(m.provider, s.cfg.Provider))
		if len(m.snaps) == 0 {
			record(out, m.name, "ui", "output", "==> "+m.name+": "+msgNoSnapshot)
			record(out, m.name, "ui", "detail", "    "+m.name+": You can take a snapshot using `vagrant snapshot save`. Note that\n    "+m.name+": not all providers support this yet.")
			return 0
		}
		record(out, m.name, "ui", "output", "==> "+m.name+":")
		names := make([]string, 0, len(m.snaps))
		for n := range m.snaps {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			record(out, m.name, "ui", "detail", n)
		}
		return 0
	}
	if len(args) < 2 {
		return fail("Usage: vagrant snapshot %s [options] [vm-name] <name>", sub)
	}
	snap := args[1]
	if m.state == "not_created" {
		return fail("The machine %s is not created.", m.name)
	}
	switch sub {
	case "save":
		if _, ok := m.snaps[snap]; ok {
			if _, force := flags["--force"]; !force {
				return fail("A snapshot with the name '%s' already exists. Please use another name or use the --force flag.", snap)
			}
		}
		disk := m.disk
		if m.g != nil {
			if disk, err = m.g.SaveState(); err != nil {
				return fail("%v", err)
			}
		}
		if disk == nil {
			return fail("the machine %s has no disk to snapshot", m.name)
		}
		m.snaps[snap] = disk
		fmt.Fprintf(out, "==> %s: Snapshotting the machine as '%s'...\n==> %s: Snapshot saved!\n", m.name, snap, m.name)
		return 0
	case "restore":
		disk, ok := m.snaps[snap]
		if !ok {
			return fail("The snapshot '%s' doesn't exist for the machine %s.", snap, m.name)
		}
		if m.g != nil {
			fmt.Fprintf(out, "==> %s: Forcing shutdown of VM...\n", m.name)
			if err := s.powerOff(ctx, m); err != nil {
				return fail("%v", err)
			}
		}
		m.disk = disk
		fmt.Fprintf(out, "==> %s: Restoring the snapshot '%s'...\n", m.name, snap)
		if _, noStart := flags["--no-start"]; noStart {
			return 0
		}
		if err := s.boot(m); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(out, "==> %s: Machine booted and ready!\n", m.name)
		return 0
	}
	return fail("Unknown snapshot subcommand %q", sub)
}
