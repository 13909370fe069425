package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// Provider brings simulated guests up and down; it implements contract.Provider.
type Provider struct {
	specs []MachineSpec
	cfg   Config

	mu     sync.Mutex
	guests []*Machine
	up     bool
}

var _ contract.Provider = (*Provider)(nil)

// NewProvider returns a provider for the given guests. Use DefaultConfig() as the base of
// cfg for the model's defaults (noise on).
func NewProvider(specs []MachineSpec, cfg Config) *Provider {
	return &Provider{specs: append([]MachineSpec(nil), specs...), cfg: cfg}
}

// Name implements contract.Provider.
func (p *Provider) Name() string { return "sim" }

// Up boots every guest, each with WinRM on an ephemeral loopback port and its own traffic
// sockets. It returns the targets that came up and one error per guest that did not.
func (p *Provider) Up(ctx context.Context) ([]contract.Target, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.up {
		return nil, errors.New("sim: provider is already up; call Down first")
	}
	var errs *multierror.Error
	seen := map[string]bool{}
	var targets []contract.Target
	for _, spec := range p.specs {
		if err := ctx.Err(); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("sim: guest %s not started: %w", spec.Name, err))
			continue
		}
		if seen[spec.Name] {
			errs = multierror.Append(errs, fmt.Errorf("sim: guest name %q is used twice; give every target its own name", spec.Name))
			continue
		}
		seen[spec.Name] = true
		g, err := NewMachine(spec, p.cfg)
		if err == nil {
			err = g.Start(netip.AddrPort{})
		}
		if err != nil {
			errs = multierror.Append(errs, err)
			if g != nil {
				_ = g.Close(context.Background())
			}
			continue
		}
		p.guests = append(p.guests, g)
		targets = append(targets, g.Target())
	}
	p.up = true
	return targets, errs.ErrorOrNil()
}

// Down powers every guest off for good and collects every failure.
func (p *Provider) Down(ctx context.Context) error {
	p.mu.Lock()
	guests := p.guests
	p.guests, p.up = nil, false
	p.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs *multierror.Error
	)
	for _, g := range guests {
		wg.Add(1)
		go func(g *Machine) {
			defer wg.Done()
			if err := g.Close(ctx); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

// Machine returns the running guest of that name, or nil.
func (p *Provider) Machine(name string) *Machine {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.guests {
		if g.name == name {
			return g
		}
	}
	return nil
}

// PasswordEnv is the environment variable Serve takes the WinRM password from, when set.
const PasswordEnv = "WFPLAB_SIM_PASSWORD"

// Serve runs one simulated guest of the catalog OS name, with WinRM on listenAddr (host:port,
// loopback; port 0 picks one) and its traffic sockets on cfg.TrafficPorts (0: free ports),
// until ctx ends. It writes the WinRM URL, the user and the traffic addresses to out (never
// the password), then blocks. The password comes from WFPLAB_SIM_PASSWORD if set, else
// cfg.Password, else "vagrant". A fixed port that is taken is an error naming it.
func Serve(ctx context.Context, name, listenAddr string, cfg Config, out io.Writer) error {
	o, err := contract.LookupOS(name)
	if err != nil {
		return fmt.Errorf("sim serve: %w", err)
	}
	addr, err := netip.ParseAddrPort(listenAddr)
	if err != nil {
		return fmt.Errorf("sim serve: listen address %q: want IP:PORT on loopback, e.g. 127.0.0.1:5985: %w", listenAddr, err)
	}
	if !addr.Addr().IsLoopback() {
		return fmt.Errorf("sim serve: listen address %s is not loopback: the simulated guest listens on 127.0.0.0/8 or ::1 only", addr)
	}
	if pw := os.Getenv(PasswordEnv); pw != "" {
		cfg.Password = pw
	}
	cfg.ListenHost = addr.Addr().String()
	if err := portsFree(addr, cfg.TrafficPorts); err != nil {
		return fmt.Errorf("sim serve: %w", err)
	}
	g, err := NewMachine(MachineSpec{Name: name, OS: o}, cfg)
	if err != nil {
		return fmt.Errorf("sim serve: %w", err)
	}
	if cfg.HTTPS {
		if cfg.ServeCAFile == "" {
			return errors.New("sim serve: HTTPS needs a file to write the guest's CA certificate to (--ca-out)")
		}
		// Written before the guest listens, so a client that sees it up finds the file.
		if err := os.WriteFile(cfg.ServeCAFile, g.CACertPEM(), 0o644); err != nil {
			return fmt.Errorf("sim serve: writing the CA certificate: %w", err)
		}
	}
	if err := g.Start(addr); err != nil {
		return fmt.Errorf("sim serve: %w", err)
	}
	t := g.Target()
	if out != nil {
		netio, state := o.NetioStock, "unpatched"
		if cfg.Patched {
			netio, state = o.NetioFixed, "KB979223 installed"
		}
		fmt.Fprintf(out, "simulated %s (%s %s, netio.sys %s, %s) is up\n", name, o.Product, o.Arch, netio, state)
		fmt.Fprintf(out, "  WinRM    %s  user %s  auth %s  (WinRM %s)\n", t.Endpoint, t.Creds.User, authOffered(cfg.WinRMAuth), winrmVersion(o))
		if cfg.HTTPS {
			fmt.Fprintf(out, "  CA       %s  (the target's ca_file)\n", cfg.ServeCAFile)
		}
		fmt.Fprintf(out, "  stream   tcp %s\n", t.Traffic.Stream)
		fmt.Fprintf(out, "  forward  udp %s  (prefix %s)\n", t.Traffic.Forward, t.Traffic.ForwardPrefix)
		fmt.Fprintf(out, "  control  udp %s\n", t.Traffic.Control)
	}
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return g.Close(closeCtx)
}

// portsFree finds a fixed port that something else holds before the guest boots, where
// booting would only retry and then fail without saying which flag to change.
func portsFree(winrm netip.AddrPort, p kernel.Ports) error {
	host := winrm.Addr()
	type probe struct {
		what, network string
		port          uint16
	}
	var errs *multierror.Error
	for _, pr := range []probe{{"WinRM", "tcp", winrm.Port()}, {"stream", "tcp", p.Stream}, {"forward", "udp", p.Forward}, {"control", "udp", p.Control}} {
		if pr.port == 0 {
			continue
		}
		addr := netip.AddrPortFrom(host, pr.port).String()
		var c io.Closer
		var err error
		if pr.network == "tcp" {
			c, err = net.Listen("tcp", addr)
		} else {
			c, err = net.ListenPacket("udp", addr)
		}
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s port %s/%d is not free (%v): stop what holds it, or pick another port (0 picks a free one)", pr.what, pr.network, pr.port, err))
			continue
		}
		c.Close()
	}
	return errs.ErrorOrNil()
}

// authOffered names what the guest's WinRM accepts, for sim serve's banner.
func authOffered(a string) string {
	if a == "" {
		return "basic, ntlm"
	}
	return a
}

// winrmVersion is the WinRM a stock guest of the OS runs: 1.1 on Vista and Server 2008.
func winrmVersion(o contract.OS) string {
	if o.Version == "6.0" {
		return "1.1"
	}
	return "2.0"
}
