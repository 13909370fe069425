package qemu

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/wfplab/wfplab/lab/contract"
)

// Files in a VM's folder (RunDir/vm/<target>/).
const (
	overlayFile = "disk.qcow2"
	stateFile   = "state.raw"
	consoleFile = "console.log"
	qemuLogFile = "qemu.log"
	qmpFile     = "qmp.sock"
	pidFile     = "qemu.pid"
	ownerFile   = "owner.pid"
)

// vmPaths are the absolute paths of one VM's files.
type vmPaths struct {
	Dir, Overlay, State, Console, QemuLog, QMP, Pid, Owner string
}

func newVMPaths(runDir, name string) vmPaths {
	dir := filepath.Join(runDir, "vm", name)
	return vmPaths{
		Dir:     dir,
		Overlay: filepath.Join(dir, overlayFile),
		State:   filepath.Join(dir, stateFile),
		Console: filepath.Join(dir, consoleFile),
		QemuLog: filepath.Join(dir, qemuLogFile),
		QMP:     filepath.Join(dir, qmpFile),
		Pid:     filepath.Join(dir, pidFile),
		Owner:   filepath.Join(dir, ownerFile),
	}
}

// optEscape doubles commas: QEMU's option syntax uses "," as separator and ",," for a
// literal comma in a value (paths may hold commas).
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// args builds QEMU's argv (without argv[0]) for m, defaulted and validated. It holds no
// secret: credentials never reach QEMU. QEMU runs with its working directory in paths.Dir,
// and the QMP socket is given relative to it, because a unix socket path is limited to 107
// bytes and run folders can be deeper than that.
func args(m Machine, index int, accel string, paths vmPaths, ports vmPorts) []string {
	a := []string{
		"-name", "wfplab-" + m.Name,
		"-no-user-config", "-nodefaults",
		"-machine", "pc",
		"-accel", accel,
		"-m", fmt.Sprint(m.MemoryMB),
		"-smp", fmt.Sprint(m.CPUs),
		"-display", "none",
		// A display adapter so that screendump has a surface (BIOS text, Windows' screen).
		"-vga", "std",
		"-chardev", "file,id=con0,path=" + optEscape(paths.Console),
		"-serial", "chardev:con0",
		"-qmp", "unix:" + qmpFile + ",server=on,wait=off",
		"-pidfile", paths.Pid,
	}
	if m.CPU != "" {
		a = append(a, "-cpu", m.CPU)
	}
	if m.Image != "" {
		a = append(a, "-drive", "file="+optEscape(paths.Overlay)+",format=qcow2,if="+m.DiskInterface+",index=0,media=disk")
	}
	if m.StateDiskMB > 0 {
		a = append(a, "-drive", "file="+optEscape(paths.State)+",format=raw,if=none,id=state",
			"-device", "virtio-blk-pci,drive=state,serial=wfplab-state")
	}
	if m.Kernel != "" {
		a = append(a, "-kernel", m.Kernel)
		if m.Initrd != "" {
			a = append(a, "-initrd", m.Initrd)
		}
		if m.Append != "" {
			a = append(a, "-append", m.Append)
		}
	}
	h := ports.Host
	a = append(a,
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=udp:127.0.0.1:%d-:%d",
			h.WinRM, m.GuestPorts.WinRM, h.Stream, m.GuestPorts.Stream, h.Control, m.GuestPorts.Control),
		"-device", fmt.Sprintf("%s,netdev=n0,mac=%s", m.NICModel, nic1MAC(index)),
	)
	if l := ports.Links; l != nil {
		for i, link := range []contract.FrameLink{l.A, l.B} {
			id := fmt.Sprintf("n%d", i+1)
			a = append(a,
				"-netdev", fmt.Sprintf("dgram,id=%s,local.type=inet,local.host=127.0.0.1,local.port=%d,remote.type=inet,remote.host=127.0.0.1,remote.port=%d",
					id, link.GuestSock.Port(), link.HostSock.Port()),
				"-device", fmt.Sprintf("%s,netdev=%s,mac=%s", m.NICModel, id, link.GuestMAC),
			)
		}
	}
	return a
}
