package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/internal/freeport"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// A guest made Patched reports the fixed netio.sys over WinRM, its kernel does not leak,
// and wusa answers "already installed" from the first boot, on 6.0 and 6.1 alike.
func TestPatchedGuestStartsWithTheFix(t *testing.T) {
	for _, tc := range []struct {
		os, netio, pkg string
		already        int
	}{
		{"win7-x64", "6.1.7600.20611", "Windows6.1-KB979223-x64.msu", wusaAlready},
		{"vista-sp2-x64", "6.0.6002.22369", "Windows6.0-KB979223-x64.msu", 1},
	} {
		cfg := testConfig()
		cfg.Patched = true
		tg := startGuest(t, tc.os, cfg)
		tg.must(`if not exist C:\wfplab mkdir C:\wfplab`)
		tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineAMD64, false))
		v := tg.must(`C:\wfplab\wfplab-agent.exe versions`).out
		if !strings.Contains(v, " netio="+tc.netio+" ") {
			t.Errorf("%s: versions of a patched guest: %q", tc.os, v)
		}
		if tc.os == "vista-sp2-x64" && !strings.Contains(v, " tcpip="+tc.netio+" ") {
			t.Errorf("%s: 6.0's package also replaces tcpip.sys: %q", tc.os, v)
		}
		tg.upload(`C:\wfplab\`+tc.pkg, HotfixPackage(tc.pkg))
		check(t, tg.run(`wusa C:\wfplab\`+tc.pkg+` /quiet /norestart`), answer{"", "", tc.already})
	}
}

// The packages written to a folder are the ones the simulated wusa installs.
func TestWriteHotfixPackagesInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hotfixes")
	paths, err := WriteHotfixPackages(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 4 {
		t.Fatalf("wrote %v, want the 4 distinct packages", paths)
	}
	data, err := os.ReadFile(filepath.Join(dir, "Windows6.1-KB979223-x86.msu"))
	if err != nil {
		t.Fatal(err)
	}
	tg := startGuest(t, "win7-x86", testConfig())
	tg.must(`if not exist C:\wfplab mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\Windows6.1-KB979223-x86.msu`, data)
	check(t, tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x86.msu /quiet /norestart`), answer{"", "", wusaRebootRequired})
	if _, err := WriteHotfixPackages(filepath.Join(paths[0], "sub")); err == nil {
		t.Error("writing under a file did not fail")
	}
}

// Serve takes fixed traffic ports, and a port that is taken is an error naming it before
// anything boots.
func TestServeFixedPorts(t *testing.T) {
	free := func(network string) uint16 {
		t.Helper()
		p, err := freeport.Get(network)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := testConfig()
	cfg.Patched = true
	cfg.TrafficPorts = kernel.Ports{Stream: free("tcp"), Forward: free("udp"), Control: free("udp")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "win7-x64", "127.0.0.1:0", cfg, pw); pw.Close() }()
	var text strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		text.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "control") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	for _, want := range []string{
		fmt.Sprintf("stream   tcp 127.0.0.1:%d", cfg.TrafficPorts.Stream),
		fmt.Sprintf("forward  udp 127.0.0.1:%d", cfg.TrafficPorts.Forward),
		fmt.Sprintf("control  udp 127.0.0.1:%d", cfg.TrafficPorts.Control),
		"netio.sys 6.1.7600.20611, KB979223 installed",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("Serve does not say %q:\n%s", want, text.String())
		}
	}
	// The same ports again: the stream port is taken, named, and nothing waits.
	start := time.Now()
	err := Serve(context.Background(), "win7-x64", "127.0.0.1:0", cfg, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("stream port tcp/%d is not free", cfg.TrafficPorts.Stream)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("forward port udp/%d", cfg.TrafficPorts.Forward)) {
		t.Errorf("a second guest on taken ports: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the taken port was found after %s", d)
	}
	cancel()
	waitServed(t, done)
}
