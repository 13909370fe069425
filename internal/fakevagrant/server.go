package fakevagrant

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/vagrant"
)

// Config configures a Server.
type Config struct {
	Dir    string         // the folder holding the Vagrantfile; calls from elsewhere fail as Vagrant's do
	Layout vagrant.Layout // where machine n's traffic sockets listen (loopback networks)
	Sim    sim.Config     // the simulated machines' configuration (ListenHost and ports are set here)
	// Provider is what status reports before `up --provider` names one. Default virtualbox.
	Provider string
	// SSL names the machines whose Vagrantfile speaks WinRM over HTTPS (config.winrm.transport
	// = :ssl): their guests listen with TLS on the forwarded port, with a certificate CA issued
	// for the address winrm-config gives (127.0.0.1, the forwarded port's host_ip), as a lab
	// CA issues its boxes' certificates.
	SSL []string
	// CA issues those certificates; nil: Start makes one (Server.CACertPEM).
	CA *sim.CA
}

// Server holds the machines of one Vagrantfile and answers the relay's calls.
type Server struct {
	cfg      Config
	dir      string
	machines map[string]*machine
	order    []string
	srv      *http.Server
	url      string

	mu    sync.Mutex // one command at a time, as Vagrant's machine locks make it for one machine
	calls []Call
}

type machine struct {
	name     string
	os       contract.OS
	n        int
	state    string // not_created, running, poweroff
	provider string
	g        *sim.Machine // while running
	disk     []byte       // persistent state while powered off; nil: a fresh box
	snaps    map[string][]byte
	winrm    netip.AddrPort // the forwarded WinRM port, kept across boots as Vagrant does
	ssl      bool           // WinRM over HTTPS (Config.SSL)
}

// Start reads the Vagrantfile's machines and serves on 127.0.0.1.
func Start(cfg Config) (*Server, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(filepath.Join(dir, "Vagrantfile"))
	if err != nil {
		return nil, fmt.Errorf("fake vagrant: %w", err)
	}
	if cfg.Provider == "" {
		cfg.Provider = "virtualbox"
	}
	s := &Server{cfg: cfg, dir: dir, machines: map[string]*machine{}}
	for name, n := range vagrant.MachineIndexes(text) {
		o, err := contract.LookupOS(name)
		if err != nil {
			return nil, fmt.Errorf("fake vagrant: machine %s of %s: %w", name, dir, err)
		}
		s.machines[name] = &machine{name: name, os: o, n: n, state: vagrant.StateNotCreated, snaps: map[string][]byte{}}
		s.order = append(s.order, name)
	}
	slices.SortFunc(s.order, func(a, b string) int { return s.machines[a].n - s.machines[b].n })
	for _, name := range cfg.SSL {
		m := s.machines[name]
		if m == nil {
			return nil, fmt.Errorf("fake vagrant: SSL machine %s is not in %s's Vagrantfile (machines: %s)", name, dir, strings.Join(s.order, ", "))
		}
		m.ssl = true
		if s.cfg.CA == nil {
			if s.cfg.CA, err = sim.NewCA("wfplab lab CA (fake vagrant)"); err != nil {
				return nil, err
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveRun), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is what the relay program needs in WFPLAB_FAKE_VAGRANT.
func (s *Server) URL() string { return s.url }

// CACertPEM is the PEM of the CA that issued the SSL machines' certificates (their ca_file);
// nil when no machine speaks HTTPS.
func (s *Server) CACertPEM() []byte {
	if s.cfg.CA == nil {
		return nil
	}
	return s.cfg.CA.PEM()
}

// Calls are the command lines received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Machine is the running simulated machine of that name, or nil.
func (s *Server) Machine(name string) *sim.Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.machines[name]; m != nil {
		return m.g
	}
	return nil
}

// Close powers every machine off and stops serving.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.machines {
		if m.g != nil {
			_ = m.g.Close(ctx)
			m.g = nil
		}
	}
	return nil
}

func (s *Server) serveRun(w http.ResponseWriter, r *http.Request) {
	var c Call
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	var out, errOut strings.Builder
	code := s.run(r.Context(), c, &out, &errOut)
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(answer{Stdout: out.String(), Stderr: errOut.String(), Exit: code})
}
