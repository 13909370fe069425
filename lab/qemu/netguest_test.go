package qemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
)

// cpioEntry is one file of a newc archive.
type cpioEntry struct {
	name string
	mode uint32
	data []byte
}

// writeCPIO writes a "newc" cpio archive, the format the kernel unpacks as initramfs.
func writeCPIO(w io.Writer, entries []cpioEntry) error {
	pad := func(n int) []byte { return make([]byte, (4-n%4)%4) }
	var buf bytes.Buffer
	for i, e := range append(entries, cpioEntry{name: "TRAILER!!!"}) {
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, 0, 0, len(e.name)+1, 0)
		buf.WriteString(e.name)
		buf.WriteByte(0)
		buf.Write(pad(110 + len(e.name) + 1))
		buf.Write(e.data)
		buf.Write(pad(len(e.data)))
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// netguestInitrd builds testdata/netguest statically and packs it as /init with the
// virtio NIC modules of the kernel's module tree.
func netguestInitrd(t *testing.T, modulesDir string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-o", bin, "./testdata/netguest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test guest: %v\n%s", err, out)
	}
	initData, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	entries := []cpioEntry{{name: "init", mode: 0o100755, data: initData}}
	for _, rel := range []string{"drivers/virtio/virtio_ring.ko", "drivers/virtio/virtio.ko",
		"drivers/virtio/virtio_pci_legacy_dev.ko", "drivers/virtio/virtio_pci_modern_dev.ko",
		"drivers/virtio/virtio_pci.ko", "net/core/failover.ko", "drivers/net/net_failover.ko", "drivers/net/virtio_net.ko"} {
		data, err := os.ReadFile(filepath.Join(modulesDir, "kernel", rel))
		if err != nil {
			// The appliance's kernel cache keeps the modules it needs side by side.
			data, err = os.ReadFile(filepath.Join(modulesDir, filepath.Base(rel)))
		}
		if err != nil {
			t.Skipf("SKIP: the kernel's modules are not next to it (%v); set WFPLAB_QEMU_MODULES to lib/modules/<version>", err)
		}
		entries = append(entries, cpioEntry{name: filepath.Base(rel), mode: 0o100644, data: data})
	}
	out := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCPIO(f, entries); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// modulesFor finds lib/modules/<version> for .../boot/vmlinuz-<version> (an unpacked
// Debian linux-image package), unless WFPLAB_QEMU_MODULES says where.
func modulesFor(kernel string) string {
	if d := os.Getenv("WFPLAB_QEMU_MODULES"); d != "" {
		return d
	}
	version := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	return filepath.Join(filepath.Dir(filepath.Dir(kernel)), "lib", "modules", version)
}

// TestRealGuestNetworking boots Debian's kernel with a tiny Go /init under TCG through Up
// and checks every path the provider wires: WinRM, stream and control through NIC 1's
// forwards, and frames into NIC 2 coming out of NIC 3 over the dgram links; then a QMP
// reset and the wait for WinRM again. It logs the boot and reboot times.
func TestRealGuestNetworking(t *testing.T) {
	needQEMU(t)
	kernel := os.Getenv("WFPLAB_QEMU_KERNEL")
	if kernel == "" {
		t.Skip("SKIP: set WFPLAB_QEMU_KERNEL to Debian's vmlinuz from an unpacked linux-image package (its lib/modules beside it) to boot a real guest")
	}
	initrd := netguestInitrd(t, modulesFor(kernel))
	rec := &logRecorder{}
	m := Machine{Name: "netguest", OS: "win7-x64", Kernel: kernel, Initrd: initrd, Append: "console=ttyS0 panic=-1",
		Accel: AccelTCG, ForwardLinks: true, StateDiskMB: 8, Creds: contract.Credentials{User: "u", Password: testPassword}}
	runDir := t.TempDir()
	p, err := New(Config{RunDir: runDir, AccelCacheDir: "off", BootTimeout: 90 * time.Second, PowerdownWait: time.Second, Logf: rec.logf}, m)
	if err != nil {
		t.Fatal(err)
	}
	cleanupQEMU(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()

	start := time.Now()
	targets, err := p.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("boot: WinRM answered %.1fs after Up began (TCG, %s)", time.Since(start).Seconds(), filepath.Base(kernel))
	tg := targets[0]

	// Stream (TCP) and control (UDP) reach the guest through NIC 1's forwards.
	c, err := net.DialTimeout("tcp", tg.Traffic.Stream.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "stream-hello")
	got := make([]byte, len("stream-hello"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "stream-hello" {
		t.Errorf("stream echo through %s: %q, %v", tg.Traffic.Stream, got, err)
	}
	c.Close()
	u, err := net.Dial("udp", tg.Traffic.Control.String())
	if err != nil {
		t.Fatal(err)
	}
	u.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	var n int
	for range 5 { // UDP: the first datagram may race the guest's socket
		u.Write([]byte("control-hello"))
		if n, err = u.Read(buf); err == nil {
			break
		}
		u.SetDeadline(time.Now().Add(2 * time.Second))
	}
	if string(buf[:n]) != "control-hello" {
		t.Errorf("control echo through %s: %q, %v", tg.Traffic.Control, buf[:n], err)
	}
	u.Close()

	// The forward path: a frame sent to link A's guest socket enters NIC 2; the guest puts
	// it on NIC 3; QEMU sends it to link B's host socket.
	info, err := p.VM("netguest")
	if err != nil || info.Links == nil {
		t.Fatalf("VM info %+v, %v", info, err)
	}
	l := info.Links
	hostB, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(l.B.HostSock))
	if err != nil {
		t.Fatal(err)
	}
	defer hostB.Close()
	hostA, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(l.A.HostSock))
	if err != nil {
		t.Fatal(err)
	}
	defer hostA.Close()
	frame := append(append(append([]byte{}, l.A.GuestMAC...), l.A.HostMAC...), 0x88, 0xB5)
	frame = append(frame, []byte("forward-path frame, padded to the Ethernet minimum....")...)
	var fwd []byte
	for i := 0; i < 10 && fwd == nil; i++ {
		if _, err := hostA.WriteToUDPAddrPort(frame, l.A.GuestSock); err != nil {
			t.Fatal(err)
		}
		hostB.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := hostB.Read(buf)
			if err != nil {
				break
			}
			if n >= 14 && buf[12] == 0x88 && buf[13] == 0xB5 { // skip the guest's own IPv6 chatter
				fwd = append([]byte(nil), buf[:n]...)
				break
			}
		}
	}
	if !bytes.Equal(fwd, frame) {
		t.Errorf("frame out of NIC 3 = %x, want %x", fwd, frame)
	}

	ev, err := p.Recover(ctx, "netguest")
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if !strings.Contains(ev.ConsoleTail, "netguest: ready") {
		t.Errorf("console tail lacks the guest's ready line:\n%s", ev.ConsoleTail)
	}
	start = time.Now()
	if err := p.WaitReady(ctx, "netguest"); err != nil {
		t.Fatal(err)
	}
	t.Logf("reset: WinRM answered %.1fs after a QMP system_reset (TCG)", time.Since(start).Seconds())
	b, _ := os.ReadFile(ev.ConsoleLog)
	if n := strings.Count(string(b), "netguest: starting"); n != 2 {
		t.Errorf("console shows %d boots, want 2 (boot and reset)", n)
	}
	start = time.Now()
	if err := p.Down(ctx); err != nil {
		t.Errorf("down: %v", err)
	}
	t.Logf("down took %.1fs (the guest ignores ACPI powerdown)", time.Since(start).Seconds())
}
