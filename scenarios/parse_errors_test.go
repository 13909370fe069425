package scenarios

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// staticTarget is a valid static target at list indent, for cases that break one field.
const staticTarget = `  - name: g1
    os: win7-x64
    host: 127.0.0.11
    port: 5985
    password_env: LAB_PW
    stream_port: 49152
    control_port: 49153
    forward_dest: 127.0.0.11:9000
    forward_prefix: 127.0.0.11/32
`

type badCase struct {
	name  string
	yaml  string
	line  int
	field string
	msg   string // substring of the message
}

var badCases = []badCase{
	{"hotfix loss under static", "provider:\n  kind: static\n  hotfix_throughput_loss: 0.2\ntargets:\n" + staticTarget,
		3, "provider.hotfix_throughput_loss", "only for provider kind sim"},
	{"hotfix loss too big", "provider: {kind: sim, hotfix_throughput_loss: 1.5}\ntargets: [win7-x64]\n",
		1, "provider.hotfix_throughput_loss", "must be a share from 0 to below 1"},
	{"throughput too few windows", "targets: [win7-x64]\nthroughput:\n  windows: 3\n",
		3, "throughput.windows", "must be 0 (off) or 6 to 100"},
	{"throughput window too short", "targets: [win7-x64]\ntiming: {sample_interval: 100ms}\nthroughput:\n  window: 300ms\n  settle: 100ms\n",
		4, "throughput.window", "holds fewer than 3 samples"},
	{"throughput max_loss", "targets: [win7-x64]\nthroughput:\n  max_loss: 5\n",
		3, "throughput.max_loss", "must be a share between 0 and 1"},
	{"throughput alpha", "targets: [win7-x64]\nthroughput:\n  alpha: 0\n",
		3, "throughput.alpha", "must be a significance level"},
	{"throughput unknown key", "targets: [win7-x64]\nthroughput:\n  ceiling: 4000\n",
		3, "throughput.ceiling", "unknown key"},
	{"rate not a number", "targets: [win7-x64]\nprofiles:\n  - stream-burst\n  - kind: single-nbl\n    rate: fast\n",
		5, "profiles[1].rate", `must be a positive number, got "fast"`},
	{"rate zero", "targets: [win7-x64]\nprofiles:\n  - {kind: single-nbl, rate: 0}\n",
		3, "profiles[0].rate", "must be a positive number, got 0"},
	{"rate negative", "targets: [win7-x64]\nprofiles:\n  - kind: single-nbl\n    rate: -5\n",
		4, "profiles[0].rate", "must be a positive number, got -5"},
	{"rate quoted", "targets: [win7-x64]\nprofiles:\n  - kind: single-nbl\n    rate: \"2000\"\n",
		4, "profiles[0].rate", `got "2000"`},
	{"unknown top key close", "targts: [win7-x64]\n", 1, "targts", `unknown key; did you mean "targets"?`},
	{"unknown key far", "targets: [win7-x64]\ncolour: red\n", 2, "colour", "unknown key; known keys here: name, description"},
	{"unknown profile key", "targets: [win7-x64]\nprofiles:\n  - kind: stream-burst\n    burst: 4\n",
		4, "profiles[0].burst", `did you mean "burst_segments"?`},
	{"unknown verdict key prefix", "targets: [win7-x64]\nverdict:\n  threshold: 10\n",
		3, "verdict.threshold", `did you mean "threshold_bps"?`},
	{"duplicate key", "targets: [win7-x64]\ntiming:\n  window: 10s\n  window: 20s\n",
		4, "timing.window", "set twice (first at line 3)"},
	{"provider kind unknown", "provider: {kind: vm}\ntargets: [win7-x64]\n", 1, "provider.kind", "must be one of sim, qemu, vagrant, static"},
	{"provider kind typo", "provider: simm\ntargets: [win7-x64]\n", 1, "provider.kind", `did you mean "sim"?`},
	{"provider kind missing", "provider:\n  noise: false\ntargets: [win7-x64]\n", 2, "provider.kind", "missing; one of sim, qemu, vagrant, static"},
	{"provider not a mapping", "provider: [sim]\ntargets: [win7-x64]\n", 1, "provider", "must be a mapping"},
	{"sim key under static", "provider:\n  kind: static\n  reboot_down: 2s\ntargets:\n" + staticTarget,
		3, "provider.reboot_down", "only for provider kind sim"},
	{"vagrant key under sim", "provider:\n  kind: sim\n  dir: vm\ntargets: [win7-x64]\n", 3, "provider.dir", "only for provider kind vagrant"},
	{"snapshot under qemu", "provider:\n  kind: qemu\n  snapshot: clean\ntargets: [win7-x64]\n", 3, "provider.snapshot", "only for provider kind vagrant"},
	{"snapshot name with a space", "provider:\n  kind: vagrant\n  snapshot: my clean\ntargets: [win7-x64]\n", 3, "provider.snapshot", "not a snapshot name"},
	{"reboot_down negative", "provider: {kind: sim, reboot_down: -1s}\ntargets: [win7-x64]\n", 1, "provider.reboot_down", "between 0s and 10m"},
	{"noise not a bool", "provider:\n  kind: sim\n  noise: yes\ntargets: [win7-x64]\n", 3, "provider.noise", `must be true or false, got "yes"`},
	{"faults unknown key", "targets:\n  - name: win7-x64\n    faults: http_500=3\n", 3, "targets[0].faults", `unknown fault "http_500"`},
	{"faults bad count", "targets:\n  - name: win7-x64\n    faults: \"slow_every=2\"\n", 3, "targets[0].faults", "needs slow_by"},
	{"faults under static", "provider: {kind: static}\ntargets:\n" + staticTarget + "    faults: http_500_every=3\n",
		12, "targets[0].faults", "only simulated guests inject faults"},
	{"targets missing", "name: x\n", 1, "targets", "missing; list the guests"},
	{"targets not a list", "targets: win7-x64\n", 1, "targets", "must be a list"},
	{"os unknown", "targets:\n  - name: a\n    os: win8-x64\n", 3, "targets[0].os", `unknown OS "win8-x64"`},
	{"os typo", "targets:\n  - name: a\n    os: win7-x46\n", 3, "targets[0].os", `did you mean "win7-x64"?`},
	{"os from name unknown", "targets:\n  - name: myguest\n", 2, "targets[0].os", `unknown OS "myguest"`},
	{"target name missing", "targets:\n  - os: win7-x64\n", 2, "targets[0].name", "missing; give each target a name"},
	{"target name bad", "targets:\n  - {name: 'my guest', os: win7-x64}\n", 2, "targets[0].name", "not a usable name"},
	{"duplicate target names", "targets:\n  - win7-x64\n  - {name: win7-x64, os: win7-x86}\n",
		3, "targets[1].name", "already the name of targets[0]"},
	{"static key under sim", "targets:\n  - name: a\n    os: win7-x64\n    host: 127.0.0.1\n",
		4, "targets[0].host", "only for provider kind static"},
	{"password key", "provider: static\ntargets:\n  - name: a\n    os: win7-x64\n    password: hunter2\n",
		5, "targets[0].password", "use password_env"},
	{"password anywhere", "targets: [win7-x64]\nlab:\n  Password: hunter2\n", 3, "lab.Password", "password_file"},
	{"static host missing", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    host: 127.0.0.11\n", "", 1),
		3, "targets[0].host", "missing; the guest's IP address or DNS name"},
	{"static auth unknown", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    port: 5985\n", "    port: 5985\n    auth: negotiate\n", 1),
		7, "targets[0].auth", `must be one of basic, ntlm, got "negotiate"`},
	{"static port range", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "port: 5985", "port: 70000", 1),
		6, "targets[0].port", "must be a port number (1-65535), got 70000"},
	{"static port text", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "port: 5985", "port: winrm", 1),
		6, "targets[0].port", `must be a port number (1-65535), got "winrm"`},
	{"static stream port missing", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    stream_port: 49152\n", "", 1),
		3, "targets[0].stream_port", "missing"},
	{"static control port missing", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    control_port: 49153\n", "", 1),
		3, "targets[0].control_port", "missing"},
	{"static forward dest missing", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    forward_dest: 127.0.0.11:9000\n", "", 1),
		3, "targets[0].forward_dest", "missing"},
	{"static forward dest bad", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "127.0.0.11:9000", "127.0.0.11", 1),
		10, "targets[0].forward_dest", "must be ADDRESS:PORT"},
	{"static forward prefix missing", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    forward_prefix: 127.0.0.11/32\n", "", 1),
		3, "targets[0].forward_prefix", "missing"},
	{"static forward dest outside prefix", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "127.0.0.11/32", "127.0.0.12/32", 1),
		11, "targets[0].forward_prefix", "does not contain forward_dest 127.0.0.11"},
	{"static forward dest outside allow", "provider: static\ntargets:\n" +
		strings.NewReplacer("127.0.0.11:9000", "192.168.57.10:9000", "127.0.0.11/32", "192.168.57.0/24").Replace(staticTarget) +
		"lab:\n  allow: [192.168.58.0/24]\n",
		10, "targets[0].forward_dest", "outside lab.allow"},
	{"static host outside allow", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "host: 127.0.0.11", "host: 10.1.2.3", 1),
		5, "targets[0].host", "10.1.2.3 is outside lab.allow"},
	{"static host with port", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "host: 127.0.0.11", "host: guest1:5985", 1),
		5, "targets[0].host", "the port goes in port"},
	{"static host with scheme", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "host: 127.0.0.11", "host: http://guest1", 1),
		5, "targets[0].host", "without a scheme"},
	{"static both password sources", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    password_env: LAB_PW\n", "    password_env: LAB_PW\n    password_file: pw.txt\n", 1),
		8, "targets[0].password_file", "either password_env or password_file"},
	{"static password env not a name", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "password_env: LAB_PW", "password_env: s3cr3t!pw", 1),
		7, "targets[0].password_env", "not an environment variable name"},
	{"static insecure without https", "provider: static\ntargets:\n" + strings.Replace(staticTarget, "    port: 5985\n", "    port: 5985\n    insecure: true\n", 1),
		7, "targets[0].insecure", "only means something with https: true"},
	{"static same endpoint twice", "provider: static\ntargets:\n" + staticTarget + strings.Replace(staticTarget, "name: g1", "name: g2", 1),
		14, "targets[1].host", "targets[0] already uses 127.0.0.11:5985"},
	{"allow not CIDR", "targets: [win7-x64]\nlab:\n  allow:\n    - 10.0.0.0/24\n    - 10.0.0.0/33\n", 5, "lab.allow[1]", "must be a network in CIDR form"},
	{"allow bare address", "targets: [win7-x64]\nlab:\n  allow: [10.0.0.5]\n", 3, "lab.allow[0]", "for one address write 10.0.0.5/32"},
	{"allow host bits", "targets: [win7-x64]\nlab:\n  allow: [10.0.0.5/24]\n", 3, "lab.allow[0]", "did you mean 10.0.0.0/24?"},
	{"reboot_timeout zero", "targets: [win7-x64]\nlab: {reboot_timeout: 0s}\n", 2, "lab.reboot_timeout", "must be a positive duration"},
	{"phase unknown", "targets: [win7-x64]\nphases: [before, afterr]\n", 2, "phases[1]", `did you mean "after"?`},
	{"phase duplicate", "targets: [win7-x64]\nphases:\n  - before\n  - before\n", 4, "phases[1]", "already phases[0]"},
	{"phase order", "targets: [win7-x64]\nphases:\n  - after\n  - before\n", 3, "phases[0]", "after must come after before"},
	{"phases empty", "targets: [win7-x64]\nphases: []\n", 2, "phases", "empty"},
	{"phase not a name", "targets: [win7-x64]\nphases:\n  - {name: before}\n", 3, "phases[0]", "must be before or after"},
	{"duration without unit", "targets: [win7-x64]\ntiming:\n  window: 12\n", 3, "timing.window", "a number without a unit"},
	{"duration junk", "targets: [win7-x64]\ntiming:\n  warmup: soon\n", 3, "timing.warmup", `got "soon"`},
	{"duration negative", "targets: [win7-x64]\ntiming:\n  warmup: -1s\n", 3, "timing.warmup", "must be a positive duration, got -1s"},
	{"window not above settle", "targets: [win7-x64]\ntiming:\n  window: 5s\n  settle: 5s\n", 3, "timing.window", "must be longer than settle"},
	{"window too short for samples", "targets: [win7-x64]\ntiming:\n  window: 3s\n  settle: 1s\n  sample_interval: 1s\n",
		3, "timing.window", "fewer than 3 samples"},
	{"sample interval sub-ms", "targets: [win7-x64]\ntiming:\n  sample_interval: 1500us\n", 3, "timing.sample_interval", "whole number of milliseconds"},
	{"profile kind unknown", "targets: [win7-x64]\nprofiles:\n  - {name: p, kind: stream-bursts}\n", 3, "profiles[0].kind", `did you mean "stream-burst"?`},
	{"profile kind missing", "targets: [win7-x64]\nprofiles:\n  - name: custom\n    rate: 5\n", 3, "profiles[0].kind", "missing; one of stream-burst"},
	{"profile scalar unknown", "targets: [win7-x64]\nprofiles: [tcp]\n", 2, "profiles[0].kind", "must be one of"},
	{"profile duplicate name", "targets: [win7-x64]\nprofiles:\n  - single-nbl\n  - kind: single-nbl\n", 4, "profiles[1].name", "already the name of profiles[0]"},
	{"fragment payload too small", "targets: [win7-x64]\nprofiles:\n  - kind: fragment-forward\n    payload_bytes: 1000\n",
		4, "profiles[0].payload_bytes", "must be 1473 to 65507"},
	{"single payload too big", "targets: [win7-x64]\nprofiles:\n  - kind: single-nbl\n    payload_bytes: 4000\n",
		4, "profiles[0].payload_bytes", "must be 1 to 1472"},
	{"payload not whole", "targets: [win7-x64]\nprofiles:\n  - kind: single-nbl\n    payload_bytes: 64.5\n",
		4, "profiles[0].payload_bytes", "must be a whole number of bytes, got 64.5"},
	{"burst on single-nbl", "targets: [win7-x64]\nprofiles:\n  - kind: single-nbl\n    burst_segments: 4\n",
		4, "profiles[0].burst_segments", "only for kind stream-burst"},
	{"conns zero", "targets: [win7-x64]\nprofiles:\n  - kind: stream-burst\n    conns: 0\n", 4, "profiles[0].conns", "must be 1 to 64, got 0"},
	{"burst too big", "targets: [win7-x64]\nprofiles:\n  - kind: stream-burst\n    burst_segments: 1000\n", 4, "profiles[0].burst_segments", "must be 1 to 64"},
	{"profiles not a list", "targets: [win7-x64]\nprofiles: {kind: single-nbl}\n", 2, "profiles", "must be a list"},
	{"confidence above one", "targets: [win7-x64]\nverdict:\n  confidence: 1.5\n", 3, "verdict.confidence", "between 0 and 1"},
	{"threshold zero", "targets: [win7-x64]\nverdict:\n  threshold_bps: 0\n", 3, "verdict.threshold_bps", "must be a positive number"},
	{"threshold text", "targets: [win7-x64]\nverdict:\n  threshold_bps: high\n", 3, "verdict.threshold_bps", `got "high"`},
	{"threshold infinite", "targets: [win7-x64]\nverdict:\n  threshold_bps: .inf\n", 3, "verdict.threshold_bps", "must be a positive number"},
	{"expect verdict unknown", "targets: [win7-x64]\nexpect:\n  - verdict: MAYBE\n", 3, "expect[0].verdict", "must be one of LEAK, CLEAN, INCONCLUSIVE"},
	{"expect verdict missing", "targets: [win7-x64]\nexpect:\n  - phase: before\n", 3, "expect[0].verdict", "missing"},
	{"expect target unknown", "targets: [win7-x64]\nexpect:\n  - {target: win7-x46, verdict: LEAK}\n", 3, "expect[0].target", `no target named "win7-x46"`},
	{"expect phase not in scenario", "targets: [win7-x64]\nphases: [before]\nexpect:\n  - {phase: after, verdict: CLEAN}\n",
		4, "expect[0].phase", `no phase named "after"`},
	{"expect profile unknown", "targets: [win7-x64]\nexpect:\n  - target: win7-x64\n    profile: stream\n    verdict: LEAK\n",
		4, "expect[0].profile", `did you mean "stream-burst"?`},
	{"expect item not a mapping", "targets: [win7-x64]\nexpect:\n  - LEAK\n", 3, "expect[0]", "must be a mapping"},
	{"scenario name bad", "name: my scenario!\ntargets: [win7-x64]\n", 1, "name", "not a usable name"},
	{"merge key", "base: &b {os: win7-x64}\ntargets:\n  - <<: *b\n    name: a\n", 1, "base", "unknown key"},
	{"merge key rejected", "targets:\n  - {name: a, os: win7-x64}\n  - <<: {os: win7-x64}\n    name: b\n", 3, "targets[1].<<", "merge keys (<<) are not supported"},
	{"syntax error", "targets: [win7-x64\nphases: [before]\n", 1, "", "YAML syntax"},
	{"tab indentation", "targets:\n\t- win7-x64\n", 2, "", "YAML syntax"},
	{"two documents", "targets: [win7-x64]\n---\ntargets: [win7-x86]\n", 2, "", "a second YAML document"},
	{"root is a list", "- win7-x64\n", 1, "", "must be a mapping"},
	{"empty file", "", 1, "", "the file is empty"},
	{"only a comment", "# nothing\n", 1, "", "the file is empty"},
}

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("my.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("Parse accepted bad input; scenario %+v", s)
			}
			if s != nil {
				t.Errorf("Parse returned a scenario with an error")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %q is no FieldError", err)
			}
			found := findError(err, c.field, c.line)
			if found == nil {
				t.Fatalf("no error for field %q at line %d in:\n%v", c.field, c.line, err)
			}
			if !strings.Contains(found.Msg, c.msg) {
				t.Errorf("message %q does not contain %q", found.Msg, c.msg)
			}
			prefix := fmt.Sprintf("my.yaml:%d: ", c.line)
			if c.field != "" {
				prefix += c.field + ": "
			}
			if !strings.HasPrefix(found.Error(), prefix) {
				t.Errorf("error %q does not start with %q", found.Error(), prefix)
			}
		})
	}
}

func findError(err error, field string, line int) *FieldError {
	var list Errors
	if !errors.As(err, &list) {
		return nil
	}
	for _, e := range list {
		if e.Field == field && e.Line == line && e.File == "my.yaml" {
			return e
		}
	}
	return nil
}

func TestPasswordValueNeverInError(t *testing.T) {
	in := "provider: static\ntargets:\n  - name: a\n    os: win7-x64\n    password: hunter2-secret\n    passwd: other-secret\n"
	_, err := Parse("my.yaml", []byte(in))
	if err == nil {
		t.Fatal("accepted a password in the file")
	}
	for _, secret := range []string{"hunter2", "other-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password %q: %v", secret, err)
		}
	}
}

func TestAllProblemsReportedInOnePassInLineOrder(t *testing.T) {
	in := `targets:
  - {name: a, os: win8}
profiles:
  - kind: single-nbl
    rate: fast
    colour: blue
verdict:
  confidence: 2
expect:
  - {target: b, verdict: LEAK}
`
	_, err := Parse("my.yaml", []byte(in))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := []struct {
		line  int
		field string
	}{{2, "targets[0].os"}, {5, "profiles[0].rate"}, {6, "profiles[0].colour"}, {8, "verdict.confidence"}, {10, "expect[0].target"}}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if list[i].Line != w.line || list[i].Field != w.field {
			t.Errorf("error %d is %s:%d, want %s:%d", i, list[i].Field, list[i].Line, w.field, w.line)
		}
	}
}

func TestBrokenMappingDoesNotCascade(t *testing.T) {
	// A target that is a list yields one error, not "name missing" and "os missing" too.
	_, err := Parse("my.yaml", []byte("targets:\n  - [a, b]\n"))
	var list Errors
	if !errors.As(err, &list) || len(list) != 1 || list[0].Field != "targets[0]" || list[0].Line != 2 {
		t.Fatalf("want one error on targets[0] at line 2, got:\n%v", err)
	}
}

func TestTooManyErrorsIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("targets: [win7-x64]\n")
	for i := range 200 {
		fmt.Fprintf(&b, "junk%d: 1\n", i)
	}
	_, err := Parse("my.yaml", []byte(b.String()))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("want Errors, got %v", err)
	}
	if len(list) != maxErrors {
		t.Errorf("got %d errors, want the first %d", len(list), maxErrors)
	}
}

func TestOversizedFileRefused(t *testing.T) {
	data := []byte("targets: [win7-x64]\n# " + strings.Repeat("x", maxFileBytes) + "\n")
	if _, err := Parse("big.yaml", data); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("want a size error, got %v", err)
	}
}

// QEMU targets: what to boot, and keys of other providers refused where they are written.
func TestQEMUTargetErrors(t *testing.T) {
	cases := []struct{ name, text, field, msg string }{
		{"nothing to boot", "provider: qemu\ntargets:\n  - {name: a, os: win7-x64}\n", "targets[0]", "nothing to boot"},
		{"appliance with image", "provider: qemu\ntargets:\n  - {name: a, os: win7-x64, appliance: true, image: x.qcow2}\n",
			"targets[0].appliance", "brings its own kernel"},
		{"bad accel", "provider: qemu\ntargets:\n  - {name: a, os: win7-x64, image: x.qcow2, accel: hvf}\n", "targets[0].accel", "must be one of auto, kvm, tcg"},
		{"static key under qemu", "provider: qemu\ntargets:\n  - {name: a, os: win7-x64, image: x.qcow2, host: 10.0.0.1}\n",
			"targets[0].host", "only for provider kind static"},
		{"qemu key under sim", "targets:\n  - {name: a, os: win7-x64, image: x.qcow2}\n", "targets[0].image", "only for provider kind qemu"},
		{"qemu provider key under sim", "provider: {kind: sim, boot_timeout: 1m}\ntargets: [win7-x64]\n", "provider.boot_timeout", "only for provider kind qemu"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("q.yaml", []byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v: want %s: %s", err, c.field, c.msg)
			}
		})
	}
}
