//go:build linux

package appliance

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wfplab/wfplab/lab/sim"
)

// Interfaces lists the VM's network interfaces other than lo, by name: eth0 is user-mode
// networking (WinRM, stream, control), eth1 and eth2 the forward path when present.
func Interfaces() ([]sim.NIC, error) {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	var out []sim.NIC
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		text, _ := os.ReadFile("/sys/class/net/" + e.Name() + "/address")
		mac, err := net.ParseMAC(strings.TrimSpace(string(text)))
		if err != nil {
			return nil, fmt.Errorf("%s: MAC address %q: %w", e.Name(), text, err)
		}
		out = append(out, sim.NIC{Interface: e.Name(), MAC: mac})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Interface < out[j].Interface })
	return out, nil
}

// setupNetwork brings lo and eth0 up with user-mode networking's addresses and a default
// route, and the other NICs' links up; it returns those others, the guest's extra NICs
// (their addresses are set over WinRM by the lab, as on Windows).
func setupNetwork(logf func(string, ...any)) ([]sim.NIC, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("network: no eth0 10 s after loading virtio_net: give QEMU -device virtio-net-pci")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	defer unix.Close(fd)
	if err := ifConfig(fd, "lo", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("255.0.0.0")); err != nil {
		return nil, err
	}
	if err := ifConfig(fd, "eth0", guestAddr, guestMask); err != nil {
		return nil, err
	}
	if err := addDefaultRoute(gateway); err != nil {
		logf("network: default route via %s: %v (hostfwd still works: its peer is on-link)", gateway, err)
	}
	nics, err := Interfaces()
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	var extra []sim.NIC
	for _, n := range nics {
		if n.Interface == "eth0" {
			logf("network: eth0 %s up, %s/24 via %s", n.MAC, guestAddr, gateway)
			continue
		}
		if err := ifUp(fd, n.Interface); err != nil {
			return nil, err
		}
		logf("network: %s %s link up", n.Interface, n.MAC)
		extra = append(extra, n)
	}
	return extra, nil
}

func ifConfig(fd int, name string, addr, mask netip.Addr) error {
	for _, s := range []struct {
		req uint
		a   netip.Addr
	}{{unix.SIOCSIFADDR, addr}, {unix.SIOCSIFNETMASK, mask}} {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return fmt.Errorf("network: %s: %w", name, err)
		}
		a4 := s.a.As4()
		if err := ifr.SetInet4Addr(a4[:]); err != nil {
			return fmt.Errorf("network: %s: %w", name, err)
		}
		if err := unix.IoctlIfreq(fd, s.req, ifr); err != nil {
			return fmt.Errorf("network: %s: setting %s: %w", name, s.a, err)
		}
	}
	return ifUp(fd, name)
}

func ifUp(fd int, name string) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("network: %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("network: %s: reading flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("network: %s: link up: %w", name, err)
	}
	return nil
}

// addDefaultRoute adds 0.0.0.0/0 via gw over rtnetlink (RTM_NEWROUTE) and reads the ack.
func addDefaultRoute(gw netip.Addr) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	attrLen := unix.SizeofRtAttr + 4
	total := unix.SizeofNlMsghdr + unix.SizeofRtMsg + attrLen
	msg := make([]byte, total)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(total))
	ne.PutUint16(msg[4:], unix.RTM_NEWROUTE)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	ne.PutUint32(msg[8:], 1) // seq
	rt := msg[unix.SizeofNlMsghdr:]
	rt[0] = unix.AF_INET // family; dst_len, src_len, tos 0
	rt[4] = unix.RT_TABLE_MAIN
	rt[5] = unix.RTPROT_BOOT
	rt[6] = unix.RT_SCOPE_UNIVERSE
	rt[7] = unix.RTN_UNICAST
	at := rt[unix.SizeofRtMsg:]
	ne.PutUint16(at[0:], uint16(attrLen))
	ne.PutUint16(at[2:], unix.RTA_GATEWAY)
	g4 := gw.As4()
	copy(at[unix.SizeofRtAttr:], g4[:])
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	tv := unix.Timeval{Sec: 2}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("netlink ack: %w", err)
	}
	if n < unix.SizeofNlMsghdr+4 || ne.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("netlink: unexpected answer of %d bytes", n)
	}
	if code := int32(ne.Uint32(buf[unix.SizeofNlMsghdr:])); code != 0 {
		return fmt.Errorf("netlink: %w", unix.Errno(-code))
	}
	return nil
}

// watchPowerButton powers the VM off when the ACPI power button is pressed (QMP
// system_powerdown), as Windows shuts down on it: it finds the input device named
// "Power Button" and reads its events (struct input_event: 24 bytes on amd64).
func watchPowerButton(press func(), logf func(string, ...any)) {
	paths, _ := filepath.Glob("/sys/class/input/event*/device/name")
	for _, p := range paths {
		name, _ := os.ReadFile(p)
		if strings.TrimSpace(string(name)) != "Power Button" {
			continue
		}
		dev := "/dev/input/" + filepath.Base(filepath.Dir(filepath.Dir(p)))
		f, err := os.Open(dev)
		if err != nil {
			logf("power button %s: %v", dev, err)
			continue
		}
		go func() {
			defer f.Close()
			var ev [24]byte
			for {
				if _, err := io.ReadFull(f, ev[:]); err != nil {
					logf("power button %s: %v", dev, err)
					return
				}
				typ, code := binary.NativeEndian.Uint16(ev[16:]), binary.NativeEndian.Uint16(ev[18:])
				if typ == evKey && code == keyPower && binary.NativeEndian.Uint32(ev[20:]) == 1 {
					logf("power button pressed: shutting down")
					press()
				}
			}
		}()
		return
	}
	logf("no ACPI power button: QMP system_powerdown will not reach the guest (use quit)")
}

// From linux/input-event-codes.h.
const (
	evKey    = 1
	keyPower = 116
)
