package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/wfplab/wfplab/lab/contract"
)

// maxFileBytes bounds what Parse reads: scenarios are a few kilobytes.
const maxFileBytes = 1 << 20

// The keys each mapping accepts, in the order the canonical form writes them.
var (
	topKeys      = []string{"name", "description", "provider", "targets", "lab", "phases", "timing", "profiles", "verdict", "expect", "throughput"}
	providerKeys = []string{"kind", "reboot_down", "noise", "hotfix_throughput_loss", "dir", "vagrant", "vagrant_provider", "snapshot", "memory_budget_mb", "boot_timeout", "appliance_kernel"}
	targetKeys   = []string{"name", "os", "host", "port", "https", "insecure", "auth", "ca_file", "user_env", "password_env", "password_file",
		"stream_port", "control_port", "forward_dest", "forward_prefix",
		"image", "appliance", "kernel", "initrd", "append", "memory_mb", "cpus", "accel", "winrm_port", "hang_pool_mb", "faults"}
	credentialKeys   = []string{"user_env", "password_env", "password_file"}
	staticTargetKeys = targetKeys[2:15]
	qemuTargetKeys   = targetKeys[15:25]
	// winrmKeys say how to speak WinRM to a real guest: static targets and Vagrant machines
	// (whose winrm-config tells host, port and account, but not transport or auth).
	winrmKeys      = targetKeys[4:8]
	labKeys        = []string{"allow", "hotfix_dir", "reboot_timeout"}
	timingKeys     = []string{"warmup", "window", "settle", "sample_interval", "sample_timeout", "block"}
	profileKeys    = []string{"name", "kind", "rate", "payload_bytes", "burst_segments", "conns"}
	verdictKeys    = []string{"threshold_bps", "threshold_bytes_per_chain", "confidence"}
	expectKeys     = []string{"target", "phase", "profile", "verdict"}
	throughputKeys = []string{"windows", "window", "settle", "rate", "max_loss", "alpha"}
)

// secretKeys are keys a user might try for a password; the answer names the right ones.
var secretKeys = []string{"password", "passwd", "pass", "pwd", "secret"}

const noPasswordMsg = "a password does not belong in a scenario file; use password_env (the name of an " +
	"environment variable holding it) or password_file (a file holding it)"

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument reads exactly one YAML document. yaml.v3 has no known panics left, but
// bad input must never take the process down, so a panic becomes an error too.
func parseDocument(file string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, Errors{{File: file, Line: 1, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	if len(data) > maxFileBytes {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("file is %d bytes; a scenario is at most %d", len(data), maxFileBytes)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Line: 1, Msg: "the file is empty; a scenario needs at least targets"}}
		}
		return nil, yamlSyntaxError(file, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, Errors{{File: file, Line: extra.Line, Msg: "a second YAML document starts here; a scenario file holds one (remove the '---')"}}
	case !errors.Is(err, io.EOF):
		return nil, yamlSyntaxError(file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, Errors{{File: file, Line: 1, Msg: "the file holds no YAML document"}}
	}
	return doc.Content[0], nil
}

func yamlSyntaxError(file string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Errors{{File: file, Line: line, Msg: "YAML syntax: " + m[2]}}
	}
	return Errors{{File: file, Line: 1, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}}
}

// decoder turns the node tree into a Scenario, applying defaults for what is absent and
// recording each field's line for the validator.
type decoder struct {
	*errorList
	provider string // provider kind, once known: decides which target keys are allowed
}

// fields is one mapping's known keys; null values count as absent.
type fields struct {
	path string
	line int
	key  map[string]*yaml.Node
	val  map[string]*yaml.Node
}

func (f *fields) has(key string) bool { return f.val[key] != nil }

func resolve(n *yaml.Node) *yaml.Node {
	// An anchor cannot sit on an alias, so one hop resolves; the bound is a guard.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 4; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe renders a node for "got ..." without echoing more than a short excerpt.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if utf8.RuneCountInString(v) > 40 {
			v = string([]rune(v)[:40]) + "…"
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(v)
		}
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return v
	}
	return "an alias"
}

func (d *decoder) mapping(n *yaml.Node, path string, known ...string) (*fields, bool) {
	n = resolve(n)
	if n == nil {
		return nil, false
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if n.Kind != yaml.MappingNode {
		d.at(n.Line, path, "must be a mapping (key: value lines), got %s", describe(n))
		return nil, false
	}
	f := &fields{path: path, line: n.Line, key: map[string]*yaml.Node{}, val: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			d.at(n.Content[i].Line, path, "keys must be plain names, got %s", describe(n.Content[i]))
			continue
		}
		key := k.Value
		kp := joinPath(path, key)
		switch {
		case key == "<<":
			d.at(k.Line, kp, "merge keys (<<) are not supported; write the fields out")
			continue
		case slices.Contains(secretKeys, strings.ToLower(key)):
			d.at(k.Line, kp, noPasswordMsg)
			continue
		case !slices.Contains(known, key):
			msg := "unknown key" + didYouMean(key, known)
			if suggest(key, known) == "" {
				msg += "; known keys here: " + strings.Join(known, ", ")
			}
			d.at(k.Line, kp, "%s", msg)
			continue
		}
		if first, dup := f.key[key]; dup {
			d.at(k.Line, kp, "set twice (first at line %d); keep one", first.Line)
			continue
		}
		f.key[key] = k
		d.lines[kp] = k.Line
		if v != nil && !isNull(v) {
			d.lines[kp] = v.Line
			f.val[key] = v
		}
	}
	return f, true
}

// sequence returns a list's items, or false (with an error) when the node is not a list.
func (d *decoder) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = resolve(n)
	d.lines[path] = n.Line
	if n.Kind != yaml.SequenceNode {
		d.at(n.Line, path, "must be a list (lines starting with '- '), got %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

// scalar returns a scalar value node, or false (with an error) for a mapping or list.
func (d *decoder) scalar(f *fields, key, want string) (*yaml.Node, bool) {
	v := f.val[key]
	if v == nil {
		return nil, false
	}
	if v.Kind != yaml.ScalarNode {
		d.at(v.Line, joinPath(f.path, key), "must be %s, got %s", want, describe(v))
		return nil, false
	}
	return v, true
}

func (d *decoder) getString(f *fields, key string, dst *string) bool {
	v, ok := d.scalar(f, key, "text")
	if ok {
		*dst = v.Value
	}
	return ok
}

func (d *decoder) getBool(f *fields, key string, dst *bool) bool {
	v, ok := d.scalar(f, key, "true or false")
	if !ok {
		return false
	}
	if v.ShortTag() != "!!bool" || v.Decode(dst) != nil {
		d.at(v.Line, joinPath(f.path, key), "must be true or false, got %s", describe(v))
		return false
	}
	return true
}

// getNumber reads an int or float; want describes the valid values ("a positive number").
func (d *decoder) getNumber(f *fields, key, want string, dst *float64) bool {
	v, ok := d.scalar(f, key, want)
	if !ok {
		return false
	}
	var x float64
	if tag := v.ShortTag(); (tag != "!!int" && tag != "!!float") || v.Decode(&x) != nil {
		d.at(v.Line, joinPath(f.path, key), "must be %s, got %s", want, describe(v))
		return false
	}
	*dst = x
	return true
}

func (d *decoder) getInt(f *fields, key, want string, dst *int) bool {
	v, ok := d.scalar(f, key, want)
	if !ok {
		return false
	}
	var x int64
	if v.ShortTag() != "!!int" || v.Decode(&x) != nil || x < math.MinInt32 || x > math.MaxInt32 {
		d.at(v.Line, joinPath(f.path, key), "must be %s, got %s", want, describe(v))
		return false
	}
	*dst = int(x)
	return true
}

const durationWant = `a Go duration such as "500ms", "12s" or "5m"`

func (d *decoder) getDuration(f *fields, key string, dst *time.Duration) bool {
	v, ok := d.scalar(f, key, durationWant)
	if !ok {
		return false
	}
	if tag := v.ShortTag(); tag == "!!int" || tag == "!!float" {
		d.at(v.Line, joinPath(f.path, key), "must be %s, got %s (a number without a unit)", durationWant, describe(v))
		return false
	}
	x, err := time.ParseDuration(strings.TrimSpace(v.Value))
	if err != nil {
		d.at(v.Line, joinPath(f.path, key), "must be %s, got %s", durationWant, describe(v))
		return false
	}
	*dst = x
	return true
}

// getPrefixNode reads a CIDR network; host bits must be clear so the file says what it means.
func (d *decoder) getPrefixNode(v *yaml.Node, path string, dst *netip.Prefix) bool {
	const want = "a network in CIDR form such as 192.168.56.0/24"
	if v.Kind != yaml.ScalarNode {
		d.at(v.Line, path, "must be %s, got %s", want, describe(v))
		return false
	}
	text := strings.TrimSpace(v.Value)
	p, err := netip.ParsePrefix(text)
	if err != nil {
		hint := ""
		if a, aerr := netip.ParseAddr(text); aerr == nil {
			hint = fmt.Sprintf("; for one address write %s", netip.PrefixFrom(a, a.BitLen()))
		}
		d.at(v.Line, path, "must be %s, got %s%s", want, describe(v), hint)
		return false
	}
	if m := p.Masked(); m != p {
		d.at(v.Line, path, "%s has host bits set; did you mean %s?", p, m)
		return false
	}
	*dst = p
	return true
}

func (d *decoder) scenario(root *yaml.Node) (*Scenario, bool) {
	s := &Scenario{
		Provider: ProviderSpec{Kind: ProviderSim, SimRebootDown: DefaultSimRebootDown, SimNoise: true},
		Lab:      Lab{RebootTimeout: DefaultRebootTimeout},
		Phases:   defaultPhases(),
		Timing:   defaultTiming(),
		Profiles: defaultProfiles(),
		Verdict:  VerdictRule{ThresholdBps: DefaultThresholdBps, ThresholdPerChain: DefaultThresholdPerChain, Confidence: DefaultConfidence},
	}
	d.lines[""] = root.Line
	f, ok := d.mapping(root, "", topKeys...)
	if !ok {
		return s, false
	}
	s.Name = defaultName(d.file)
	d.getString(f, "name", &s.Name)
	d.getString(f, "description", &s.Description)
	if v := f.val["provider"]; v != nil {
		d.providerSection(v, &s.Provider)
	}
	if s.Provider.Kind != ProviderSim {
		s.Provider.SimRebootDown, s.Provider.SimNoise, s.Provider.SimHotfixLoss = 0, false, 0
	}
	d.provider = s.Provider.Kind
	if v := f.val["targets"]; v != nil {
		if items, ok := d.sequence(v, "targets"); ok {
			for i, item := range items {
				if i == maxTargets {
					d.at(item.Line, "targets", "more than %d targets; split the scenario", maxTargets)
					break
				}
				s.Targets = append(s.Targets, d.target(item, indexPath("targets", i)))
			}
		}
	}
	if v := f.val["lab"]; v != nil {
		d.lab(v, &s.Lab)
	}
	if v := f.val["phases"]; v != nil {
		s.Phases = d.phases(v)
	}
	if v := f.val["timing"]; v != nil {
		if tf, ok := d.mapping(v, "timing", timingKeys...); ok {
			d.getDuration(tf, "warmup", &s.Timing.Warmup)
			d.getDuration(tf, "window", &s.Timing.Window)
			d.getDuration(tf, "settle", &s.Timing.Settle)
			d.getDuration(tf, "sample_interval", &s.Timing.SampleInterval)
			d.getDuration(tf, "sample_timeout", &s.Timing.SampleTimeout)
			d.getDuration(tf, "block", &s.Timing.Block)
		}
	}
	if v := f.val["profiles"]; v != nil {
		s.Profiles = nil
		if items, ok := d.sequence(v, "profiles"); ok {
			for i, item := range items {
				if i == maxProfiles {
					d.at(item.Line, "profiles", "more than %d profiles; split the scenario", maxProfiles)
					break
				}
				s.Profiles = append(s.Profiles, d.profile(item, indexPath("profiles", i)))
			}
		}
	}
	if v := f.val["verdict"]; v != nil {
		if vf, ok := d.mapping(v, "verdict", verdictKeys...); ok {
			d.getNumber(vf, "threshold_bps", "a positive number of bytes per second", &s.Verdict.ThresholdBps)
			d.getNumber(vf, "threshold_bytes_per_chain", "a positive number of bytes per blocked chain", &s.Verdict.ThresholdPerChain)
			d.getNumber(vf, "confidence", "a number between 0 and 1 such as 0.95", &s.Verdict.Confidence)
		}
	}
	if v := f.val["throughput"]; v != nil {
		if tf, ok := d.mapping(v, "throughput", throughputKeys...); ok {
			s.Throughput = Throughput{Windows: DefaultThroughputWindows, Window: DefaultThroughputWindow,
				Settle: DefaultThroughputSettle, MaxLoss: DefaultMaxLoss, Alpha: DefaultAlpha}
			d.getInt(tf, "windows", "a whole number of windows (0 turns throughput off)", &s.Throughput.Windows)
			d.getDuration(tf, "window", &s.Throughput.Window)
			d.getDuration(tf, "settle", &s.Throughput.Settle)
			d.getNumber(tf, "rate", "a positive number of packets per second", &s.Throughput.Rate)
			d.getNumber(tf, "max_loss", "a share between 0 and 1 such as 0.05", &s.Throughput.MaxLoss)
			d.getNumber(tf, "alpha", "a significance level such as 0.05", &s.Throughput.Alpha)
		}
	}
	if v := f.val["expect"]; v != nil {
		if items, ok := d.sequence(v, "expect"); ok {
			for i, item := range items {
				if i == maxExpectations {
					d.at(item.Line, "expect", "more than %d expectations; use empty fields to match many cells", maxExpectations)
					break
				}
				if e, ok := d.expectation(item, indexPath("expect", i)); ok {
					s.Expect = append(s.Expect, e)
				}
			}
		}
	}
	return s, true
}

// defaultName is the file's base name without extension, reduced to the name alphabet.
func defaultName(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	var b strings.Builder
	for _, r := range base {
		if r < utf8.RuneSelf && (r == '.' || r == '_' || r == '-' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-._")
	if name == "" || len(name) > maxNameLen {
		return "scenario"
	}
	return name
}

func (d *decoder) providerSection(v *yaml.Node, p *ProviderSpec) {
	if v.Kind == yaml.ScalarNode {
		d.lines["provider.kind"] = v.Line
		p.Kind = v.Value
		if p.Kind == ProviderVagrant {
			p.VagrantDir = DefaultVagrantDir
		}
		return
	}
	f, ok := d.mapping(v, "provider", providerKeys...)
	if !ok {
		return
	}
	if !d.getString(f, "kind", &p.Kind) {
		if _, there := f.key["kind"]; !there {
			d.at(f.line, "provider.kind", "missing; one of %s", strings.Join(providerKinds, ", "))
		}
		p.Kind = ""
		return
	}
	kindOnly := map[string][]string{ProviderSim: {"reboot_down", "noise", "hotfix_throughput_loss"}, ProviderVagrant: {"dir", "vagrant", "vagrant_provider", "snapshot"},
		ProviderQEMU: {"memory_budget_mb", "boot_timeout", "appliance_kernel"}}
	for kind, keys := range kindOnly {
		for _, key := range keys {
			if k := f.key[key]; k != nil && p.Kind != kind && slices.Contains(providerKinds, p.Kind) {
				d.at(k.Line, joinPath("provider", key), "only for provider kind %s (this one is %s)", kind, p.Kind)
			}
		}
	}
	d.getInt(f, "memory_budget_mb", "a size in MiB", &p.QEMUMemoryBudgetMB)
	d.getDuration(f, "boot_timeout", &p.QEMUBootTimeout)
	d.getString(f, "appliance_kernel", &p.ApplianceKernel)
	d.getDuration(f, "reboot_down", &p.SimRebootDown)
	d.getBool(f, "noise", &p.SimNoise)
	d.getString(f, "vagrant", &p.VagrantCLI)
	d.getString(f, "vagrant_provider", &p.VagrantProvider)
	d.getString(f, "snapshot", &p.VagrantSnapshot)
	d.getNumber(f, "hotfix_throughput_loss", "a share between 0 and 1 such as 0.2", &p.SimHotfixLoss)
	if !d.getString(f, "dir", &p.VagrantDir) && p.Kind == ProviderVagrant && !f.has("dir") {
		p.VagrantDir = DefaultVagrantDir
	}
}

// faults reads a target's `faults:` spec (contract.ParseFaults), for simulated guests only.
func (d *decoder) faults(f *fields, path string, t *TargetSpec) {
	v, ok := d.scalar(f, "faults", "a fault spec such as \"http_500_every=7,reboot_every=90s\"")
	if !ok {
		return
	}
	if d.provider != ProviderSim && slices.Contains(providerKinds, d.provider) {
		d.at(v.Line, joinPath(path, "faults"), "only simulated guests inject faults (provider kind sim; this scenario's provider is %s)", d.provider)
		return
	}
	faults, err := contract.ParseFaults(v.Value)
	if err != nil {
		d.at(v.Line, joinPath(path, "faults"), "%v", err)
		return
	}
	t.Faults = faults
}

func (d *decoder) target(item *yaml.Node, path string) TargetSpec {
	item = resolve(item)
	d.lines[path] = item.Line
	if item.Kind == yaml.ScalarNode && !isNull(item) {
		// "- win7-x64": a catalog key as both name and OS.
		d.lines[path+".name"] = item.Line
		d.lines[path+".os"] = item.Line
		return d.targetDefaults(TargetSpec{Name: item.Value, OS: item.Value}, false)
	}
	f, ok := d.mapping(item, path, targetKeys...)
	if !ok {
		return TargetSpec{}
	}
	var t TargetSpec
	d.getString(f, "name", &t.Name)
	d.faults(f, path, &t)
	if !d.getString(f, "os", &t.OS) {
		t.OS = t.Name
		d.lines[path+".os"] = d.lineOf(path + ".name")
	}
	if d.provider != ProviderQEMU && slices.Contains(providerKinds, d.provider) {
		for _, key := range qemuTargetKeys {
			if k := f.key[key]; k != nil {
				d.at(k.Line, joinPath(path, key), "only for provider kind qemu (this scenario's provider is %s)", d.provider)
			}
		}
	}
	if d.provider == ProviderQEMU {
		for _, key := range staticTargetKeys {
			if k := f.key[key]; k != nil && !slices.Contains(credentialKeys, key) {
				d.at(k.Line, joinPath(path, key), "only for provider kind static (this scenario's provider is qemu, which finds addresses itself)")
			}
		}
		d.credentials(f, path, &t)
		d.getString(f, "image", &t.Image)
		d.getBool(f, "appliance", &t.Appliance)
		d.getString(f, "kernel", &t.Kernel)
		d.getString(f, "initrd", &t.Initrd)
		d.getString(f, "append", &t.Append)
		d.getInt(f, "memory_mb", "a size in MiB", &t.MemoryMB)
		d.getInt(f, "cpus", "a number of CPUs", &t.CPUs)
		d.getString(f, "accel", &t.Accel)
		d.getInt(f, "winrm_port", "a port number (1-65535)", &t.WinRMPort)
		d.getInt(f, "hang_pool_mb", "a size in MiB", &t.HangPoolMB)
		return d.qemuDefaults(t, f.has("password_file"))
	}
	if d.provider != ProviderStatic && slices.Contains(providerKinds, d.provider) {
		vagrant := d.provider == ProviderVagrant
		for _, key := range staticTargetKeys {
			if k := f.key[key]; k != nil && !(vagrant && slices.Contains(winrmKeys, key)) {
				d.at(k.Line, joinPath(path, key), "only for provider kind static (this scenario's provider is %s)", d.provider)
			}
		}
		if vagrant {
			d.winrm(f, &t)
		}
		return t
	}
	d.getString(f, "host", &t.Host)
	t.Host = strings.TrimSpace(t.Host)
	d.getInt(f, "port", "a port number (1-65535)", &t.Port)
	d.winrm(f, &t)
	d.credentials(f, path, &t)
	d.getInt(f, "stream_port", "a port number (1-65535)", &t.StreamPort)
	d.getInt(f, "control_port", "a port number (1-65535)", &t.ControlPort)
	if v, ok := d.scalar(f, "forward_dest", "ADDRESS:PORT"); ok {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(v.Value))
		if err != nil {
			d.at(v.Line, path+".forward_dest", "must be ADDRESS:PORT such as 192.168.57.10:9000 (IPv6: [fd00::10]:9000), got %s", describe(v))
		} else {
			t.ForwardDest = ap
		}
	}
	if v := f.val["forward_prefix"]; v != nil {
		d.getPrefixNode(v, path+".forward_prefix", &t.ForwardPrefix)
	}
	return d.targetDefaults(t, f.has("password_file"))
}

// winrm reads how to speak WinRM to a real guest.
func (d *decoder) winrm(f *fields, t *TargetSpec) {
	d.getBool(f, "https", &t.HTTPS)
	d.getBool(f, "insecure", &t.Insecure)
	d.getString(f, "auth", &t.Auth)
	t.Auth = strings.ToLower(strings.TrimSpace(t.Auth))
	d.getString(f, "ca_file", &t.CAFile)
}

// credentials reads where a real guest's user name and password come from.
func (d *decoder) credentials(f *fields, path string, t *TargetSpec) {
	d.getString(f, "user_env", &t.UserEnv)
	d.getString(f, "password_env", &t.PasswordEnv)
	d.getString(f, "password_file", &t.PasswordFile)
	if f.has("password_env") && f.has("password_file") {
		d.at(f.key["password_file"].Line, path+".password_file", "set either password_env or password_file, not both")
	}
}

// qemuDefaults fills a QEMU target's defaults. Appliances are simulated guests, whose
// account is the simulator's: they need no credentials from the user.
func (d *decoder) qemuDefaults(t TargetSpec, hasFile bool) TargetSpec {
	if t.MemoryMB == 0 {
		t.MemoryMB = DefaultQEMUMemoryMB
	}
	if t.CPUs == 0 {
		t.CPUs = DefaultQEMUCPUs
	}
	if t.Accel == "" {
		t.Accel = AccelAuto
	}
	if t.WinRMPort == 0 {
		t.WinRMPort = DefaultWinRMPort
	}
	if t.Appliance {
		return t
	}
	return credentialDefaults(t, hasFile)
}

func (d *decoder) targetDefaults(t TargetSpec, hasFile bool) TargetSpec {
	if d.provider != ProviderStatic {
		return t
	}
	if t.Port == 0 {
		t.Port = DefaultPort(t.OS, t.HTTPS)
	}
	return credentialDefaults(t, hasFile)
}

// credentialDefaults names the default variables for a real guest's user and password.
func credentialDefaults(t TargetSpec, hasFile bool) TargetSpec {
	if t.UserEnv == "" {
		t.UserEnv = DefaultUserEnv
	}
	if t.PasswordEnv == "" && !hasFile {
		t.PasswordEnv = DefaultPasswordEnv
	}
	return t
}

func (d *decoder) lab(v *yaml.Node, l *Lab) {
	f, ok := d.mapping(v, "lab", labKeys...)
	if !ok {
		return
	}
	if v := f.val["allow"]; v != nil {
		if items, ok := d.sequence(v, "lab.allow"); ok {
			for i, item := range items {
				p := indexPath("lab.allow", i)
				item = resolve(item)
				d.lines[p] = item.Line
				var prefix netip.Prefix
				if d.getPrefixNode(item, p, &prefix) {
					l.Allow = append(l.Allow, prefix)
				}
			}
		}
	}
	d.getString(f, "hotfix_dir", &l.HotfixDir)
	d.getDuration(f, "reboot_timeout", &l.RebootTimeout)
}

func (d *decoder) phases(v *yaml.Node) []Phase {
	items, ok := d.sequence(v, "phases")
	if !ok {
		return nil
	}
	var out []Phase
	for i, item := range items {
		p := indexPath("phases", i)
		item = resolve(item)
		d.lines[p] = item.Line
		if item.Kind != yaml.ScalarNode || isNull(item) {
			d.at(item.Line, p, "must be %s, got %s", strings.Join(phaseNames, " or "), describe(item))
			continue
		}
		out = append(out, Phase{Name: item.Value, InstallHotfix: item.Value == PhaseAfter})
	}
	return out
}

func (d *decoder) profile(item *yaml.Node, path string) Profile {
	item = resolve(item)
	d.lines[path] = item.Line
	if item.Kind == yaml.ScalarNode && !isNull(item) {
		// "- stream-burst": a kind with its defaults.
		d.lines[path+".kind"] = item.Line
		d.lines[path+".name"] = item.Line
		if p, ok := ProfileDefaults(item.Value); ok {
			return p
		}
		return Profile{Name: item.Value, Kind: item.Value}
	}
	f, ok := d.mapping(item, path, profileKeys...)
	if !ok {
		return Profile{}
	}
	var name, kind string
	d.getString(f, "name", &name)
	if !d.getString(f, "kind", &kind) {
		if _, there := f.key["kind"]; !there && slices.Contains(profileKinds, name) {
			kind = name // "- name: single-nbl" names its kind
		}
		d.lines[path+".kind"] = d.lineOf(path + ".name")
	}
	p, known := ProfileDefaults(kind)
	p.Kind = kind
	if name != "" {
		p.Name = name
	}
	if known && kind != KindStreamBurst {
		for _, key := range []string{"burst_segments", "conns"} {
			if k := f.key[key]; k != nil {
				d.at(k.Line, joinPath(path, key), "only for kind %s (this profile is %s)", KindStreamBurst, kind)
			}
		}
	}
	d.getNumber(f, "rate", "a positive number", &p.Rate)
	d.getInt(f, "payload_bytes", "a whole number of bytes", &p.PayloadBytes)
	if kind == KindStreamBurst || !known {
		d.getInt(f, "burst_segments", "a whole number of segments", &p.BurstSegments)
		d.getInt(f, "conns", "a whole number of connections", &p.Conns)
	}
	return p
}

func (d *decoder) expectation(item *yaml.Node, path string) (Expectation, bool) {
	f, ok := d.mapping(item, path, expectKeys...)
	if !ok {
		return Expectation{}, false
	}
	e := Expectation{Line: f.line}
	d.getString(f, "target", &e.Target)
	d.getString(f, "phase", &e.Phase)
	d.getString(f, "profile", &e.Profile)
	if d.getString(f, "verdict", &e.Verdict) {
		e.Verdict = strings.ToUpper(strings.TrimSpace(e.Verdict))
	}
	return e, true
}
