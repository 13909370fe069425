//go:build linux

package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/wfplab/wfplab/traffic"
)

// netnsTopology makes a network namespace holding two veth pairs: f1-p1 (the in link) and
// f2-p2 (the out link). The forwarder takes f1 and f2 (left down: it must bring them up);
// the test plays the neighbours on p1 and p2, whose MACs are the neighbours'.
func netnsTopology(t *testing.T, tag string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: making a network namespace and veth pairs needs root (run the kernel tests as root to cover the AF_PACKET forwarder)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: the ip command (iproute2) is missing; apt-get install iproute2 to cover the AF_PACKET forwarder")
	}
	ns := fmt.Sprintf("wfplab-%s-%d", tag, os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "add", "f1", "type", "veth", "peer", "name", "p1")
	run("-n", ns, "link", "add", "f2", "type", "veth", "peer", "name", "p2")
	run("-n", ns, "link", "set", "p1", "address", neighInMAC.String())
	run("-n", ns, "link", "set", "p2", "address", neighOutMAC.String())
	run("-n", ns, "link", "set", "p1", "up")
	run("-n", ns, "link", "set", "p2", "up")
	// Less noise on the links (IPv6 router solicitations); the forwarder ignores it anyway.
	_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1").Run()
	return ns
}

// inNetns runs fn on a thread switched into namespace ns, then switches the thread back.
// Sockets made inside stay in ns.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// peer is the test's AF_PACKET socket on p1 or p2.
type peer struct {
	s      *packetSocket
	frames chan []byte
}

func openPeer(t *testing.T, name string) *peer {
	t.Helper()
	ifi, err := netInterfaceIndex(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openPacketSocket(ifi)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{s: s, frames: make(chan []byte, 1024)}
	go s.readLoop(func(b []byte) {
		select {
		case p.frames <- append([]byte(nil), b...):
		default:
		}
	})
	t.Cleanup(func() { s.file.Close() })
	return p
}

// next returns the next frame of Ethernet type typ within d, or nil.
func (p *peer) next(typ uint16, d time.Duration) []byte {
	deadline := time.After(d)
	for {
		select {
		case fr := <-p.frames:
			if len(fr) >= ethHeader && binary.BigEndian.Uint16(fr[12:]) == typ {
				return fr
			}
		case <-deadline:
			return nil
		}
	}
}

// forwarderInNetns starts the frame forwarder on f1/f2 inside ns, and the peers p1, p2 that
// stand for the host's side of each link.
func forwarderInNetns(t *testing.T, ns string, k *Kernel) (f *frameForwarder, stop func(), p1, p2 *peer) {
	t.Helper()
	var err error
	inNetns(t, ns, func() {
		if f, stop, err = startFrameForwarder(k, "f1", "f2", fwdInAddr, fwdOutAddr); err != nil {
			return
		}
		p1, p2 = openPeer(t, "p1"), openPeer(t, "p2")
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, stop, p1, p2
}

func TestFrameForwarderInNetns(t *testing.T) {
	ns := netnsTopology(t, "fwd")
	k := New(Config{Arch: "x64", GroupFragments: true})
	defer k.Close()
	f, stop, p1, p2 := forwarderInNetns(t, ns, k)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	// ARP for the guest's in address is answered with f1's MAC.
	if err := p1.s.writeFrame(arpFrame(1, neighInMAC, fwdSrc.Addr(), nil, fwdInAddr.Addr())); err != nil {
		t.Fatal(err)
	}
	reply := p1.next(etherARP, 3*time.Second)
	if reply == nil {
		t.Fatal("no ARP reply on the in link within 3s")
	}
	if _, arp := decodeARP(t, reply); arp.Operation != layers.ARPReply || !bytes.Equal(arp.SourceHwAddress, f.inMAC) ||
		!bytes.Equal(arp.SourceProtAddress, []byte{198, 51, 100, 1}) {
		t.Errorf("ARP reply %+v", arp)
	}

	// A fragment group goes through: the guest asks for the next hop on the out link, we
	// answer, and the three fragments come out with TTL 63.
	for _, fr := range groupTo(t, f.inMAC, 21, 4000, fwdDst) {
		if err := p1.s.writeFrame(fr); err != nil {
			t.Fatal(err)
		}
	}
	req := p2.next(etherARP, 3*time.Second)
	if req == nil {
		t.Fatal("the forwarder did not ask for the next hop 203.0.113.2 within 3s")
	}
	if _, arp := decodeARP(t, req); arp.Operation != layers.ARPRequest || !bytes.Equal(arp.DstProtAddress, []byte{203, 0, 113, 2}) {
		t.Fatalf("ARP request %+v", arp)
	}
	if err := p2.s.writeFrame(arpFrame(2, neighOutMAC, fwdDst.Addr(), f.outMAC, fwdOutAddr.Addr())); err != nil {
		t.Fatal(err)
	}
	var got int
	for range 3 {
		fr := p2.next(etherIPv4, 3*time.Second)
		if fr == nil {
			break
		}
		checkForwardedFrom(t, fr, f.outMAC, 21)
		got++
	}
	if got != 3 {
		t.Fatalf("%d of 3 fragments came out of the out link", got)
	}
	if tot := k.totals()[LayerForward]; tot.Chains != 4 || tot.NBLs != 6 {
		t.Errorf("forward totals %+v, want 3 lone fragments and one chain of 3", tot)
	}

	// With the driver blocking 203.0.113.0/24 on an unpatched netio, nothing comes out and
	// each group leaks its last NBL.
	if err := k.StartDriver(DriverConfig{ForwardPrefix: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}
	for id := uint16(30); id < 35; id++ {
		for _, fr := range groupTo(t, f.inMAC, id, 4000, fwdDst) {
			if err := p1.s.writeFrame(fr); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && k.totals()[LayerForward].Chains < 24 {
		time.Sleep(10 * time.Millisecond)
	}
	if fr := p2.next(etherIPv4, 300*time.Millisecond); fr != nil {
		t.Errorf("a frame came out of a blocked forward path: %x", fr[:34])
	}
	if tot := k.totals()[LayerForward]; tot.Chains != 24 || tot.Blocked != 5 || tot.Leaked != 5 {
		t.Errorf("forward totals %+v, want 24 indications, 5 groups blocked, 5 leaked", tot)
	}
	if c, _ := k.Counters(); c[LayerForward].MultiChain != 5 || c[LayerForward].NBLs != 30 || c[LayerForward].Classify != 20 {
		t.Errorf("driver counters %+v", c[LayerForward])
	}
	start := time.Now()
	stop()
	stopped = true
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %v", d)
	}
}

func netInterfaceIndex(name string) (int, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifc.Index, nil
}

// hypervisorLink plays QEMU's dgram netdev for one link: frames sent to its UDP socket on
// loopback go out of the peer interface (into the forwarder's), and frames the peer
// interface receives go to wfplab's socket.
func hypervisorLink(t *testing.T, p *peer, wfplab netip.AddrPort) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			_ = p.s.writeFrame(buf[:n])
		}
	}()
	go func() {
		for {
			select {
			case fr := <-p.frames:
				_, _ = c.WriteToUDPAddrPort(fr, wfplab)
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func freeUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// The traffic generator's frame links, through a hypervisor stand-in, into the AF_PACKET
// forwarder and its kernel model, and back: every datagram is forwarded while the path is
// open; none is, and each leaks its last NBL, while an unpatched guest's driver blocks it.
func TestTrafficThroughFrameForwarderInNetns(t *testing.T) {
	ns := netnsTopology(t, "e2e")
	k := New(Config{Arch: "x86", GroupFragments: true})
	defer k.Close()
	f, stop, p1, p2 := forwarderInNetns(t, ns, k)
	defer stop()
	wIn, wOut := freeUDP(t), freeUDP(t)
	in := &traffic.Link{GuestSock: hypervisorLink(t, p1, wIn), HostSock: wIn, GuestMAC: f.inMAC, HostMAC: neighInMAC,
		GuestIP: fwdInAddr, HostIP: fwdSrc.Addr()}
	out := &traffic.Link{GuestSock: hypervisorLink(t, p2, wOut), HostSock: wOut, GuestMAC: f.outMAC, HostMAC: neighOutMAC,
		GuestIP: fwdOutAddr, HostIP: fwdDst.Addr()}
	to := traffic.Addrs{ForwardIn: in, ForwardOut: out, Forward: fwdDst}
	spec := traffic.Spec{Profile: traffic.FragmentForward, Rate: 2000, MaxPackets: 200}

	c, err := traffic.Run(context.Background(), spec, to, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 200 || c.ForwardedDatagrams != 200 || c.ForwardedFrames != 600 || c.ForwardedBytes != 200*4000 {
		t.Fatalf("open path: sent %d, forwarded %d datagrams (%d frames, %d bytes); want 200, 200 (600, 800000)\nforwarder %+v",
			c.Packets, c.ForwardedDatagrams, c.ForwardedFrames, c.ForwardedBytes, f.Stats())
	}
	if tot := k.totals()[LayerForward]; tot.Chains != 800 || tot.NBLs != 1200 || tot.Leaked != 0 {
		t.Fatalf("open path: forward layer %+v", tot)
	}

	if err := k.StartDriver(DriverConfig{ForwardPrefix: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}
	c, err = traffic.Run(context.Background(), spec, to, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 200 || c.ForwardedDatagrams != 0 || c.ForwardedFrames != 0 {
		t.Errorf("blocked path: sent %d, forwarded %d datagrams (%d frames); want 200, 0", c.Packets, c.ForwardedDatagrams, c.ForwardedFrames)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && k.totals()[LayerForward].Chains < 1600 {
		time.Sleep(10 * time.Millisecond)
	}
	if tot := k.totals()[LayerForward]; tot.Chains != 1600 || tot.Blocked != 200 || tot.Leaked != 200 || tot.LeakedBytes != 200*k.NBLBytes() {
		t.Errorf("blocked path: forward layer %+v, want 800 more indications, the 200 groups blocked and leaking", tot)
	}
}
