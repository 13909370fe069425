//go:build linux

package appliance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// TestApplianceBootsAndRebootsUnderQEMU builds a win7-x64 appliance from a freshly built
// wfplab binary and Debian's kernel, boots it under TCG with a blank state disk, drives it
// over WinRM through hostfwd, reboots it for real and checks a file written before the
// reboot survived while the boot time changed. It reports the boot and reboot times.
func TestApplianceBootsAndRebootsUnderQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): the appliance cannot be booted here")
	}
	kernelPath := os.Getenv("WFPLAB_KERNEL") // a linux-image .deb or its unpacked tree
	if kernelPath == "" {
		if _, err := exec.LookPath("apt-get"); err != nil {
			t.Skip("no apt-get to fetch Debian's kernel and WFPLAB_KERNEL is not set: no kernel to boot")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()

	exe := filepath.Join(dir, "wfplab")
	build := exec.CommandContext(ctx, "go", "build", "-o", exe, "../../../cmd/wfplab")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/wfplab: %v\n%s", err, out)
	}
	var log bytes.Buffer
	b, err := Build(ctx, Options{Target: "win7-x64", KernelPath: kernelPath, Executable: exe, Seed: 3, Log: &log})
	t.Logf("build:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	v := bootVM(ctx, t, qemu, b, b.Append)
	start, port, consolePath := v.start, v.port, v.console

	c := newClient(t, port, 30*time.Second)
	run := func(line string) string {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		out, errOut, code, err := c.RunWithContextWithString(rctx, line, "")
		if err != nil || code != 0 {
			t.Fatalf("%s: exit %d, %v\nstdout %q\nstderr %q", line, code, err, out, errOut)
		}
		return out
	}
	// waitWinRM polls until `wmic` answers with a boot time other than not; bounded by ctx.
	waitWinRM := func(not string) string {
		t.Helper()
		for {
			select {
			case <-v.done:
				t.Fatalf("qemu exited: %v", v.err)
			case <-ctx.Done():
				t.Fatalf("WinRM did not answer within the test's bound (%v since QEMU started)", time.Since(start).Round(time.Second))
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			// A short HTTP timeout: until the guest listens, hostfwd holds connections open
			// (and the client does not give up on ctx alone).
			out, _, code, err := newClient(t, port, 2*time.Second).RunWithContextWithString(pctx, `wmic os get LastBootUpTime /value`, "")
			pcancel()
			if m := bootTimeRe.FindStringSubmatch(out); err == nil && code == 0 && m != nil && m[1] != not {
				return m[1]
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	boot1 := waitWinRM("")
	bootTook := time.Since(start)
	if v := run("ver"); !strings.Contains(v, "Microsoft Windows [Version 6.1.7600]") {
		t.Fatalf("ver: %q", v)
	}
	run(`mkdir C:\wfplab`)
	t0 := time.Now()
	for i := 0; i < 40; i++ {
		run(`echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa >> C:\wfplab\u.txt`)
	}
	perCommand := time.Since(t0) / 40
	run(`echo x > C:\wfplab\t.txt`)

	rebootAt := time.Now()
	// The answer may be lost when the VM goes down first, as against Windows.
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	_, _, _, _ = c.RunWithContextWithString(sctx, `shutdown /r /t 0`, "")
	scancel()
	boot2 := waitWinRM(boot1)
	rebootTook := time.Since(rebootAt)

	if got := run(`type C:\wfplab\t.txt`); got != "x \r\n" {
		t.Fatalf("after the reboot C:\\wfplab\\t.txt holds %q, want %q", got, "x \r\n")
	}
	if got := run(`type C:\wfplab\u.txt`); strings.Count(got, "aaaa \r\n") != 40 {
		t.Fatalf("after the reboot u.txt holds %d of the 40 lines appended", strings.Count(got, "aaaa \r\n"))
	}
	data, _ := os.ReadFile(consolePath)
	if n := strings.Count(string(data), "simulated win7-x64 (Windows 7 x64) booting"); n != 2 {
		t.Fatalf("the console shows %d boots of the VM, want 2 (a real reboot)", n)
	}
	if !strings.Contains(string(data), "rebooting (reboot(2))") || !strings.Contains(string(data), "state loaded from /dev/vda") {
		t.Fatal("the console shows no reboot(2) or no state loaded from the state disk")
	}
	for _, l := range strings.Split(string(data), "\n") {
		if i := strings.Index(l, "wfplab ["); i >= 0 && !strings.Contains(l, "wsman:") {
			l = l[i:]
			t.Logf("console: %s", strings.TrimSpace(l))
		}
	}
	t.Logf("boot times %s then %s", boot1, boot2)
	t.Logf("MEASURED: QEMU start to WinRM answering %.1f s; shutdown /r to WinRM answering again %.1f s; %d ms a command (TCG, 1 vCPU)",
		bootTook.Seconds(), rebootTook.Seconds(), perCommand.Milliseconds())

	// QMP system_powerdown presses the ACPI power button: the guest saves and powers off, and
	// QEMU exits.
	qmpExecute(t, v.qmp, "system_powerdown")
	select {
	case <-v.done:
	case <-time.After(30 * time.Second):
		t.Fatal("QEMU still runs 30 s after system_powerdown")
	}
	if data, _ := os.ReadFile(consolePath); !strings.Contains(string(data), "power button pressed") {
		t.Fatal("QEMU exited after system_powerdown, but the console does not show the guest's power-off")
	}

	// wfplab.hang_pool_mb below the idle pool: the guest hangs right after it boots.
	t.Run("HangPoolMB", func(t *testing.T) {
		p, err := ParseCmdline(b.Append, Params{})
		if err != nil {
			t.Fatal(err)
		}
		p.HangPoolMB = 1
		// With the forward path's two NICs as the qemu provider adds them (dgram on loopback).
		var nics []string
		for i, mac := range []string{"52:54:00:12:34:57", "52:54:00:12:34:58"} {
			nics = append(nics, "-netdev", fmt.Sprintf("dgram,id=f%d,local.type=inet,local.host=127.0.0.1,local.port=%d,remote.type=inet,remote.host=127.0.0.1,remote.port=%d",
				i, freeUDPPort(t), freeUDPPort(t)), "-device", fmt.Sprintf("virtio-net-pci,netdev=f%d,mac=%s", i, mac))
		}
		v := bootVM(ctx, t, qemu, b, p.Append(), nics...)
		v.waitConsole(ctx, t, "the console never said the guest stopped answering", func(console string) bool {
			return strings.Contains(console, "the guest stops answering")
		})
		data, _ := os.ReadFile(v.console)
		for _, want := range []string{"eth1 52:54:00:12:34:57 link up", "eth2 52:54:00:12:34:58 link up"} {
			if !strings.Contains(string(data), want) {
				t.Errorf("the console does not say %q", want)
			}
		}
		// Unauthenticated, a live guest answers 401 at once; a hung one holds the request.
		hc := &http.Client{Timeout: 3 * time.Second}
		resp, err := hc.Post(fmt.Sprintf("http://127.0.0.1:%d/wsman", v.port), "application/soap+xml;charset=UTF-8", strings.NewReader("<x/>"))
		var ue *url.Error
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a hung guest answered HTTP %d", resp.StatusCode)
		}
		if !errors.As(err, &ue) || !ue.Timeout() {
			t.Fatalf("a hung guest failed the request with %v, want a timeout (held, not refused)", err)
		}
		t.Logf("hung %.1f s after QEMU started; WinRM holds requests", time.Since(v.start).Seconds())

		// The watchdog of /init notices and writes its report through the kernel log.
		var report string
		v.waitConsole(ctx, t, "the console shows no watchdog report with the goroutines of the hung guest", func(console string) bool {
			i := strings.Index(console, "wfplab: watchdog:")
			if i >= 0 && strings.Contains(console[i:], "wfplab: goroutine ") {
				report = console[i:]
			}
			return report != ""
		})
		if !strings.Contains(report, "hang_pool_mb=1 is set") || !strings.Contains(report, "eth0 rx ") {
			t.Errorf("the watchdog's report does not name the hang asked for or the NICs' counters:\n%s", report[:min(len(report), 2000)])
		}
		t.Logf("watchdog report %.1f s after QEMU started", time.Since(v.start).Seconds())
	})
}

// waitConsole polls the serial console until done accepts it; it fails the test with failMsg
// when ctx ends first, or at once when QEMU exits.
func (v *vm) waitConsole(ctx context.Context, t *testing.T, failMsg string, done func(console string) bool) {
	t.Helper()
	for {
		if data, _ := os.ReadFile(v.console); done(string(data)) {
			return
		}
		select {
		case <-v.done:
			t.Fatalf("qemu exited: %v", v.err)
		case <-ctx.Done():
			t.Fatal(failMsg)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type vm struct {
	start   time.Time
	port    int           // host port forwarded to WinRM
	qmp     string        // QMP socket
	done    chan struct{} // closed when QEMU exited
	err     error         // QEMU's exit, once done
	console string        // path of the serial console's log
}

// bootVM boots b under TCG with a blank 64 MiB state disk; t.Cleanup kills QEMU.
func bootVM(ctx context.Context, t *testing.T, qemu string, b Boot, appendLine string, extra ...string) *vm {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state.img")
	if err := os.WriteFile(state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(state, 64<<20); err != nil { // blank and sparse
		t.Fatal(err)
	}
	v := &vm{port: freePort(t), done: make(chan struct{}), console: filepath.Join(dir, "console.log"), qmp: filepath.Join(dir, "qmp.sock")}
	console, err := os.Create(v.console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { console.Close() })
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "512", "-smp", "1", "-nographic", "-nodefaults", "-serial", "stdio",
		"-kernel", b.Kernel, "-initrd", b.Initrd, "-append", appendLine,
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d", v.port, WinRMPort),
		"-device", "virtio-net-pci,netdev=n0",
		"-drive", "file="+state+",format=raw,if=virtio", "-qmp", "unix:"+v.qmp+",server=on,wait=off")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = console, console
	// QEMU dies with the test process even if that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	v.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.err = cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-v.done:
		case <-time.After(10 * time.Second):
			t.Errorf("qemu (pid %d) did not exit 10 s after SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			data, _ := os.ReadFile(v.console)
			t.Logf("serial console:\n%s", data)
		}
	})
	return v
}

var bootTimeRe = regexp.MustCompile(`LastBootUpTime=(\S+)`)

func newClient(t *testing.T, port int, timeout time.Duration) *winrm.Client {
	t.Helper()
	ep := winrm.NewEndpoint("127.0.0.1", port, false, false, nil, nil, nil, timeout)
	c, err := winrm.NewClientWithParameters(ep, "vagrant", "vagrant", winrm.NewParameters("PT20S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// qmpExecute runs one QMP command without arguments and checks it returned.
func qmpExecute(t *testing.T, sock, command string) {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("QMP: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // the greeting
		t.Fatalf("QMP greeting: %v", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		fmt.Fprintf(c, "{\"execute\":%q}\n", cmd)
		for i := 0; ; i++ { // skip asynchronous events
			line, err := r.ReadString('\n')
			if err != nil || i > 100 {
				t.Fatalf("QMP %s: %v", cmd, err)
			}
			if strings.Contains(line, `"error"`) {
				t.Fatalf("QMP %s: %s", cmd, line)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
}
