package scenarios

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// The canonical form: every effective value written out, defaults included.
type (
	fileScenario struct {
		Name        string        `yaml:"name"`
		Description string        `yaml:"description,omitempty"`
		Provider    fileProvider  `yaml:"provider"`
		Targets     []fileTarget  `yaml:"targets"`
		Lab         fileLab       `yaml:"lab"`
		Phases      []string      `yaml:"phases"`
		Timing      fileTiming    `yaml:"timing"`
		Profiles    []fileProfile `yaml:"profiles"`
		Verdict     fileVerdict   `yaml:"verdict"`
		Expect      []fileExpect  `yaml:"expect,omitempty"`
		Throughput  *fileTput     `yaml:"throughput,omitempty"`
	}
	fileTput struct {
		Windows int     `yaml:"windows"`
		Window  string  `yaml:"window"`
		Settle  string  `yaml:"settle"`
		Rate    float64 `yaml:"rate,omitempty"`
		MaxLoss float64 `yaml:"max_loss"`
		Alpha   float64 `yaml:"alpha"`
	}
	fileProvider struct {
		Kind       string  `yaml:"kind"`
		RebootDown string  `yaml:"reboot_down,omitempty"`
		Noise      *bool   `yaml:"noise,omitempty"`
		HotfixLoss float64 `yaml:"hotfix_throughput_loss,omitempty"`
		Dir        string  `yaml:"dir,omitempty"`
		// vagrant
		VagrantCLI      string `yaml:"vagrant,omitempty"`
		VagrantProvider string `yaml:"vagrant_provider,omitempty"`
		Snapshot        string `yaml:"snapshot,omitempty"`
		// qemu
		MemoryBudgetMB  int    `yaml:"memory_budget_mb,omitempty"`
		BootTimeout     string `yaml:"boot_timeout,omitempty"`
		ApplianceKernel string `yaml:"appliance_kernel,omitempty"`
	}
	fileTarget struct {
		Name          string `yaml:"name"`
		OS            string `yaml:"os"`
		Host          string `yaml:"host,omitempty"`
		Port          int    `yaml:"port,omitempty"`
		HTTPS         bool   `yaml:"https,omitempty"`
		Insecure      bool   `yaml:"insecure,omitempty"`
		Auth          string `yaml:"auth,omitempty"`
		CAFile        string `yaml:"ca_file,omitempty"`
		UserEnv       string `yaml:"user_env,omitempty"`
		PasswordEnv   string `yaml:"password_env,omitempty"`
		PasswordFile  string `yaml:"password_file,omitempty"`
		StreamPort    int    `yaml:"stream_port,omitempty"`
		ControlPort   int    `yaml:"control_port,omitempty"`
		ForwardDest   string `yaml:"forward_dest,omitempty"`
		ForwardPrefix string `yaml:"forward_prefix,omitempty"`
		Image         string `yaml:"image,omitempty"`
		Appliance     bool   `yaml:"appliance,omitempty"`
		Kernel        string `yaml:"kernel,omitempty"`
		Initrd        string `yaml:"initrd,omitempty"`
		Append        string `yaml:"append,omitempty"`
		MemoryMB      int    `yaml:"memory_mb,omitempty"`
		CPUs          int    `yaml:"cpus,omitempty"`
		Accel         string `yaml:"accel,omitempty"`
		WinRMPort     int    `yaml:"winrm_port,omitempty"`
		HangPoolMB    int    `yaml:"hang_pool_mb,omitempty"`
		Faults        string `yaml:"faults,omitempty"`
	}
	fileLab struct {
		Allow         []string `yaml:"allow,omitempty"`
		HotfixDir     string   `yaml:"hotfix_dir,omitempty"`
		RebootTimeout string   `yaml:"reboot_timeout"`
	}
	fileTiming struct {
		Warmup         string `yaml:"warmup"`
		Window         string `yaml:"window"`
		Settle         string `yaml:"settle"`
		SampleInterval string `yaml:"sample_interval"`
		SampleTimeout  string `yaml:"sample_timeout"`
		Block          string `yaml:"block,omitempty"`
	}
	fileProfile struct {
		Name          string  `yaml:"name"`
		Kind          string  `yaml:"kind"`
		Rate          float64 `yaml:"rate"`
		PayloadBytes  int     `yaml:"payload_bytes"`
		BurstSegments int     `yaml:"burst_segments,omitempty"`
		Conns         int     `yaml:"conns,omitempty"`
	}
	fileVerdict struct {
		ThresholdBps      float64 `yaml:"threshold_bps"`
		ThresholdPerChain float64 `yaml:"threshold_bytes_per_chain"`
		Confidence        float64 `yaml:"confidence"`
	}
	fileExpect struct {
		Target  string `yaml:"target,omitempty"`
		Phase   string `yaml:"phase,omitempty"`
		Profile string `yaml:"profile,omitempty"`
		Verdict string `yaml:"verdict"`
	}
)

// YAML renders the scenario as run: every effective value, defaults included, in a form
// Parse reads back to the same scenario. Comments of the source are not kept (see Text).
// It holds no secrets: passwords never enter a Scenario, only where to find them.
func (s *Scenario) YAML() ([]byte, error) {
	f := fileScenario{
		Name:        s.Name,
		Description: s.Description,
		Provider:    fileProvider{Kind: s.Provider.Kind},
		Lab:         fileLab{HotfixDir: s.Lab.HotfixDir, RebootTimeout: s.Lab.RebootTimeout.String()},
		Timing: fileTiming{Warmup: s.Timing.Warmup.String(), Window: s.Timing.Window.String(),
			Settle: s.Timing.Settle.String(), SampleInterval: s.Timing.SampleInterval.String(), SampleTimeout: s.Timing.SampleTimeout.String()},
		Verdict: fileVerdict{ThresholdBps: s.Verdict.ThresholdBps, ThresholdPerChain: s.Verdict.ThresholdPerChain, Confidence: s.Verdict.Confidence},
	}
	if s.Timing.Block > 0 {
		f.Timing.Block = s.Timing.Block.String()
	}
	if t := s.Throughput; t.On() {
		f.Throughput = &fileTput{Windows: t.Windows, Window: t.Window.String(), Settle: t.Settle.String(), Rate: t.Rate,
			MaxLoss: t.MaxLoss, Alpha: t.Alpha}
	}
	switch s.Provider.Kind {
	case ProviderSim:
		noise := s.Provider.SimNoise
		f.Provider.RebootDown = s.Provider.SimRebootDown.String()
		f.Provider.Noise = &noise
		f.Provider.HotfixLoss = s.Provider.SimHotfixLoss
	case ProviderVagrant:
		f.Provider.Dir = s.Provider.VagrantDir
		f.Provider.VagrantCLI = s.Provider.VagrantCLI
		f.Provider.VagrantProvider = s.Provider.VagrantProvider
		f.Provider.Snapshot = s.Provider.VagrantSnapshot
	case ProviderQEMU:
		f.Provider.MemoryBudgetMB = s.Provider.QEMUMemoryBudgetMB
		if s.Provider.QEMUBootTimeout > 0 {
			f.Provider.BootTimeout = s.Provider.QEMUBootTimeout.String()
		}
		f.Provider.ApplianceKernel = s.Provider.ApplianceKernel
	}
	for _, t := range s.Targets {
		ft := fileTarget{Name: t.Name, OS: t.OS, Host: t.Host, Port: t.Port, HTTPS: t.HTTPS, Insecure: t.Insecure,
			Auth: t.Auth, CAFile: t.CAFile,
			UserEnv: t.UserEnv, PasswordEnv: t.PasswordEnv, PasswordFile: t.PasswordFile,
			StreamPort: t.StreamPort, ControlPort: t.ControlPort,
			Image: t.Image, Appliance: t.Appliance, Kernel: t.Kernel, Initrd: t.Initrd, Append: t.Append,
			MemoryMB: t.MemoryMB, CPUs: t.CPUs, Accel: t.Accel, WinRMPort: t.WinRMPort, HangPoolMB: t.HangPoolMB,
			Faults: t.Faults.String()}
		if t.ForwardDest.IsValid() {
			ft.ForwardDest = t.ForwardDest.String()
		}
		if t.ForwardPrefix.IsValid() {
			ft.ForwardPrefix = t.ForwardPrefix.String()
		}
		f.Targets = append(f.Targets, ft)
	}
	for _, p := range s.Lab.Allow {
		f.Lab.Allow = append(f.Lab.Allow, p.String())
	}
	for _, p := range s.Phases {
		f.Phases = append(f.Phases, p.Name)
	}
	for _, p := range s.Profiles {
		f.Profiles = append(f.Profiles, fileProfile(p))
	}
	for _, e := range s.Expect {
		f.Expect = append(f.Expect, fileExpect{Target: e.Target, Phase: e.Phase, Profile: e.Profile, Verdict: e.Verdict})
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("scenario %s: render YAML: %w", s.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("scenario %s: render YAML: %w", s.Name, err)
	}
	return buf.Bytes(), nil
}
