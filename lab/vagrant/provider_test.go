package vagrant_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wfplab/wfplab/internal/fakevagrant"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
	"github.com/wfplab/wfplab/lab/vagrant"
)

var (
	relayOnce sync.Once
	relayDir  string
	relayPath string
	relayErr  error
)

// TestMain removes the relay program the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if relayDir != "" {
		os.RemoveAll(relayDir)
	}
	os.Exit(code)
}

// fakeLab starts the fake vagrant over this project's Vagrantfile with its machines on
// loopback networks of their own (random, so parallel test runs do not collide).
func fakeLab(t *testing.T) (*fakevagrant.Server, vagrant.Config) {
	t.Helper()
	relayOnce.Do(func() {
		relayDir, relayErr = os.MkdirTemp("", "wfplab-fakevagrant-")
		if relayErr != nil {
			return
		}
		relayPath, relayErr = fakevagrant.Build(relayDir)
	})
	if relayErr != nil {
		t.Fatal(relayErr)
	}
	layout := vagrant.DefaultLayout()
	layout.HostOnlyPrefix = fmt.Sprintf("127.%d.%d", 100+rand.IntN(100), rand.IntN(250))
	layout.ForwardNet = fmt.Sprintf("127.%d", 200+rand.IntN(50))
	dir, _ := filepath.Abs("../../vagrant")
	simCfg := sim.DefaultConfig()
	simCfg.Noise, simCfg.RebootDown = false, 300*time.Millisecond
	srv, err := fakevagrant.Start(fakevagrant.Config{Dir: dir, Layout: layout, Sim: simCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, vagrant.Config{CLI: relayPath, Dir: dir, Layout: layout, Provider: "virtualbox",
		Env: append(os.Environ(), fakevagrant.EnvURL+"="+srv.URL()), Logf: t.Logf}
}

func machines(names ...string) []vagrant.Machine {
	var ms []vagrant.Machine
	for _, n := range names {
		o, _ := contract.LookupOS(n)
		ms = append(ms, vagrant.Machine{Name: n, OS: o})
	}
	return ms
}

func argLines(calls []fakevagrant.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, strings.Join(c.Args, " "))
	}
	slices.Sort(out)
	return out
}

// The first run creates each machine and snapshots it before anything changes; what the run
// changes is gone in the second run, which restores the snapshot. Both go through the CLI's
// real subcommands and formats, and the guests answer WinRM where winrm-config says.
func TestUpSnapshotsThenRestores(t *testing.T) {
	srv, cfg := fakeLab(t)
	ctx := context.Background()
	ms := machines("win7-x64", "vista-sp1-x86")
	// What winrm-config cannot say comes from the scenario: win7-x64 is spoken to over NTLM.
	ms[0].WinRM.Auth = contract.AuthNTLM
	p, err := vagrant.New(cfg, ms...)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := p.Up(ctx)
	if err != nil || len(targets) != 2 {
		t.Fatalf("up: %v %+v", err, targets)
	}
	want := []string{
		"snapshot save vista-sp1-x86 clean", "snapshot save win7-x64 clean",
		"status vista-sp1-x86 --machine-readable", "status win7-x64 --machine-readable",
		"up vista-sp1-x86 --no-provision --provider virtualbox", "up win7-x64 --no-provision --provider virtualbox",
		"winrm-config vista-sp1-x86", "winrm-config win7-x64",
	}
	if got := argLines(srv.Calls()); !slices.Equal(got, want) {
		t.Fatalf("first run's calls\n%q\nwant\n%q", got, want)
	}
	var win7 contract.Target
	for _, tg := range targets {
		if tg.Name == "win7-x64" {
			win7 = tg
		}
	}
	if win7.Traffic.Stream.String() != cfg.Layout.HostOnlyPrefix+".15:5001" || win7.Traffic.ForwardPrefix.String() != cfg.Layout.ForwardNet+".5.0/24" {
		t.Errorf("win7-x64 traffic %+v", win7.Traffic)
	}
	if win7.Creds.User != "vagrant" || win7.Creds.Password != "vagrant" || win7.Endpoint.Host != "127.0.0.1" || win7.Endpoint.Auth != contract.AuthNTLM {
		t.Errorf("win7-x64 endpoint %+v %s", win7.Endpoint, win7.Creds)
	}
	run := func(tg contract.Target, line string) lab.Result {
		t.Helper()
		s, err := lab.Dial(tg, lab.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		res, err := s.Run(ctx, line)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(win7, `echo changed> C:\marker.txt`); res.Exit != 0 {
		t.Fatalf("echo: %+v", res)
	}
	if err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Machine("win7-x64") != nil {
		t.Fatal("halt left the machine running")
	}

	n := len(srv.Calls())
	p2, _ := vagrant.New(cfg, machines("win7-x64")...)
	targets, err = p2.Up(ctx)
	if err != nil || len(targets) != 1 {
		t.Fatalf("second up: %v", err)
	}
	got := argLines(srv.Calls()[n:])
	want = []string{"snapshot list win7-x64 --machine-readable", "snapshot restore win7-x64 clean",
		"status win7-x64 --machine-readable", "status win7-x64 --machine-readable", "winrm-config win7-x64"}
	if !slices.Equal(got, want) {
		t.Fatalf("second run's calls\n%q\nwant\n%q", got, want)
	}
	if res := run(targets[0], `type C:\marker.txt`); res.Exit == 0 {
		t.Errorf("the snapshot did not undo the first run's change: %+v", res)
	}
	if err := p2.Down(ctx); err != nil {
		t.Fatal(err)
	}
}

// Every failure of the CLI says which command failed, where, and shows what it printed,
// passwords left out; a call that hangs is stopped at its deadline; a missing CLI says
// what to install.
func TestCLIFailuresAreExplained(t *testing.T) {
	dir := t.TempDir()
	vf, _ := os.ReadFile("../../vagrant/Vagrantfile")
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), vf, 0o644); err != nil {
		t.Fatal(err)
	}
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	up := func(cli string, timeouts vagrant.Timeouts) error {
		p, err := vagrant.New(vagrant.Config{CLI: cli, Dir: dir, Timeouts: timeouts}, machines("win7-x64")...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Up(context.Background())
		return err
	}
	failing := script("failing", `echo "$(date +%s),,error-exit,Vagrant::Errors::BoxNotFound,The box 'wfplab/win7-x64' could not be found." ; echo "Host x"; echo "  Password hunter2" >&2; exit 1`+"\n")
	err := up(failing, vagrant.Timeouts{})
	for _, sub := range []string{"target win7-x64", `"vagrant status win7-x64 --machine-readable"`, "exit status 1", "could not be found", "Password <redacted>"} {
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("error %v lacks %q", err, sub)
		}
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
	start := time.Now()
	err = up(script("hanging", "exec sleep 30\n"), vagrant.Timeouts{Query: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") || time.Since(start) > 10*time.Second {
		t.Errorf("hanging CLI: %v after %s", err, time.Since(start))
	}
	err = up(filepath.Join(dir, "no-such-vagrant"), vagrant.Timeouts{})
	if err == nil || !strings.Contains(err.Error(), "is Vagrant installed?") {
		t.Errorf("missing CLI: %v", err)
	}
	if err := vagrant.Check(vagrant.Config{CLI: filepath.Join(dir, "no-such-vagrant"), Dir: dir}, machines("win7-x64")...); err == nil || !strings.Contains(err.Error(), "install Vagrant") {
		t.Errorf("check: %v", err)
	}
	_, err = vagrant.New(vagrant.Config{Dir: dir}, machines("win7-x64", "win8-x64")...)
	if err == nil || !strings.Contains(err.Error(), "target win8-x64") || !strings.Contains(err.Error(), "no machine of that name") {
		t.Errorf("unknown machine: %v", err)
	}
	if _, err := vagrant.New(vagrant.Config{Dir: t.TempDir()}, machines("win7-x64")...); err == nil || !strings.Contains(err.Error(), "Vagrantfile") {
		t.Errorf("no Vagrantfile: %v", err)
	}
}
