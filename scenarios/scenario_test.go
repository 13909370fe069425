package scenarios

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

func mustParse(t *testing.T, name, in string) *Scenario {
	t.Helper()
	s, err := Parse(name, []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, "dir/minimal.yaml", "targets: [win7-x64]\n")
	if s.Name != "minimal" || s.Source != "dir/minimal.yaml" {
		t.Errorf("name %q source %q, want minimal and dir/minimal.yaml", s.Name, s.Source)
	}
	wantProvider := ProviderSpec{Kind: ProviderSim, SimRebootDown: 3 * time.Second, SimNoise: true}
	if s.Provider != wantProvider {
		t.Errorf("provider %+v, want %+v", s.Provider, wantProvider)
	}
	if want := []TargetSpec{{Name: "win7-x64", OS: "win7-x64"}}; !reflect.DeepEqual(s.Targets, want) {
		t.Errorf("targets %+v, want %+v", s.Targets, want)
	}
	if want := []Phase{{Name: "before"}, {Name: "after", InstallHotfix: true}}; !reflect.DeepEqual(s.Phases, want) {
		t.Errorf("phases %+v, want %+v", s.Phases, want)
	}
	if want := (Timing{Warmup: 10 * time.Second, Window: 60 * time.Second, Settle: 5 * time.Second, SampleInterval: time.Second, SampleTimeout: 10 * time.Second}); s.Timing != want {
		t.Errorf("timing %+v, want %+v", s.Timing, want)
	}
	wantProfiles := []Profile{
		{Name: "stream-burst", Kind: "stream-burst", Rate: 2000, PayloadBytes: 1460, BurstSegments: 8, Conns: 4},
		{Name: "fragment-forward", Kind: "fragment-forward", Rate: 500, PayloadBytes: 4000},
		{Name: "single-nbl", Kind: "single-nbl", Rate: 2000, PayloadBytes: 64},
	}
	if !reflect.DeepEqual(s.Profiles, wantProfiles) {
		t.Errorf("profiles %+v, want %+v", s.Profiles, wantProfiles)
	}
	if want := (VerdictRule{ThresholdBps: 4096, ThresholdPerChain: 128, Confidence: 0.95}); s.Verdict != want {
		t.Errorf("verdict %+v, want %+v", s.Verdict, want)
	}
	if s.Lab.RebootTimeout != 5*time.Minute || s.Lab.Allow != nil || s.Lab.HotfixDir != "" {
		t.Errorf("lab %+v, want reboot timeout 5m and nothing else", s.Lab)
	}
	if s.Expect != nil {
		t.Errorf("expect %+v, want none", s.Expect)
	}
}

func TestProfileDefaultsPerField(t *testing.T) {
	s := mustParse(t, "p.yaml", `targets: [win7-x64]
profiles:
  - {name: fast-burst, kind: stream-burst, rate: 8000}
  - {kind: fragment-forward, payload_bytes: 9000}
  - name: single-nbl
  - {name: big-burst, kind: stream-burst, burst_segments: 16, conns: 1, payload_bytes: 1000}
`)
	want := []Profile{
		{Name: "fast-burst", Kind: "stream-burst", Rate: 8000, PayloadBytes: 1460, BurstSegments: 8, Conns: 4},
		{Name: "fragment-forward", Kind: "fragment-forward", Rate: 500, PayloadBytes: 9000},
		{Name: "single-nbl", Kind: "single-nbl", Rate: 2000, PayloadBytes: 64},
		{Name: "big-burst", Kind: "stream-burst", Rate: 2000, PayloadBytes: 1000, BurstSegments: 16, Conns: 1},
	}
	if !reflect.DeepEqual(s.Profiles, want) {
		t.Errorf("profiles\n got %+v\nwant %+v", s.Profiles, want)
	}
}

func TestProviderForms(t *testing.T) {
	s := mustParse(t, "v.yaml", "provider: vagrant\ntargets: [win7-x64]\n")
	if s.Provider.Kind != ProviderVagrant {
		t.Errorf("kind %q, want vagrant", s.Provider.Kind)
	}
	s = mustParse(t, "v.yaml", "provider: {kind: vagrant}\ntargets: [win7-x64]\n")
	if s.Provider.VagrantDir != "vagrant" {
		t.Errorf("vagrant dir %q, want the default vagrant", s.Provider.VagrantDir)
	}
	s = mustParse(t, "v.yaml", "provider: {kind: sim, reboot_down: 500ms, noise: false}\ntargets: [win7-x64]\n")
	if s.Provider.SimRebootDown != 500*time.Millisecond || s.Provider.SimNoise {
		t.Errorf("provider %+v, want 500ms without noise", s.Provider)
	}
}

func TestStaticTargetFieldsAndDefaults(t *testing.T) {
	s := mustParse(t, "s.yaml", `provider: static
lab:
  allow: [192.168.56.0/24, 192.168.57.0/24]
targets:
  - name: g1
    os: 2008r2-x64
    host: 192.168.56.11
    port: 5986
    https: true
    insecure: true
    stream_port: 49152
    control_port: 49153
    forward_dest: 192.168.57.10:9000
    forward_prefix: 192.168.57.0/24
  - name: g2
    os: win7-x86
    host: guest2.lab.example
    port: 5985
    user_env: G2_USER
    password_file: secrets/g2.pw
    stream_port: 50000
    control_port: 50001
    forward_dest: 192.168.57.20:9001
    forward_prefix: 192.168.57.0/24
`)
	want := []TargetSpec{
		{Name: "g1", OS: "2008r2-x64", Host: "192.168.56.11", Port: 5986, HTTPS: true, Insecure: true,
			UserEnv: "WFPLAB_USER", PasswordEnv: "WFPLAB_PASSWORD", StreamPort: 49152, ControlPort: 49153,
			ForwardDest: netip.MustParseAddrPort("192.168.57.10:9000"), ForwardPrefix: netip.MustParsePrefix("192.168.57.0/24")},
		{Name: "g2", OS: "win7-x86", Host: "guest2.lab.example", Port: 5985, UserEnv: "G2_USER", PasswordFile: "secrets/g2.pw",
			StreamPort: 50000, ControlPort: 50001,
			ForwardDest: netip.MustParseAddrPort("192.168.57.20:9001"), ForwardPrefix: netip.MustParsePrefix("192.168.57.0/24")},
	}
	if !reflect.DeepEqual(s.Targets, want) {
		t.Errorf("targets\n got %+v\nwant %+v", s.Targets, want)
	}
	if !reflect.DeepEqual(s.Lab.Allow, []netip.Prefix{netip.MustParsePrefix("192.168.56.0/24"), netip.MustParsePrefix("192.168.57.0/24")}) {
		t.Errorf("allow %v", s.Lab.Allow)
	}
}

func TestCellsOrderAndExpectations(t *testing.T) {
	s := mustParse(t, "c.yaml", `targets: [win7-x64, vista-sp1-x86]
profiles: [single-nbl, stream-burst]
expect:
  - {phase: before, verdict: LEAK}
  - {profile: single-nbl, verdict: CLEAN}
  - {target: vista-sp1-x86, phase: before, profile: single-nbl, verdict: INCONCLUSIVE}
`)
	cells := s.Cells()
	type key struct{ target, phase, profile, expect string }
	var got []key
	for _, c := range cells {
		got = append(got, key{c.Target.Name, c.Phase.Name, c.Profile.Name, c.Expect})
	}
	want := []key{
		{"win7-x64", "before", "single-nbl", "CLEAN"},
		{"win7-x64", "before", "stream-burst", "LEAK"},
		{"win7-x64", "after", "single-nbl", "CLEAN"},
		{"win7-x64", "after", "stream-burst", ""},
		{"vista-sp1-x86", "before", "single-nbl", "INCONCLUSIVE"},
		{"vista-sp1-x86", "before", "stream-burst", "LEAK"},
		{"vista-sp1-x86", "after", "single-nbl", "CLEAN"},
		{"vista-sp1-x86", "after", "stream-burst", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cells\n got %v\nwant %v", got, want)
	}
	// Lines point at the expectation that decided.
	if cells[0].ExpectLine != 5 || cells[1].ExpectLine != 4 || cells[4].ExpectLine != 6 || cells[3].ExpectLine != 0 {
		t.Errorf("expect lines %d %d %d %d, want 5 4 6 0", cells[0].ExpectLine, cells[1].ExpectLine, cells[4].ExpectLine, cells[3].ExpectLine)
	}
	if !cells[2].Phase.InstallHotfix || cells[0].Phase.InstallHotfix {
		t.Errorf("after must install the hotfix, before must not")
	}
	if cells[1].Profile.BurstSegments != 8 || cells[1].Target.OS != "win7-x64" {
		t.Errorf("cell carries the whole profile and target: %+v", cells[1])
	}
}

func TestExpectationOrderMatters(t *testing.T) {
	// The same two rules in the other order: the general one, last, wins everywhere.
	s := mustParse(t, "c.yaml", `targets: [win7-x64]
expect:
  - {phase: before, profile: stream-burst, verdict: LEAK}
  - {verdict: CLEAN}
`)
	if v, line := s.Expected("win7-x64", "before", "stream-burst"); v != "CLEAN" || line != 4 {
		t.Errorf("got %s from line %d, want CLEAN from line 4", v, line)
	}
}

func TestVerdictCaseNormalised(t *testing.T) {
	s := mustParse(t, "c.yaml", "targets: [win7-x64]\nexpect:\n  - verdict: leak\n")
	if s.Expect[0].Verdict != "LEAK" || s.Expect[0].Line != 3 {
		t.Errorf("expectation %+v, want LEAK at line 3", s.Expect[0])
	}
}

func TestBuiltinKB979223(t *testing.T) {
	if !slices.Contains(BuiltinNames(), "kb979223") {
		t.Fatalf("BuiltinNames %v lacks kb979223", BuiltinNames())
	}
	s, err := Builtin(DefaultScenario)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "builtin:kb979223" || s.Provider.Kind != ProviderSim {
		t.Errorf("source %q provider %q", s.Source, s.Provider.Kind)
	}
	var names []string
	for _, tg := range s.Targets {
		names = append(names, tg.OS)
	}
	var catalog []string
	for _, o := range contract.Catalog() {
		catalog = append(catalog, o.Name)
	}
	if !reflect.DeepEqual(names, catalog) {
		t.Errorf("targets %v, want the whole catalog %v", names, catalog)
	}
	cells := s.Cells()
	if len(cells) != 36 {
		t.Fatalf("%d cells, want 36", len(cells))
	}
	counts := map[string]int{}
	for _, c := range cells {
		want := VerdictClean
		if c.Phase.Name == PhaseBefore && (c.Profile.Kind == KindStreamBurst || c.Profile.Kind == KindFragmentForward) {
			want = VerdictLeak
		}
		if c.Expect != want {
			t.Errorf("%s/%s/%s expects %q, want %q", c.Target.Name, c.Phase.Name, c.Profile.Name, c.Expect, want)
		}
		counts[c.Expect]++
	}
	if counts[VerdictLeak] != 12 || counts[VerdictClean] != 24 {
		t.Errorf("verdict counts %v, want 12 LEAK and 24 CLEAN", counts)
	}
	// The default run must stay well inside 3 minutes: two phases of sampling plus a
	// test-signing reboot and a hotfix reboot per guest, with room for setup.
	budget := 2*s.PhaseDuration() + 2*s.Provider.SimRebootDown
	if budget > 2*time.Minute {
		t.Errorf("one guest needs %s of sampling and reboots; the default run must finish well under 3m", budget)
	}
	if !strings.Contains(string(s.Text()), "# kb979223") {
		t.Errorf("Text() should return the commented source")
	}
}

func TestBuiltinUnknown(t *testing.T) {
	_, err := Builtin("kb97922")
	if err == nil || !strings.Contains(err.Error(), `did you mean "kb979223"?`) {
		t.Errorf("want a suggestion, got %v", err)
	}
	if _, err := Builtin("../kb979223"); err == nil {
		t.Errorf("a path is no built-in name")
	}
}

func TestStaticExampleLoads(t *testing.T) {
	s, err := Load(filepath.Join("examples", "static-lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Provider.Kind != ProviderStatic || len(s.Targets) != 2 || len(s.Cells()) != 12 {
		t.Fatalf("provider %q, %d targets, %d cells", s.Provider.Kind, len(s.Targets), len(s.Cells()))
	}
	// Relative paths are taken from the file's folder.
	if got, want := s.Targets[1].PasswordFile, filepath.Join("examples", "vista.pass"); got != want {
		t.Errorf("password_file %q, want %q", got, want)
	}
	if got, want := s.Lab.HotfixDir, filepath.Join("examples", "hotfixes"); got != want {
		t.Errorf("hotfix_dir %q, want %q", got, want)
	}
	for _, tg := range s.Targets {
		if !tg.ForwardDest.Addr().IsLoopback() || tg.Port == 0 || tg.StreamPort == 0 || tg.ControlPort == 0 {
			t.Errorf("example target %+v is incomplete or not loopback", tg)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("no/such/file.yaml")
	if err == nil || !strings.Contains(err.Error(), "no/such/file.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("want a not-exist error naming the path, got %v", err)
	}
}

func TestLoadErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, []byte("targets: [win7-x64]\ntiming:\n  window: forever\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file)
	if err == nil || !strings.HasPrefix(err.Error(), file+":3: timing.window: ") {
		t.Errorf("want %s:3: timing.window: ..., got %v", file, err)
	}
}

func TestOpen(t *testing.T) {
	for _, arg := range []string{"", "kb979223", "builtin:kb979223"} {
		s, err := Open(arg)
		if err != nil || s.Source != "builtin:kb979223" {
			t.Errorf("Open(%q): %v", arg, err)
		}
	}
	s, err := Open(filepath.Join("examples", "static-lab.yaml"))
	if err != nil || s.Name != "static-lab" {
		t.Errorf("Open(example): %v", err)
	}
	if _, err := Open("kb97922"); err == nil || !strings.Contains(err.Error(), `did you mean "kb979223"?`) {
		t.Errorf("Open(typo): want a suggestion, got %v", err)
	}
	if _, err := Open("missing.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing.yaml): want not-exist, got %v", err)
	}
}

// canonical strips what legitimately differs between a scenario and its re-parsed YAML.
func canonical(s *Scenario) Scenario {
	c := *s
	c.Source, c.text, c.lines = "", nil, nil
	c.Expect = nil
	for _, e := range s.Expect {
		e.Line = 0
		c.Expect = append(c.Expect, e)
	}
	return c
}

func TestYAMLRoundTrips(t *testing.T) {
	builtin, err := Builtin("kb979223")
	if err != nil {
		t.Fatal(err)
	}
	example, err := Load(filepath.Join("examples", "static-lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vagrant := mustParse(t, "v.yaml", "provider: {kind: vagrant, dir: /srv/lab, vagrant: /opt/vagrant/bin/vagrant, vagrant_provider: libvirt, snapshot: base}\ntargets: [win7-x64]\nphases: [after]\n")
	var qemus []*Scenario
	for _, f := range []string{"qemu-appliances.yaml", "qemu-windows.yaml"} {
		q, err := Load(filepath.Join("examples", f))
		if err != nil {
			t.Fatal(err)
		}
		qemus = append(qemus, q)
	}
	if q := qemus[1].Targets[1]; q.WinRMPort != 80 || q.Image != filepath.Join("examples", "images", "vista-sp2-x64.qcow2") || q.PasswordFile == "" || q.Accel != AccelAuto || q.CPUs != 2 {
		t.Errorf("qemu-windows target: %+v", q)
	}
	if a := qemus[0].Targets[0]; !a.Appliance || a.UserEnv != "" || a.WinRMPort != DefaultWinRMPort {
		t.Errorf("appliance target: %+v (appliances need no credentials)", a)
	}
	for _, s := range append([]*Scenario{builtin, example, vagrant}, qemus...) {
		out, err := s.YAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("run.json", out)
		if err != nil {
			t.Fatalf("%s: canonical YAML does not parse: %v\n%s", s.Name, err, out)
		}
		if a, b := canonical(s), canonical(back); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: round trip differs\n got %+v\nwant %+v", s.Name, b, a)
		}
		if strings.Contains(string(out), "password:") {
			t.Errorf("canonical YAML has a password key")
		}
	}
}

func TestValidateAfterEdit(t *testing.T) {
	s, err := Builtin("kb979223")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("the builtin does not validate: %v", err)
	}
	s.Timing.Window = s.Timing.Settle
	s.Profiles[2].Rate = -1
	err = s.Validate()
	var list Errors
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("want two errors, got %v", err)
	}
	// Lines still point into the built-in file.
	if list[0].Field != "timing.window" || list[0].Line == 0 || list[1].Field != "profiles[2].rate" || list[1].Line <= list[0].Line {
		t.Errorf("errors %v", err)
	}
	code := &Scenario{Name: "code", Provider: ProviderSpec{Kind: "sim"}}
	if err := code.Validate(); err == nil || !strings.Contains(err.Error(), "scenario code: targets: missing") {
		t.Errorf("want a targets error on a code-built scenario, got %v", err)
	}
}

func TestAliasesWork(t *testing.T) {
	s := mustParse(t, "a.yaml", `timing: &t {warmup: 1s, window: 5s, settle: 1s, sample_interval: 100ms}
targets: [win7-x64]
`)
	if s.Timing.Window != 5*time.Second {
		// An anchored value at the top level is an ordinary mapping; aliases elsewhere resolve.
		t.Errorf("timing %+v", s.Timing)
	}
	s = mustParse(t, "a.yaml", "targets:\n  - &g {name: a, os: win7-x64}\n  - {name: b, os: win7-x86}\nprofiles: [&p single-nbl]\nexpect:\n  - {profile: *p, verdict: CLEAN}\n")
	if s.Expect[0].Profile != "single-nbl" {
		t.Errorf("alias not resolved: %+v", s.Expect)
	}
}

// A throughput block takes defaults for what it leaves out and survives the canonical
// form; a scenario without one measures no throughput.
func TestThroughputBlock(t *testing.T) {
	s, err := Parse("t.yaml", []byte("targets: [win7-x64]\nthroughput:\n  window: 5s\n  rate: 4000\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Throughput{Windows: DefaultThroughputWindows, Window: 5 * time.Second, Settle: DefaultThroughputSettle,
		Rate: 4000, MaxLoss: DefaultMaxLoss, Alpha: DefaultAlpha}
	if s.Throughput != want || s.Throughput.RateFor(Profile{Rate: 10}) != 4000 {
		t.Fatalf("throughput %+v, want %+v", s.Throughput, want)
	}
	y, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.yaml", y)
	if err != nil || back.Throughput != want {
		t.Fatalf("round trip: %+v, %v\n%s", back.Throughput, err, y)
	}
	off, err := Parse("off.yaml", []byte("targets: [win7-x64]\n"))
	if err != nil || off.Throughput.On() || off.Throughput.RateFor(Profile{Rate: 10}) != 10 {
		t.Fatalf("no block: %+v, %v", off.Throughput, err)
	}
}

func TestFaultsKeyReachesTheTarget(t *testing.T) {
	sc, err := Parse("f.yaml", []byte("targets:\n  - name: win7-x64\n    faults: \"http_500_every=7, reboot_every=90s\"\n  - vista-sp1-x86\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := contract.Faults{HTTP500Every: 7, RebootEvery: 90 * time.Second}
	if sc.Targets[0].Faults != want || sc.Targets[1].Faults.Any() {
		t.Fatalf("faults %+v and %+v", sc.Targets[0].Faults, sc.Targets[1].Faults)
	}
	text, err := sc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.yaml", text)
	if err != nil || back.Targets[0].Faults != want {
		t.Fatalf("faults do not survive YAML: %v\n%s", err, text)
	}
}

func TestBlockAndThresholdPerChain(t *testing.T) {
	s := mustParse(t, "b.yaml", "targets: [win7-x64]\ntiming: {window: 12s, settle: 1s, block: 3s}\nverdict: {threshold_bytes_per_chain: 64}\n")
	if s.Timing.Block != 3*time.Second || s.Verdict.ThresholdPerChain != 64 {
		t.Fatalf("block %s, threshold %v B/chain", s.Timing.Block, s.Verdict.ThresholdPerChain)
	}
	out, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, "back.yaml", string(out))
	if back.Timing.Block != 3*time.Second || back.Verdict.ThresholdPerChain != 64 {
		t.Errorf("round trip lost them: %s", out)
	}
	for _, c := range []struct{ block, want time.Duration }{{3 * time.Second, 5 * time.Second}, {6 * time.Second, 5 * time.Second}, {0, 11 * time.Second}} {
		if on := OnTime(time.Second, 12*time.Second, c.block); on != c.want {
			t.Errorf("on-time in [1s, 12s) with %s blocks: %s, want %s", c.block, on, c.want)
		}
	}
	// One block on, one off: 6s in 12s has 5s on after settle.
	if s := mustParse(t, "half.yaml", "targets: [win7-x64]\ntiming: {window: 12s, settle: 1s, block: 6s}\n"); s.Timing.Block != 6*time.Second {
		t.Errorf("block %s", s.Timing.Block)
	}
	for _, c := range []struct{ in, field string }{
		{"timing: {window: 12s, settle: 1s, block: 11500ms}", "timing.block"}, // off for 0.5s only
		{"timing: {window: 4s, settle: 2s, block: 2s}", "timing.block"},       // never on after settle
		{"timing: {window: 12s, settle: 1s, block: 500ms}", "timing.block"},
		{"timing: {block: -1s}", "timing.block"},
		{"verdict: {threshold_bytes_per_chain: 0}", "verdict.threshold_bytes_per_chain"},
	} {
		_, err := Parse("bad.yaml", []byte("targets: [win7-x64]\n"+c.in+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v, want one naming %s", c.in, err, c.field)
		}
	}
}

// A static target without port gets its OS's stock WinRM listener: 80/443 on Vista and
// Server 2008 (WinRM 1.1), 5985/5986 elsewhere; auth and ca_file are read as written.
func TestStaticWinRMDefaults(t *testing.T) {
	target := func(name, os, extra string, n int) string {
		return fmt.Sprintf("  - {name: %s, os: %s, host: 127.0.0.%d, stream_port: 49152, control_port: 49153, "+
			"forward_dest: 127.0.0.%d:9000, forward_prefix: 127.0.0.%d/32%s}\n", name, os, n, n, n, extra)
	}
	s := mustParse(t, "s.yaml", "provider: static\ntargets:\n"+
		target("a", "vista-sp1-x86", "", 1)+
		target("b", "2008-sp2-x64", ", https: true, ca_file: ca.pem, auth: NTLM", 2)+
		target("c", "win7-x64", ", auth: basic", 3)+
		target("d", "2008r2-x64", ", https: true, insecure: true", 4)+
		target("e", "vista-sp2-x64", ", port: 5985", 5))
	want := []struct {
		port       int
		auth, ca   string
		https, ins bool
	}{{80, "", "", false, false}, {443, "ntlm", "ca.pem", true, false}, {5985, "basic", "", false, false},
		{5986, "", "", true, true}, {5985, "", "", false, false}}
	for i, w := range want {
		g := s.Targets[i]
		if g.Port != w.port || g.Auth != w.auth || g.CAFile != w.ca || g.HTTPS != w.https || g.Insecure != w.ins {
			t.Errorf("target %s: port %d auth %q ca_file %q https %v insecure %v; want %+v", g.Name, g.Port, g.Auth, g.CAFile, g.HTTPS, g.Insecure, w)
		}
	}
	text, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, "s.yaml", string(text))
	if !reflect.DeepEqual(back.Targets, s.Targets) {
		t.Errorf("round trip changed the targets:\n%+v\n%+v", back.Targets, s.Targets)
	}
}
