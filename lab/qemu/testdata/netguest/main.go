// Command netguest is the /init of a test initramfs: the smallest guest that exercises
// what the qemu provider wires, under Debian's kernel. It loads the virtio NIC modules,
// brings NIC 1 up at user-mode networking's 10.0.2.15, answers HTTP on 5985 (any status
// counts as WinRM for the boot wait), echoes TCP on 5001 and UDP on 5002, and copies every
// frame of EtherType 0x88B5 (local experimental) from NIC 2 to NIC 3 unchanged. NICs are
// found by the provider's MAC plan: 52:54:00:76:i:01 is NIC 1, 52:54:00:77:i:02/03 NIC 2/3.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// modules in dependency order (virtio before virtio_ring fails: unknown symbols).
var modules = []string{"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"failover", "net_failover", "virtio_net"}

const etherType = 0x88B5

func main() {
	say("netguest: starting")
	for _, d := range []struct{ src, dst, fs string }{{"devtmpfs", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}} {
		os.MkdirAll(d.dst, 0o755)
		if err := unix.Mount(d.src, d.dst, d.fs, 0, ""); err != nil {
			say("mount %s: %v", d.dst, err)
		}
	}
	for _, m := range modules {
		f, err := os.Open("/" + m + ".ko")
		if err != nil {
			say("module %s: %v", m, err)
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			say("module %s: %v", m, err)
		}
		f.Close()
	}
	ifup("lo", nil, nil)
	// virtio_net probes every NIC while its module loads; NIC 1 showing means all did.
	var nic1, linkA, linkB *net.Interface
	for deadline := time.Now().Add(20 * time.Second); nic1 == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ifs, _ := net.Interfaces()
		for i := range ifs {
			mac := ifs[i].HardwareAddr.String()
			switch {
			case strings.HasPrefix(mac, "52:54:00:76:"):
				nic1 = &ifs[i]
			case strings.HasPrefix(mac, "52:54:00:77:") && strings.HasSuffix(mac, ":02"):
				linkA = &ifs[i]
			case strings.HasPrefix(mac, "52:54:00:77:") && strings.HasSuffix(mac, ":03"):
				linkB = &ifs[i]
			}
		}
	}
	if nic1 == nil {
		say("netguest: no NIC 1")
		hang()
	}
	ifup(nic1.Name, net.IPv4(10, 0, 2, 15).To4(), net.IPv4(255, 255, 255, 0).To4())
	go serveTCP(":5985", func(c net.Conn) {
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	go serveTCP(":5001", func(c net.Conn) { io.Copy(c, c) })
	go func() {
		pc, err := net.ListenPacket("udp4", ":5002")
		if err != nil {
			say("udp 5002: %v", err)
			return
		}
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	if linkA != nil && linkB != nil {
		ifup(linkA.Name, nil, nil)
		ifup(linkB.Name, nil, nil)
		go bridge(linkA, linkB)
	}
	say("netguest: ready (nic1 %s, links %v %v)", nic1.Name, linkA != nil, linkB != nil)
	hang()
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// hang keeps PID 1 alive: the kernel panics when init exits.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

func serveTCP(addr string, handle func(net.Conn)) {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		say("listen %s: %v", addr, err)
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); handle(c) }()
	}
}

// ifup sets an address (when given) and brings the interface up.
func ifup(name string, addr, mask net.IP) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		say("ifup %s: %v", name, err)
		return
	}
	defer unix.Close(fd)
	set := func(req uint, ip net.IP) {
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			err = ifr.SetInet4Addr(ip)
		}
		if err == nil {
			err = unix.IoctlIfreq(fd, req, ifr)
		}
		if err != nil {
			say("ifup %s: %v", name, err)
		}
	}
	if addr != nil {
		set(unix.SIOCSIFADDR, addr)
		set(unix.SIOCSIFNETMASK, mask)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		say("ifup %s: %v", name, err)
		return
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		say("ifup %s: %v", name, err)
		return
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		say("ifup %s: %v", name, err)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func packetSocket(ifc *net.Interface) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(etherType)))
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// bridge copies frames of etherType from in to out unchanged.
func bridge(in, out *net.Interface) {
	rfd, err := packetSocket(in)
	if err != nil {
		say("bridge: %v", err)
		return
	}
	wfd, err := packetSocket(out)
	if err != nil {
		say("bridge: %v", err)
		return
	}
	buf := make([]byte, 65536)
	for {
		n, err := unix.Read(rfd, buf)
		if err != nil {
			say("bridge read: %v", err)
			return
		}
		if _, err := unix.Write(wfd, buf[:n]); err != nil {
			say("bridge write: %v", err)
		}
	}
}
