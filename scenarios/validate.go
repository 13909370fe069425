package scenarios

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

const maxNameLen = 64

// Names end up in file names (plots, run folders) and report tables.
var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dnsNameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

// Validate checks a scenario built or changed in code. Scenarios from Parse, Load and
// Builtin are already valid; errors on them still carry the file's lines.
func (s *Scenario) Validate() error {
	el := &errorList{file: s.Source, lines: maps.Clone(s.lines)}
	if el.file == "" {
		el.file = "scenario " + s.Name
	}
	if el.lines == nil {
		el.lines = map[string]int{}
	}
	s.validate(el)
	return el.err()
}

func (s *Scenario) validate(el *errorList) {
	checkName(el, "name", s.Name, "the scenario")
	s.validateProvider(el)
	s.validateTargets(el)
	s.validateLab(el)
	s.validatePhases(el)
	s.validateTiming(el)
	s.validateThroughput(el)
	s.validateProfiles(el)
	s.validateVerdict(el)
	s.validateExpect(el)
}

func checkName(el *errorList, field, name, what string) bool {
	switch {
	case name == "":
		el.field(field, "missing; give %s a name", what)
	case len(name) > maxNameLen || !nameRE.MatchString(name):
		el.field(field, "%q is not a usable name: use up to %d letters, digits, '.', '_' or '-', starting with a letter or digit", name, maxNameLen)
	default:
		return true
	}
	return false
}

// oneOf reports a value outside a fixed set, with the nearest candidate.
func oneOf(el *errorList, field, got string, set []string) bool {
	if slices.Contains(set, got) {
		return true
	}
	if got == "" {
		el.field(field, "missing; one of %s", strings.Join(set, ", "))
		return false
	}
	el.field(field, "must be one of %s, got %q%s", strings.Join(set, ", "), got, didYouMean(got, set))
	return false
}

func (s *Scenario) validateProvider(el *errorList) {
	p := s.Provider
	if !oneOf(el, "provider.kind", p.Kind, providerKinds) {
		return
	}
	if p.SimHotfixLoss < 0 || p.SimHotfixLoss >= 1 || math.IsNaN(p.SimHotfixLoss) {
		el.field("provider.hotfix_throughput_loss", "must be a share from 0 to below 1, got %v", p.SimHotfixLoss)
	}
	if p.SimRebootDown < 0 || p.SimRebootDown > 10*time.Minute {
		el.field("provider.reboot_down", "must be between 0s and 10m, got %s", p.SimRebootDown)
	}
	if p.Kind == ProviderVagrant && strings.TrimSpace(p.VagrantDir) == "" {
		el.field("provider.dir", "missing; the folder holding the Vagrantfile")
	}
	if sn := p.VagrantSnapshot; sn != "" && (strings.TrimSpace(sn) != sn || strings.ContainsAny(sn, " \t,\"'")) {
		el.field("provider.snapshot", "%q is not a snapshot name Vagrant takes: no spaces, commas or quotes", sn)
	}
}

func catalogNames() []string {
	var names []string
	for _, o := range contract.Catalog() {
		names = append(names, o.Name)
	}
	return names
}

func (s *Scenario) validateTargets(el *errorList) {
	if len(s.Targets) == 0 {
		el.field("targets", "missing; list the guests, e.g. \"targets: [win7-x64]\" (known OS keys: %s)", strings.Join(catalogNames(), ", "))
		return
	}
	if len(s.Targets) > maxTargets {
		el.field("targets", "%d targets; at most %d", len(s.Targets), maxTargets)
	}
	names := map[string]int{}
	endpoints := map[string]int{}
	for i, t := range s.Targets {
		path := indexPath("targets", i)
		if checkName(el, path+".name", t.Name, "each target") {
			if first, dup := names[t.Name]; dup {
				el.field(path+".name", "%q is already the name of targets[%d]; target names must be unique", t.Name, first)
			} else {
				names[t.Name] = i
			}
		}
		if t.OS == "" {
			el.field(path+".os", "missing; one of %s", strings.Join(catalogNames(), ", "))
		} else if _, err := contract.LookupOS(t.OS); err != nil {
			el.field(path+".os", "%v%s", err, didYouMean(t.OS, catalogNames()))
		}
		if s.Provider.Kind == ProviderQEMU {
			s.validateQEMU(el, path, t)
		} else if s.Provider.Kind == ProviderStatic {
			s.validateStatic(el, path, t)
			key := fmt.Sprintf("%s:%d", strings.ToLower(t.Host), t.Port)
			if first, dup := endpoints[key]; dup && t.Host != "" && t.Port != 0 {
				el.field(path+".host", "targets[%d] already uses %s; each target needs its own WinRM endpoint", first, key)
			} else {
				endpoints[key] = i
			}
		} else if s.Provider.Kind == ProviderVagrant {
			validateWinRM(el, path, t)
		} else if t.Host != "" || t.Port != 0 || t.StreamPort != 0 || t.ControlPort != 0 || t.ForwardDest.IsValid() ||
			t.ForwardPrefix.IsValid() || t.PasswordEnv != "" || t.PasswordFile != "" || t.UserEnv != "" || t.HTTPS || t.Insecure ||
			t.Auth != "" || t.CAFile != "" {
			el.field(path, "host, ports, addresses and credentials are only for provider kind static (this scenario's provider is %s)", s.Provider.Kind)
		}
	}
}

// validateQEMU checks a QEMU target: something to boot, and sizes QEMU accepts.
func (s *Scenario) validateQEMU(el *errorList, path string, t TargetSpec) {
	boots := 0
	for _, set := range []bool{t.Image != "", t.Appliance, t.Kernel != "" && !t.Appliance} {
		if set {
			boots++
		}
	}
	switch {
	case boots == 0:
		el.field(path, "nothing to boot: set image (a prepared Windows disk, qcow2 or raw), or appliance: true (a simulated guest as a micro-VM), or kernel")
	case t.Appliance && (t.Image != "" || t.Kernel != "" || t.Initrd != "" || t.Append != ""):
		el.field(path+".appliance", "an appliance brings its own kernel and initrd; leave image, kernel, initrd and append out")
	case t.Initrd != "" && t.Kernel == "":
		el.field(path+".initrd", "needs kernel")
	case t.HangPoolMB != 0 && !t.Appliance:
		el.field(path+".hang_pool_mb", "only an appliance (a simulated guest) can be told to hang")
	case t.HangPoolMB < 0:
		el.field(path+".hang_pool_mb", "must be a size in MiB, got %d", t.HangPoolMB)
	}
	if t.MemoryMB < 64 || t.MemoryMB > 1<<20 {
		el.field(path+".memory_mb", "must be between 64 and 1048576 MiB, got %d", t.MemoryMB)
	}
	if t.CPUs < 1 || t.CPUs > 64 {
		el.field(path+".cpus", "must be between 1 and 64, got %d", t.CPUs)
	}
	oneOf(el, path+".accel", t.Accel, accels)
	if t.WinRMPort < 1 || t.WinRMPort > 65535 {
		el.field(path+".winrm_port", "must be a port number (1-65535), got %d", t.WinRMPort)
	}
}

func (s *Scenario) validateStatic(el *errorList, path string, t TargetSpec) {
	checkPort := func(field string, port int, what string) {
		switch {
		case port == 0:
			el.field(path+"."+field, "missing; %s", what)
		case port < 1 || port > 65535:
			el.field(path+"."+field, "must be a port number (1-65535), got %d", port)
		}
	}
	s.checkHost(el, path+".host", t.Host)
	if _, err := contract.LookupOS(t.OS); err == nil { // else the OS error says it; its port follows from the OS
		checkPort("port", t.Port, "the guest's WinRM port (5985 for WinRM 2.0 over HTTP, 5986 over HTTPS; 80 or 443 for Vista/2008 without WMF 2.0)")
	}
	checkPort("stream_port", t.StreamPort, "the guest's TCP port whose stream-layer data the driver blocks")
	checkPort("control_port", t.ControlPort, "the guest's UDP port for single-NBL traffic")
	validateWinRM(el, path, t)
	if t.UserEnv != "" && !envNameRE.MatchString(t.UserEnv) {
		el.field(path+".user_env", "%q is not an environment variable name", t.UserEnv)
	}
	switch {
	case t.PasswordEnv != "" && t.PasswordFile != "":
		el.field(path+".password_file", "set either password_env or password_file, not both")
	case t.PasswordEnv == "" && t.PasswordFile == "":
		el.field(path+".password_env", "missing; name an environment variable holding the password (or set password_file)")
	case t.PasswordEnv != "" && !envNameRE.MatchString(t.PasswordEnv):
		el.field(path+".password_env", "%q is not an environment variable name (the password itself never goes in the file)", t.PasswordEnv)
	}
	switch {
	case !t.ForwardDest.IsValid():
		el.field(path+".forward_dest", "missing; the UDP ADDRESS:PORT routed through the guest for fragment-forward traffic")
	case t.ForwardDest.Port() == 0:
		el.field(path+".forward_dest", "port 0 is not a destination; give the UDP port")
	case !usableAddr(t.ForwardDest.Addr()):
		el.field(path+".forward_dest", "%s cannot be a traffic destination", t.ForwardDest.Addr())
	case !s.allowed(t.ForwardDest.Addr()):
		el.field(path+".forward_dest", "%s is outside lab.allow; add its network to lab.allow (traffic only goes to allowed networks and loopback)", t.ForwardDest.Addr())
	}
	switch {
	case !t.ForwardPrefix.IsValid():
		el.field(path+".forward_prefix", "missing; the network behind the guest whose forwarded fragments the driver blocks")
	case t.ForwardDest.IsValid() && !t.ForwardPrefix.Contains(t.ForwardDest.Addr().Unmap()):
		el.field(path+".forward_prefix", "%s does not contain forward_dest %s, so the driver would never see that traffic", t.ForwardPrefix, t.ForwardDest.Addr())
	}
}

// validateWinRM checks how a real guest's WinRM is spoken to. Whether ca_file can be read is
// the preflight's business (wfplab check), as for password_file.
func validateWinRM(el *errorList, path string, t TargetSpec) {
	if t.Auth != "" {
		oneOf(el, path+".auth", t.Auth, contract.AuthSchemes)
	}
	switch {
	case t.Insecure && !t.HTTPS:
		el.field(path+".insecure", "only means something with https: true (it skips certificate checks)")
	case t.CAFile != "" && !t.HTTPS:
		el.field(path+".ca_file", "only means something with https: true (the CA that signed the guest's HTTPS certificate)")
	case t.CAFile != "" && t.Insecure:
		el.field(path+".insecure", "set either ca_file (check the guest's certificate against that CA) or insecure: true (do not check it), not both")
	}
}

func (s *Scenario) checkHost(el *errorList, field, host string) {
	switch {
	case host == "":
		el.field(field, "missing; the guest's IP address or DNS name")
		return
	case strings.Contains(host, "://"):
		el.field(field, "give the address only, without a scheme (set https: true for HTTPS), got %q", host)
		return
	}
	if a, err := netip.ParseAddr(host); err == nil {
		switch {
		case !usableAddr(a):
			el.field(field, "%s cannot be a guest address", a)
		case !s.allowed(a):
			el.field(field, "%s is outside lab.allow; add its network to lab.allow (traffic only goes to allowed networks and loopback)", a)
		}
		return
	}
	if _, _, err := splitHostPort(host); err == nil {
		el.field(field, "give the address only; the port goes in port, got %q", host)
		return
	}
	if len(host) > 253 || !dnsNameRE.MatchString(host) {
		el.field(field, "%q is neither an IP address nor a DNS name", host)
	}
}

func splitHostPort(s string) (string, string, error) {
	ap, err := netip.ParseAddrPort(s)
	if err == nil {
		return ap.Addr().String(), fmt.Sprint(ap.Port()), nil
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 || strings.Count(s, ":") != 1 {
		return "", "", fmt.Errorf("no port in %q", s)
	}
	return s[:i], s[i+1:], nil
}

func usableAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}

// allowed says whether traffic may go to a: loopback always, otherwise lab.allow.
func (s *Scenario) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, p := range s.Lab.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Scenario) validateLab(el *errorList) {
	for i, p := range s.Lab.Allow {
		if !p.IsValid() {
			el.field(indexPath("lab.allow", i), "not a valid network")
		} else if p.Masked() != p {
			el.field(indexPath("lab.allow", i), "%s has host bits set; did you mean %s?", p, p.Masked())
		}
	}
	if s.Lab.RebootTimeout <= 0 {
		el.field("lab.reboot_timeout", "must be a positive duration, got %s", s.Lab.RebootTimeout)
	}
}

func (s *Scenario) validatePhases(el *errorList) {
	if len(s.Phases) == 0 {
		el.field("phases", "empty; list %s (after installs the hotfix and reboots)", strings.Join(phaseNames, " and/or "))
		return
	}
	seen := map[string]int{}
	for i, p := range s.Phases {
		path := indexPath("phases", i)
		if !oneOf(el, path, p.Name, phaseNames) {
			continue
		}
		if first, dup := seen[p.Name]; dup {
			el.field(path, "%s is already phases[%d]; each phase runs once", p.Name, first)
			continue
		}
		seen[p.Name] = i
		if want := p.Name == PhaseAfter; p.InstallHotfix != want {
			el.field(path, "phase %s must have InstallHotfix=%v", p.Name, want)
		}
	}
	if b, okB := seen[PhaseBefore]; okB {
		if a, okA := seen[PhaseAfter]; okA && a < b {
			el.field(indexPath("phases", a), "after must come after before: the hotfix cannot be uninstalled between phases")
		}
	}
}

func (s *Scenario) validateTiming(el *errorList) {
	t := s.Timing
	positive := func(field string, d time.Duration) bool {
		if d <= 0 {
			el.field("timing."+field, "must be a positive duration, got %s", d)
			return false
		}
		return true
	}
	ok := positive("warmup", t.Warmup)
	ok = positive("window", t.Window) && ok
	ok = positive("settle", t.Settle) && ok
	okInterval := positive("sample_interval", t.SampleInterval)
	if positive("sample_timeout", t.SampleTimeout) && okInterval && t.SampleTimeout < 2*t.SampleInterval {
		el.field("timing.sample_timeout", "must be at least two sample intervals (%s), got %s", 2*t.SampleInterval, t.SampleTimeout)
	}
	if okInterval && (t.SampleInterval < 10*time.Millisecond || t.SampleInterval%time.Millisecond != 0) {
		el.field("timing.sample_interval", "must be a whole number of milliseconds, at least 10ms, got %s", t.SampleInterval)
		okInterval = false
	}
	if !ok {
		return
	}
	if t.Window <= t.Settle {
		el.field("timing.window", "must be longer than settle (%s): the estimate uses the window after settle, got %s", t.Settle, t.Window)
		return
	}
	if on := OnTime(t.Settle, t.Window, t.Block); t.Block < 0 || (t.Block > 0 && (t.Block < time.Second || on < time.Second || t.Window-t.Settle-on < time.Second)) {
		el.field("timing.block", "must be 0 (traffic throughout) or at least 1s with traffic on for 1s or more and off for 1s or more in each window after settle; got %s (on %s, off %s of the %s after settle)",
			t.Block, on, t.Window-t.Settle-on, t.Window-t.Settle)
	}
	if okInterval && t.Window-t.Settle < 3*t.SampleInterval {
		el.field("timing.window", "window minus settle (%s) holds fewer than 3 samples at sample_interval %s; a slope needs more", t.Window-t.Settle, t.SampleInterval)
	}
}

func (s *Scenario) validateThroughput(el *errorList) {
	t := s.Throughput
	if t.Windows == 0 {
		return
	}
	if t.Windows < MinThroughputWindows || t.Windows > maxThroughputWindows {
		el.field("throughput.windows", "must be 0 (off) or %d to %d: fewer windows cannot show a difference with a U test, got %d",
			MinThroughputWindows, maxThroughputWindows, t.Windows)
	}
	if t.Window <= 0 || t.Settle < 0 {
		el.field("throughput.window", "window must be positive and settle not negative, got window %s, settle %s", t.Window, t.Settle)
	} else if t.Window-t.Settle < 3*s.Timing.SampleInterval {
		el.field("throughput.window", "window minus settle (%s) holds fewer than 3 samples at sample_interval %s; make the window longer",
			t.Window-t.Settle, s.Timing.SampleInterval)
	}
	if t.Rate < 0 || math.IsNaN(t.Rate) || t.Rate > maxRate {
		el.field("throughput.rate", "must be a number of packets/s from 0 (each profile's own rate) to %v, got %v", maxRate, t.Rate)
	}
	if !(t.MaxLoss > 0 && t.MaxLoss < 1) {
		el.field("throughput.max_loss", "must be a share between 0 and 1 (0.05 is 5%%), got %v", t.MaxLoss)
	}
	if !(t.Alpha > 0 && t.Alpha <= 0.5) {
		el.field("throughput.alpha", "must be a significance level above 0 and at most 0.5, got %v", t.Alpha)
	}
}

func (s *Scenario) validateProfiles(el *errorList) {
	if len(s.Profiles) == 0 {
		el.field("profiles", "empty; list at least one of %s", strings.Join(profileKinds, ", "))
		return
	}
	if len(s.Profiles) > maxProfiles {
		el.field("profiles", "%d profiles; at most %d", len(s.Profiles), maxProfiles)
	}
	names := map[string]int{}
	for i, p := range s.Profiles {
		path := indexPath("profiles", i)
		if checkName(el, path+".name", p.Name, "each profile") {
			if first, dup := names[p.Name]; dup {
				el.field(path+".name", "%q is already the name of profiles[%d]; give this one its own name", p.Name, first)
			} else {
				names[p.Name] = i
			}
		}
		if !oneOf(el, path+".kind", p.Kind, profileKinds) {
			continue
		}
		if !(p.Rate > 0) || math.IsInf(p.Rate, 0) {
			el.field(path+".rate", "must be a positive number, got %v", p.Rate)
		} else if p.Rate > maxRate {
			el.field(path+".rate", "%v packets/s is beyond any guest; at most %v", p.Rate, maxRate)
		}
		lo, hi, why := 1, maxStreamPayload, "bytes per TCP segment"
		switch p.Kind {
		case KindFragmentForward:
			lo, hi, why = maxUnfragmentedUDP+1, maxUDPPayload, "so the datagram fragments: above one 1500-byte frame's UDP payload, within UDP's limit"
		case KindSingleNBL:
			lo, hi, why = 1, maxUnfragmentedUDP, "so the datagram fits one 1500-byte frame"
		}
		if p.PayloadBytes < lo || p.PayloadBytes > hi {
			el.field(path+".payload_bytes", "must be %d to %d (%s), got %d", lo, hi, why, p.PayloadBytes)
		}
		if p.Kind == KindStreamBurst {
			if p.BurstSegments < 1 || p.BurstSegments > maxBurstSegments {
				el.field(path+".burst_segments", "must be 1 to %d, got %d", maxBurstSegments, p.BurstSegments)
			}
			if p.Conns < 1 || p.Conns > maxConns {
				el.field(path+".conns", "must be 1 to %d, got %d", maxConns, p.Conns)
			}
		} else if p.BurstSegments != 0 || p.Conns != 0 {
			el.field(path, "burst_segments and conns are only for kind %s", KindStreamBurst)
		}
	}
}

func (s *Scenario) validateVerdict(el *errorList) {
	v := s.Verdict
	if !(v.ThresholdBps > 0) || math.IsInf(v.ThresholdBps, 0) {
		el.field("verdict.threshold_bps", "must be a positive number of bytes per second, got %v", v.ThresholdBps)
	}
	if !(v.ThresholdPerChain > 0) || math.IsInf(v.ThresholdPerChain, 0) {
		el.field("verdict.threshold_bytes_per_chain", "must be a positive number of bytes per blocked chain, got %v", v.ThresholdPerChain)
	}
	if !(v.Confidence > 0 && v.Confidence < 1) {
		el.field("verdict.confidence", "must be between 0 and 1 (exclusive), such as 0.95, got %v", v.Confidence)
	}
}

func (s *Scenario) validateExpect(el *errorList) {
	if len(s.Expect) > maxExpectations {
		el.field("expect", "%d expectations; at most %d", len(s.Expect), maxExpectations)
	}
	var targets, phases, profiles []string
	for _, t := range s.Targets {
		targets = append(targets, t.Name)
	}
	for _, p := range s.Phases {
		phases = append(phases, p.Name)
	}
	for _, p := range s.Profiles {
		profiles = append(profiles, p.Name)
	}
	ref := func(field, got, what string, names []string) {
		if got != "" && !slices.Contains(names, got) {
			el.field(field, "no %s named %q in this scenario%s (leave it out to match every %s)", what, got, didYouMean(got, names), what)
		}
	}
	for i, e := range s.Expect {
		path := indexPath("expect", i)
		if _, ok := el.lines[path]; !ok && e.Line > 0 {
			el.lines[path] = e.Line
		}
		oneOf(el, path+".verdict", e.Verdict, verdicts)
		ref(path+".target", e.Target, "target", targets)
		ref(path+".phase", e.Phase, "phase", phases)
		ref(path+".profile", e.Profile, "profile", profiles)
	}
}

// blockOnTime is how much of [from, to) (from a window's start) traffic runs with blocks of
// block: on, then off for as long, in turn.
func OnTime(from, to, block time.Duration) time.Duration {
	if block <= 0 {
		return max(to-from, 0)
	}
	var on time.Duration
	for start := time.Duration(0); start < to; start += 2 * block {
		if lo, hi := max(start, from), min(start+block, to); hi > lo {
			on += hi - lo
		}
	}
	return on
}
