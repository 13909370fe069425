package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/internal/fakevagrant"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/vagrant"
)

// fakeVagrantOnPath puts the fake vagrant on PATH, backed by simulated machines laid out as
// vagrant/Vagrantfile lays out real ones, on loopback networks of their own; opts change its
// configuration.
func fakeVagrantOnPath(t *testing.T, opts ...func(*fakevagrant.Config)) *fakevagrant.Server {
	t.Helper()
	bin := t.TempDir()
	if _, err := fakevagrant.Build(bin); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(vagrant.EnvHostOnlyPrefix, fmt.Sprintf("127.%d.%d", 100+rand.IntN(100), rand.IntN(250)))
	t.Setenv(vagrant.EnvForwardNet, fmt.Sprintf("127.%d", 200+rand.IntN(50)))
	dir, err := filepath.Abs(filepath.Join("..", "..", "vagrant"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.DefaultConfig()
	cfg.Seed, cfg.RebootDown = 1, time.Second
	// As some real guests do: wusa refuses WinRM, so the hotfix goes through a scheduled task.
	// The after phase meets its expectations only if that worked.
	cfg.WusaRefusesRemote = true
	fc := fakevagrant.Config{Dir: dir, Layout: vagrant.LayoutFromEnv(os.Getenv), Sim: cfg}
	for _, o := range opts {
		o(&fc)
	}
	srv, err := fakevagrant.Start(fc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv(fakevagrant.EnvURL, srv.URL())
	return srv
}

// The example scenario meets its expectations through the vagrant CLI. A second run starts
// from the clean snapshot, so the hotfix the first installed is gone: the guest leaks again.
func TestVagrantLabExample(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: a full run of the vagrant example")
	}
	srv := fakeVagrantOnPath(t)
	// The simulator's packages, as `wfplab sim hotfixes --out DIR` writes them.
	hot := t.TempDir()
	if code, _, stderr := runCLI(t, "sim", "hotfixes", "--out", hot); code != 0 {
		t.Fatalf("sim hotfixes: %d %s", code, stderr)
	}
	example := filepath.Join("..", "..", "scenarios", "examples", "vagrant-lab.yaml")
	dir, _ := filepath.Abs(filepath.Join("..", "..", "vagrant"))
	// The second run: one target, the phase before only, one multi-NBL profile.
	again := writeFile(t, t.TempDir(), "again.yaml", "name: again\nprovider: {kind: vagrant, dir: "+dir+"}\n"+
		"targets: [win7-x64]\nphases: [before]\ntiming: {warmup: 2s, window: 8s, settle: 1s, sample_interval: 100ms}\n"+
		"profiles: [stream-burst]\nexpect: [{verdict: LEAK}]\n")
	for run, c := range []struct {
		scenario, met string
		calls         []string
	}{
		{example, "12 of 12", []string{"up win7-x64 --no-provision", "snapshot save win7-x64 clean", "snapshot save vista-sp1-x86 clean",
			"winrm-config vista-sp1-x86", "halt vista-sp1-x86"}},
		{again, "1 of 1", []string{"snapshot restore win7-x64 clean"}},
	} {
		start, n := time.Now(), len(srv.Calls())
		code, stdout, stderr := runCLI(t, "run", "--scenario", c.scenario, "--hotfix-dir", hot, "--out", t.TempDir(), "--seed", "1", "--quiet")
		if code != 0 || !strings.Contains(stdout, c.met) {
			t.Fatalf("run %d: exit %d\n%s\n%s", run+1, code, stdout, stderr)
		}
		var calls []string
		for _, call := range srv.Calls()[n:] {
			calls = append(calls, strings.Join(call.Args, " "))
		}
		joined := strings.Join(calls, "\n")
		for _, w := range append(c.calls, "winrm-config win7-x64", "halt win7-x64") {
			if !strings.Contains(joined, w) {
				t.Errorf("run %d made no call %q; calls:\n%s", run+1, w, joined)
			}
		}
		if strings.Contains(stdout+stderr, "Password vagrant") {
			t.Errorf("run %d printed a password", run+1)
		}
		t.Logf("run %d: %s, %d vagrant calls", run+1, time.Since(start).Round(time.Second), len(calls))
	}
}

// A Vagrant machine speaking WinRM over HTTPS (config.winrm.transport = :ssl) has its
// certificate checked against the scenario's ca_file. With another CA's file the run stops
// before measuring, naming the target and what to give instead; with the lab's CA a whole run
// meets its expectation, from the snapshot the first run took (the certificate, issued by the
// lab's CA, outlives the guest's reboots and restores, as a real box's does).
func TestVagrantHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: runs through the fake vagrant")
	}
	srv := fakeVagrantOnPath(t, func(c *fakevagrant.Config) { c.SSL = []string{"win7-x64"} })
	dir := t.TempDir()
	writeFile(t, dir, "lab-ca.pem", string(srv.CACertPEM()))
	other, err := sim.NewCA("another lab's CA")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "other-ca.pem", string(other.PEM()))
	vdir, _ := filepath.Abs(filepath.Join("..", "..", "vagrant"))
	scenario := func(name, ca string) string {
		return writeFile(t, dir, name+".yaml", "name: "+name+"\nprovider: {kind: vagrant, dir: "+vdir+"}\n"+
			"targets:\n  - {name: win7-x64, os: win7-x64, https: true, ca_file: "+ca+"}\n"+
			"phases: [before]\ntiming: {warmup: 2s, window: 8s, settle: 1s, sample_interval: 100ms}\n"+
			"profiles: [stream-burst]\nexpect: [{verdict: LEAK}]\n")
	}

	start := time.Now()
	code, stdout, stderr := runCLI(t, "run", "--scenario", scenario("wrong-ca", "other-ca.pem"), "--out", t.TempDir(), "--seed", "1", "--quiet")
	t.Logf("run with another CA: exit %d in %s\n%s\n%s", code, time.Since(start).Round(time.Second), stdout, stderr)
	// Stopped while preparing the guest: its one cell never measured.
	if code == exitOK || !regexp.MustCompile(`target win7-x64: prepare: .*the guest's HTTPS certificate is not trusted.*ca_file`).MatchString(stdout+stderr) ||
		!regexp.MustCompile(`win7-x64\s+before\s+stream-burst\s+NaN.*INCOMPLETE`).MatchString(stdout) {
		t.Errorf("run with another CA's ca_file: exit %d, want win7-x64 stopped while preparing, naming the untrusted certificate and ca_file", code)
	}

	start, n := time.Now(), len(srv.Calls())
	code, stdout, stderr = runCLI(t, "run", "--scenario", scenario("https", "lab-ca.pem"), "--out", t.TempDir(), "--seed", "1", "--quiet")
	if code != exitOK || !strings.Contains(stdout, "1 of 1") {
		t.Fatalf("run over HTTPS with the lab's CA: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var restored bool
	for _, c := range srv.Calls()[n:] {
		restored = restored || strings.Join(c.Args, " ") == "snapshot restore win7-x64 clean"
	}
	if !restored {
		t.Errorf("the run over HTTPS did not start from the snapshot: calls %v", srv.Calls()[n:])
	}
	t.Logf("run over HTTPS: %s", time.Since(start).Round(time.Second))
}
