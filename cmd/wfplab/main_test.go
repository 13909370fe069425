package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shortScenario is the built-in's shape cut down to two guests (one x86, one x64 that
// needs the test-signing reboot) and short windows, so the whole pipeline runs in a test.
// Windows this short cannot separate CLEAN from noise at 4 KiB/s (that is the default
// run's job, in test.sh), so the pool's background noise is off here.
const shortScenario = `name: short
provider: {kind: sim, reboot_down: 500ms, noise: false}
targets:
  - {name: vista-sp1-x86, os: vista-sp1-x86}
  - {name: win7-x64, os: win7-x64}
phases: [before, after]
timing: {warmup: 1s, window: 4s, settle: 500ms, sample_interval: 100ms}
profiles:
  - {name: stream-burst, kind: stream-burst, rate: 2000}
  - {name: fragment-forward, kind: fragment-forward, rate: 500}
  - {name: single-nbl, kind: single-nbl, rate: 2000}
verdict: {threshold_bps: 4096, confidence: 0.95}
expect:
  - verdict: CLEAN
  - {phase: before, profile: stream-burst, verdict: LEAK}
  - {phase: before, profile: fragment-forward, verdict: LEAK}
`

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// onlyRun returns the single run folder under out.
func onlyRun(t *testing.T, out string) string {
	t.Helper()
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one run folder in %s, got %v (%v)", out, entries, err)
	}
	return filepath.Join(out, entries[0].Name())
}

func TestRunMeetsExpectationsAndWritesEverything(t *testing.T) {
	const secret = "pw-7f3a9c-not-in-any-output"
	t.Setenv("WFPLAB_SIM_PASSWORD", secret)
	dir := t.TempDir()
	sc := writeFile(t, dir, "short.yaml", shortScenario)
	out := filepath.Join(dir, "results")

	code, stdout, stderr := runCLI(t, "run", "--scenario", sc, "--out", out, "--seed", "7")
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "PASS: 12 of 12 expectations met") {
		t.Errorf("stdout lacks the 12/12 headline:\n%s", stdout)
	}
	runDir := onlyRun(t, out)
	for _, f := range []string{"wfplab.db", "report.html", "summary.md", "junit.xml", "bench.txt", "run.json",
		"plots/pool-win7-x64.png", "plots/pool-vista-sp1-x86.png"} {
		if st, err := os.Stat(filepath.Join(runDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	if !strings.Contains(stdout, filepath.Join(runDir, "report.html")) {
		t.Errorf("stdout does not name report.html:\n%s", stdout)
	}
	// The verdict table shows every cell, with the leak where the KB says.
	for _, want := range []string{"win7-x64", "before", "stream-burst", "LEAK", "CLEAN"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verdict table lacks %q", want)
		}
	}

	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	b, _ := os.ReadFile(filepath.Join(runDir, "junit.xml"))
	if err := xml.Unmarshal(b, &suites); err != nil || suites.Tests != 12 || suites.Failures != 0 {
		t.Errorf("junit.xml: tests=%d failures=%d err=%v, want 12 and 0", suites.Tests, suites.Failures, err)
	}
	var m runManifest
	b, _ = os.ReadFile(filepath.Join(runDir, "run.json"))
	if err := json.Unmarshal(b, &m); err != nil || m.Seed != 7 || m.Met != 12 || len(m.Targets) != 2 {
		t.Errorf("run.json = %+v (%v)", m, err)
	}

	// The password reaches the guests but no file, log or output.
	filepath.Walk(runDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s contains the password", p)
		}
		return nil
	})
	if strings.Contains(stdout+stderr, secret) {
		t.Error("output contains the password")
	}

	// The report rebuilds from the store alone.
	os.Remove(filepath.Join(runDir, "report.html"))
	code, stdout, stderr = runCLI(t, "report", runDir)
	if code != exitOK {
		t.Fatalf("report: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(runDir, "report.html")); err != nil {
		t.Errorf("report did not rewrite report.html: %v", err)
	}
	if !strings.Contains(stdout, "12 of 12 expectations met") {
		t.Errorf("report output:\n%s", stdout)
	}
	sameReport(t, runDir)
}

func TestRunExitsOneWhenAnExpectationIsNotMet(t *testing.T) {
	dir := t.TempDir()
	// Single-NBL traffic never leaks, so expecting LEAK there cannot be met.
	sc := writeFile(t, dir, "wrong.yaml", `name: wrong
provider: {kind: sim, reboot_down: 500ms}
targets: [win7-x86]
phases: [before]
timing: {warmup: 1s, window: 3s, settle: 500ms, sample_interval: 100ms}
profiles: [single-nbl]
expect:
  - {profile: single-nbl, verdict: LEAK}
`)
	code, stdout, stderr := runCLI(t, "run", "--scenario", sc, "--out", filepath.Join(dir, "r"), "--seed", "1")
	if code != exitUnmet {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "NOT MET") || !strings.Contains(stdout, "FAIL: 0 of 1") {
		t.Errorf("stdout does not show the unmet expectation:\n%s", stdout)
	}
}

func TestBadScenarioExitsTwoNamingFileAndLine(t *testing.T) {
	dir := t.TempDir()
	sc := writeFile(t, dir, "bad.yaml", "name: bad\ntargets: [win7-x64]\nprofiles:\n  - {name: s, kind: single-nbl, rate: fast}\n")
	code, stdout, stderr := runCLI(t, "run", "--scenario", sc, "--out", filepath.Join(dir, "r"))
	if code != exitFailure {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "bad.yaml:4:") || !strings.Contains(stderr, "rate") {
		t.Errorf("error does not name file:line and field:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "r")); err == nil {
		t.Error("a run folder was made for a scenario that does not load")
	}
	code, _, stderr = runCLI(t, "check", sc)
	if code != exitFailure || !strings.Contains(stderr, "bad.yaml:4:") {
		t.Errorf("check: exit %d, stderr %s", code, stderr)
	}
}

func TestCheckListsTheBuiltinCells(t *testing.T) {
	code, stdout, stderr := runCLI(t, "check", "../../scenarios/builtin/kb979223.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "6 targets, 2 phases, 3 profiles, 36 cells, 36 expectations") {
		t.Errorf("check output: %s", stdout)
	}
}

func TestTrafficRefusesNonLoopbackBeforeSending(t *testing.T) {
	for _, to := range []string{"10.0.0.1:5001", "192.168.1.1:5001", "8.8.8.8:53"} {
		code, stdout, stderr := runCLI(t, "traffic", "--to", to, "--duration", "1s")
		if code != exitFailure {
			t.Errorf("%s: exit %d, want 2", to, code)
		}
		if !strings.Contains(stderr, to) || !strings.Contains(stderr, "--allow") {
			t.Errorf("%s: error does not name the address and the setting: %s", to, stderr)
		}
		if strings.Contains(stdout, "packets") {
			t.Errorf("%s: printed totals for a refused run: %s", to, stdout)
		}
	}
}

func TestInterruptedRunKeepsWhatItMeasured(t *testing.T) {
	dir := t.TempDir()
	sc := writeFile(t, dir, "short.yaml", shortScenario)
	out := filepath.Join(dir, "results")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Stop the run as Ctrl-C would, once win7-x64 has finished its stream-burst window.
	var stdout bytes.Buffer
	stderr := &triggerWriter{on: "win7-x64       before  fragment-forward", fire: cancel}
	code := runContext(ctx, []string{"run", "--scenario", sc, "--out", out, "--seed", "3"}, &stdout, stderr)
	if code != exitFailure {
		t.Fatalf("interrupted run: exit %d, want 2\n%s\n%s", code, stdout.String(), stderr.String())
	}
	runDir := onlyRun(t, out)
	if _, err := os.Stat(filepath.Join(runDir, "report.html")); err != nil {
		t.Errorf("an interrupted run still writes its report: %v", err)
	}
	if n := strings.Count(stderr.String(), "interrupted"); n != 1 || strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("the interruption is said %d times (want once, without 'context canceled'):\n%s", n, stderr.String())
	}
	if !strings.Contains(stdout.String(), "INTERRUPTED:") || !strings.Contains(stdout.String(), "wfplab report "+runDir) {
		t.Errorf("no INTERRUPTED line telling how to rebuild the report:\n%s", stdout.String())
	}

	// The report is rebuilt from the store alone: what was measured keeps its verdict,
	// what was not is not invented.
	// It rewrites run.json too, and changes nothing in the store it reports on.
	os.Remove(filepath.Join(runDir, "report.html"))
	var old runManifest
	if b, err := os.ReadFile(filepath.Join(runDir, "run.json")); err != nil || json.Unmarshal(b, &old) != nil {
		t.Fatalf("run.json of the interrupted run: %v", err)
	}
	db := filepath.Join(runDir, "wfplab.db")
	dbBefore, _ := os.ReadFile(db)
	statBefore, _ := os.Stat(db)
	code, rep, errs := runCLI(t, "report", runDir)
	if code != exitUnmet {
		t.Fatalf("report of an interrupted run: exit %d, want 1\n%s\n%s", code, rep, errs)
	}
	if _, err := os.Stat(filepath.Join(runDir, "report.html")); err != nil {
		t.Errorf("report did not rewrite report.html: %v", err)
	}
	if dbAfter, _ := os.ReadFile(db); !bytes.Equal(dbAfter, dbBefore) {
		t.Error("report changed the store's bytes")
	}
	if statAfter, _ := os.Stat(db); !statAfter.ModTime().Equal(statBefore.ModTime()) {
		t.Error("report changed the store's modification time")
	}
	// run.json: rewritten from the store, keeping what only the old file knew; and written
	// anew when it is gone, as after kill -9.
	for _, gone := range []bool{false, true} {
		if gone {
			os.Remove(filepath.Join(runDir, "run.json"))
			runCLI(t, "report", runDir)
		}
		var m runManifest
		if b, err := os.ReadFile(filepath.Join(runDir, "run.json")); err != nil || json.Unmarshal(b, &m) != nil {
			t.Fatalf("report did not rewrite run.json (gone before: %v): %v", gone, err)
		}
		if m.ID != old.ID || m.Seed != 3 || m.Expected != old.Expected || m.Met != old.Met || len(m.Targets) != 2 ||
			m.Targets[0].Name != "vista-sp1-x86" || (m.Targets[1].Endpoint == "") != gone || !strings.HasPrefix(m.RebuiltBy, "wfplab report") {
			t.Errorf("run.json rebuilt (gone before: %v) as %+v; the run wrote %+v", gone, m, old)
		}
	}
	if !regexp.MustCompile(`win7-x64\s+before\s+stream-burst\s.*LEAK\s+LEAK ok`).MatchString(rep) {
		t.Errorf("the measured stream-burst window lost its LEAK verdict:\n%s", rep)
	}
	if !regexp.MustCompile(`after\s+single-nbl\s.*INCOMPLETE\s+CLEAN incomplete`).MatchString(rep) {
		t.Errorf("an unmeasured cell is not INCOMPLETE:\n%s", rep)
	}
	// The window the interruption cut gets no verdict, however much it leaked.
	if !regexp.MustCompile(`win7-x64\s+before\s+fragment-forward\s.*INCOMPLETE\s+LEAK incomplete`).MatchString(rep) {
		t.Errorf("the cut-short window is not INCOMPLETE:\n%s", rep)
	}
}

// triggerWriter collects output and calls fire once when a line contains on.
type triggerWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	on    string
	fire  func()
	fired bool
}

func (w *triggerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.fired && strings.Contains(w.buf.String(), w.on) {
		w.fired = true
		w.fire()
	}
	return len(p), nil
}

func (w *triggerWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestTrafficSendsToALoopbackSinkAndReportsTotals(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var got atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := sink.Read(buf)
			if err != nil {
				return
			}
			if n == 64 {
				got.Add(1)
			}
		}
	}()
	code, stdout, stderr := runCLI(t, "traffic", "--profile", "single-nbl", "--to", sink.LocalAddr().String(),
		"--rate", "2000", "--duration", "10s", "--max-packets", "500", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`packets\s+500\s`).MatchString(stdout) {
		t.Errorf("totals do not show the 500 packets the run was bounded to:\n%s", stdout)
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < 450 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load(); n < 450 || n > 500 {
		t.Errorf("sink received %d 64-byte datagrams, want about 500", n)
	}
}

// What would stop a run minutes in is caught offline by check and by run before a run
// folder exists: an unset password variable, a password file others can read, a missing
// hotfix package; every problem named with its target.
func TestPreflightCatchesWhatWouldStopARun(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "loose.pw", "secret\n")
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "hotfixes"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := func(name, os, creds string) string {
		return "  - {name: " + name + ", os: " + os + ", host: 127.0.0.11, port: 5985, stream_port: 49152, control_port: 49153, " +
			"forward_dest: 127.0.0.11:9000, forward_prefix: 127.0.0.11/32, " + creds + "}\n"
	}
	sc := writeFile(t, dir, "lab.yaml", "name: lab\nprovider: static\nlab: {hotfix_dir: hotfixes}\ntargets:\n"+
		target("a", "win7-x64", "password_env: WFPLAB_TEST_UNSET_PW")+
		strings.Replace(target("b", "vista-sp2-x64", "password_file: loose.pw"), "127.0.0.11,", "127.0.0.12,", 1))
	t.Setenv("WFPLAB_TEST_UNSET_PW", "")
	code, _, stderr := runCLI(t, "check", sc)
	for _, want := range []string{"target a: environment variable WFPLAB_TEST_UNSET_PW", "target b: password file", "chmod 600",
		"target a: hotfix package Windows6.1-KB979223-x64.msu", "target b: hotfix package Windows6.0-KB979223-x64.msu"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check does not say %q:\n%s", want, stderr)
		}
	}
	if code != exitFailure {
		t.Errorf("check: exit %d, want 2", code)
	}
	out := filepath.Join(dir, "results")
	code, _, stderr = runCLI(t, "run", "--scenario", sc, "--out", out)
	if code != exitFailure || !strings.Contains(stderr, "cannot run") {
		t.Errorf("run: exit %d, stderr %s", code, stderr)
	}
	if strings.Contains(stderr, "secret") {
		t.Error("an error shows the password")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("run made a results folder for a scenario that cannot run")
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "--version")
	if code != exitOK || !strings.HasPrefix(stdout, "wfplab version ") || !strings.Contains(stdout, runtime.Version()) {
		t.Fatalf("--version: exit %d, %q", code, stdout)
	}
}

// tputScenario is one guest, one profile, short windows: eight throughput windows a
// phase, so a loaded machine that loses a window's samples still leaves the six a
// comparison needs. %s is the sim provider's hotfix_throughput_loss.
const tputScenario = `name: tput
provider: {kind: sim, reboot_down: 500ms, noise: false, hotfix_throughput_loss: %s}
targets: [win7-x86]
phases: [before, after]
timing: {warmup: 500ms, window: 1s, settle: 200ms, sample_interval: 100ms}
profiles:
  - {name: single-nbl, kind: single-nbl, rate: 2000}
throughput: {windows: 8, window: 600ms, settle: 100ms, max_loss: 0.05, alpha: 0.05}
`

// A simulated hotfix that costs 30% of classify throughput fails the run with REGRESSED;
// one that costs nothing passes. Both through WinRM, the agent's mode command and the store.
func TestRunFlagsAHotfixThatCostsThroughput(t *testing.T) {
	for _, c := range []struct {
		loss string
		code int
		want string
	}{{"0", exitOK, "OK ok"}, {"0.3", exitUnmet, "REGRESSED NOT MET"}} {
		t.Run("loss="+c.loss, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sc := writeFile(t, dir, "tput.yaml", strings.Replace(tputScenario, "%s", c.loss, 1))
			code, stdout, stderr := runCLI(t, "run", "--scenario", sc, "--out", filepath.Join(dir, "results"), "--seed", "3", "--quiet")
			if code != c.code || !strings.Contains(stdout, c.want) {
				t.Fatalf("exit %d (want %d), stdout lacks %q:\n%s\nstderr:\n%s", code, c.code, c.want, stdout, stderr)
			}
			if !strings.Contains(stdout, "win7-x86  single-nbl") {
				t.Errorf("the throughput table does not name the cell:\n%s", stdout)
			}
		})
	}
}
