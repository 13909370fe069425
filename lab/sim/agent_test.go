package sim

import (
	"bufio"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/kernel"
	"github.com/wfplab/wfplab/lab/sim/wsman"
)

// installDriver uploads the agent and a signed driver, creates the service with the
// Parameters the lab writes, and starts it (rebooting into test mode on x64).
func installDriver(t *testing.T, tg *tguest) contract.Target {
	t.Helper()
	tgt := tg.g.Target()
	tg.must(`netsh interface ipv4 set global groupforwardedfragments=enabled`) // as lab's Prepare does
	machine := uint16(machineAMD64)
	if tg.g.os.Arch == "x86" {
		machine = machineI386
	}
	tg.must(`if not exist C:\wfplab mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineI386, false))
	tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machine, true))
	tg.must(`sc create wfplabcallout type= kernel start= demand binPath= C:\wfplab\wfplabcallout.sys`)
	key := `HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters`
	tg.must(`reg add ` + key + ` /v StreamPort /t REG_DWORD /d ` + itoa(int(tgt.Traffic.Stream.Port())) + ` /f`)
	tg.must(`reg add ` + key + ` /v ControlPort /t REG_DWORD /d ` + itoa(int(tgt.Traffic.Control.Port())) + ` /f`)
	tg.must(`reg add ` + key + ` /v ForwardPrefix /t REG_SZ /d ` + tgt.Traffic.ForwardPrefix.String() + ` /f`)
	if tg.g.os.Arch == "x64" {
		tg.must(`bcdedit /set testsigning on`)
		tg.reboot()
	}
	tg.must(`sc start wfplabcallout`)
	return tg.g.Target()
}

func itoa(n int) string { return strconv.Itoa(n) }

// kern is the running boot's kernel model.
func (tg *tguest) kern() *kernel.Kernel {
	tg.g.mu.Lock()
	defer tg.g.mu.Unlock()
	if tg.g.cur == nil {
		tg.t.Fatal("guest is down")
	}
	return tg.g.cur.kern
}

func counters(t *testing.T, tg *tguest, verb string) contract.Driver {
	t.Helper()
	c, err := agentfmt.ParseCounters(strings.TrimRight(tg.must(`C:\wfplab\wfplab-agent.exe `+verb).out, "\r\n"))
	if err != nil {
		t.Fatalf("lab/agentfmt cannot parse the C1 line: %v", err)
	}
	return c.Driver
}

func sendUDP(t *testing.T, to netip.AddrPort, size, count int) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < count; i++ {
		if _, err := c.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			time.Sleep(time.Millisecond)
		}
	}
}

func burst(t *testing.T, to netip.AddrPort, size int) {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err == nil {
		t.Fatal("blocked stream data: the guest closed the connection instead of resetting it")
	} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("blocked stream data did not reset the connection")
	}
}

// TestTrafficLeaksThroughTheWholeStack drives traffic at the target's addresses with the
// driver installed the lab's way, and reads the leak back through the agent.
func TestTrafficLeaksThroughTheWholeStack(t *testing.T) {
	for _, c := range []struct {
		os      string
		hotfix  bool
		nblSize uint64
	}{{"win7-x64", false, 0x240}, {"win7-x86", false, 0x160}, {"2008-sp2-x64", true, 0x240}} {
		t.Run(c.os, func(t *testing.T) {
			tg := startGuest(t, c.os, testConfig())
			if c.hotfix {
				tg.must(`mkdir C:\wfplab`)
				name := tg.g.os.HotfixPackage
				tg.upload(`C:\wfplab\`+name, HotfixPackage(name))
				check(t, tg.run(`wusa C:\wfplab\`+name+` /quiet /norestart`), answer{"", "", 3010})
				// installDriver's reboot into test mode also brings the new netio in force.
			}
			tgt := installDriver(t, tg)
			if got := tg.kern().Patched(); got != c.hotfix {
				t.Fatalf("netio patched = %v, want %v", got, c.hotfix)
			}
			before := tg.kern().Pool(0).Bytes // noise is off: the pool moves only by leaks
			for i := 0; i < 10; i++ {
				burst(t, tgt.Traffic.Stream, 8*1460)
			}
			sendUDP(t, tgt.Traffic.Forward, 4000, 200)
			sendUDP(t, tgt.Traffic.Control, 64, 200)
			var d contract.Driver
			eventually(t, 10*time.Second, "the driver to count every datagram", func() bool {
				d = counters(t, tg, "counters")
				// Each datagram's 3 fragments alone, then its group.
				return d.Layers[contract.LayerForward].Classify == 4*200 && d.Layers[contract.LayerTransport].Classify == 200
			})
			s, f, x := d.Layers[contract.LayerStream], d.Layers[contract.LayerForward], d.Layers[contract.LayerTransport]
			if s.Blocked != 10 || s.MultiChain == 0 || f.Hist[2] != 200 || f.Hist[0] != 600 || f.NBLs != 1200 || f.Blocked != 200 ||
				x.MultiChain != 0 || x.Hist[0] != 200 {
				t.Fatalf("counters: %+v", d.Layers)
			}
			// The driver blocks every multi-NBL chain its filter matches (and lone fragments pass).
			if !s.HasMultiBlocked || s.MultiBlocked != s.MultiChain || f.MultiBlocked != 200 || x.MultiBlocked != 0 {
				t.Fatalf("multi_blocked: %+v", d.Layers)
			}
			grew := tg.kern().Pool(time.Hour).Bytes - before
			want := (s.MultiBlocked + f.MultiBlocked) * c.nblSize
			if c.hotfix {
				want = 0
			}
			if grew != want {
				t.Fatalf("pool grew %d bytes, want %d", grew, want)
			}
			// reset prints the counters, then zeroes them.
			if r := counters(t, tg, "reset"); r.Layers[contract.LayerForward].Classify != 4*200 {
				t.Fatalf("reset printed %+v", r.Layers)
			}
			if r := counters(t, tg, "counters"); r.Layers[contract.LayerForward] != (contract.LayerCounters{HasMultiBlocked: true}) {
				t.Fatalf("after reset %+v", r.Layers)
			}
		})
	}
}

// TestSampleStream runs `sample` as a streaming command, parses every line with lab/agentfmt,
// and ends it by closing stdin.
func TestSampleStream(t *testing.T) {
	cfg := testConfig()
	cfg.Noise = true
	tg := startGuest(t, "win7-x64", cfg)
	tgt := installDriver(t, tg)
	inv, err := agentfmt.ParseInventory(strings.TrimRight(tg.must(`C:\wfplab\wfplab-agent.exe versions`).out, "\r\n"))
	if err != nil {
		t.Fatalf("lab/agentfmt cannot parse V1: %v", err)
	}
	if inv.OSBuild != "7600.16385" || inv.Arch != "x64" || !inv.TestSigning || inv.DrvService != "running" || inv.Netio != "6.1.7600.16385" {
		t.Fatalf("inventory %+v", inv)
	}

	shell, err := tg.client().CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer shell.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, err := shell.ExecuteWithContext(ctx, `C:\wfplab\wfplab-agent.exe sample --interval-ms 50`)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		r := bufio.NewReader(cmd.Stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break
			}
			lines <- l
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended early")
			}
			if !strings.HasSuffix(l, "\r\n") {
				t.Fatalf("line without CRLF: %q", l)
			}
			return strings.TrimSuffix(l, "\r\n")
		case <-time.After(10 * time.Second):
			t.Fatal("no line within 10s")
		}
		return ""
	}
	h, err := agentfmt.ParseHeader(next())
	if err != nil {
		t.Fatalf("H1: %v", err)
	}
	if h.Agent != "wfplab-agent" || h.IntervalMS != 50 || h.Arch != "x64" || h.PID == 0 {
		t.Fatalf("header %+v", h)
	}
	var tr contract.TagTable
	var samples []contract.Sample
	for i := 0; i < 12; i++ {
		if i == 4 {
			sendUDP(t, tgt.Traffic.Forward, 4000, 100)
		}
		s, err := agentfmt.ParseSample(next())
		if err != nil {
			t.Fatalf("S1 %d: %v", i, err)
		}
		samples = append(samples, s)
		tr.Apply(s.Seq, s.ChangedTags)
		full := maps.Clone(tr.Tags())
		var sum uint64
		for _, u := range full {
			sum += u.Bytes
		}
		if sum != s.NPBytes {
			t.Fatalf("sample %d: tags add up to %d, np_bytes is %d", i, sum, s.NPBytes)
		}
	}
	if err := cmd.Stdin.Close(); err != nil {
		t.Fatal(err)
	}
	for range lines { // the rest until the command ends
	}
	cmd.Wait()
	if cmd.ExitCode() != 0 {
		t.Fatalf("sample exit %d", cmd.ExitCode())
	}
	if len(samples[0].ChangedTags) < 10 {
		t.Fatalf("sample 0 lists %d tags, want every non-zero one", len(samples[0].ChangedTags))
	}
	// Tags with blanks travel escaped (Irp%20) and come back as four bytes.
	for _, tag := range []string{"Irp ", "Io  ", "Nnbl", "NDnd"} {
		if _, ok := samples[0].ChangedTags[tag]; !ok {
			t.Fatalf("sample 0 lacks tag %q: %v", tag, samples[0].ChangedTags)
		}
	}
	for i, s := range samples {
		if s.Seq != uint64(i) || s.Driver.State != "running" {
			t.Fatalf("sample %d: seq %d drv %q", i, s.Seq, s.Driver.State)
		}
		if i == 0 {
			continue
		}
		p := samples[i-1]
		if s.TimeUS <= p.TimeUS || s.CPUKernelMS < p.CPUKernelMS || s.NPAllocs < p.NPAllocs {
			t.Fatalf("sample %d went back: %+v after %+v", i, s, p)
		}
		if len(s.ChangedTags) >= len(samples[0].ChangedTags) {
			t.Fatalf("sample %d repeats every tag (%d): only changed ones belong", i, len(s.ChangedTags))
		}
		if _, ok := s.ChangedTags["MmSt"]; ok {
			t.Fatalf("sample %d lists a tag that never changes", i)
		}
	}
	span := samples[len(samples)-1].TimeUS - samples[0].TimeUS
	if span < 11*50_000*8/10 {
		t.Fatalf("12 samples at 50 ms spanned only %d us of guest time", span)
	}
	// Per datagram: its 3 fragments alone, then their group of 3 (lone ones always first).
	last := samples[len(samples)-1].Driver.Layers[contract.LayerForward]
	if last.MultiBlocked == 0 || last.Hist[0] < 3*last.Hist[2] || last.NBLs != last.Hist[0]+3*last.Hist[2] {
		t.Fatalf("forward counters in the stream: %+v", last)
	}
}

// TestSampleEndsOnTerminateAndOnReboot: the stream stops when the client signals terminate
// (context cancelled) and when the guest goes down under it.
func TestSampleEndsOnTerminateAndOnReboot(t *testing.T) {
	tg := startGuest(t, "win7-x86", testConfig())
	tg.must(`mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineI386, false))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := tg.client().RunWithContext(ctx, `C:\wfplab\wfplab-agent.exe sample --interval-ms 20`, io.Discard, io.Discard)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("sample did not stop on terminate")
	}
	// A stream running when the guest reboots ends with it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	go func() {
		_, err := tg.client().RunWithContext(ctx2, `C:\wfplab\wfplab-agent.exe sample --interval-ms 20`, io.Discard, io.Discard)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	tg.reboot()
	select {
	case <-done: // the client sees the server go away; what matters is that it ended
	case <-time.After(25 * time.Second):
		t.Fatal("sample outlived the reboot")
	}
}

// TestHostReturnsOnCancel holds the Host contract: Run returns promptly once ctx is done,
// here for a sample stream whose stdin never ends.
func TestHostReturnsOnCancel(t *testing.T) {
	tg := startGuest(t, "win7-x64", testConfig())
	tg.must(`mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineAMD64, false))
	tg.g.mu.Lock()
	b := tg.g.cur
	tg.g.mu.Unlock()
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- tg.g.run(ctx, b, wsman.Command{Line: `C:\wfplab\wfplab-agent.exe sample --interval-ms 10`, Stdin: stdinR, Stdout: &out, Stderr: io.Discard})
	}()
	eventually(t, 10*time.Second, "three samples", func() bool { return strings.Count(out.String(), "\nS1 ") >= 3 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `mode permit` makes the driver count without blocking: stream data is delivered, no
// pool leaks on an unpatched netio, and `mode block` brings the bug back.
func TestAgentModePermitThroughWinRM(t *testing.T) {
	tg := startGuest(t, "win7-x86", testConfig())
	tg.must(`if not exist C:\wfplab mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineI386, false))
	absent := tg.run(`C:\wfplab\wfplab-agent.exe mode permit`)
	if absent.code != 2 || strings.TrimSpace(absent.out) != "C1 drv=absent" {
		t.Fatalf("mode permit without a driver: %+v, want exit 2 and C1 drv=absent", absent)
	}
	tgt := installDriver(t, tg)
	for _, bad := range []string{"mode", "mode allow", "mode permit extra", "mode PERMIT"} {
		if a := tg.run(`C:\wfplab\wfplab-agent.exe ` + bad); a.code != 1 || !strings.HasPrefix(a.out, "E1 where=usage") {
			t.Errorf("%s: %+v, want exit 1 and E1 where=usage", bad, a)
		}
	}
	setMode := func(mode string) agentfmt.Counters {
		t.Helper()
		c, err := agentfmt.ParseCounters(strings.TrimRight(tg.must(`C:\wfplab\wfplab-agent.exe mode `+mode).out, "\r\n"))
		if err != nil || c.Mode != mode || c.Driver.State != "running" {
			t.Fatalf("mode %s: %+v, %v", mode, c, err)
		}
		return c
	}
	setMode("permit")
	before := tg.kern().Pool(0).Bytes
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(tgt.Traffic.Stream))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if _, err := c.Write(make([]byte, 8*1460)); err != nil {
			t.Fatalf("a permitted stream was cut: %v", err)
		}
	}
	sendUDP(t, tgt.Traffic.Forward, 4000, 100)
	var d contract.Driver
	eventually(t, 10*time.Second, "the driver to count every permitted chain", func() bool {
		d = counters(t, tg, "counters")
		return d.Layers[contract.LayerForward].Classify == 4*100 && d.Layers[contract.LayerStream].NBLs == 40
	})
	if d.Layers[contract.LayerStream].Blocked != 0 || d.Layers[contract.LayerForward].Blocked != 0 {
		t.Fatalf("permit mode blocked: %+v", d.Layers)
	}
	if grew := tg.kern().Pool(time.Hour).Bytes - before; grew != 0 {
		t.Fatalf("pool grew %d bytes in permit mode on an unpatched netio", grew)
	}
	setMode("block")
	sendUDP(t, tgt.Traffic.Forward, 4000, 10)
	eventually(t, 10*time.Second, "block mode to block again", func() bool {
		return counters(t, tg, "counters").Layers[contract.LayerForward].Blocked == 10
	})
}
