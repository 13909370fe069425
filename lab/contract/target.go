package contract

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Endpoint is how to reach a guest's WinRM service.
type Endpoint struct {
	Host     string
	Port     int
	HTTPS    bool
	Insecure bool   // skip TLS verification (self-signed guest certificates)
	CACert   []byte // PEM, optional
	// Auth is the HTTP authentication: AuthBasic ("" too) or AuthNTLM.
	Auth string
}

// WinRM authentication schemes of Endpoint.Auth.
const (
	AuthBasic = "basic" // Authorization: Basic on every request
	AuthNTLM  = "ntlm"  // NTLMv2 under Negotiate, once per connection, no message sealing
)

// AuthSchemes are Endpoint.Auth's values, for validation messages.
var AuthSchemes = []string{AuthBasic, AuthNTLM}

func (e Endpoint) String() string {
	scheme := "http"
	if e.HTTPS {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/wsman", scheme, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)))
}

// Credentials are the guest account. The password never appears in logs, errors or the store.
type Credentials struct {
	User     string
	Password string
}

// String keeps the password out of anything that formats credentials.
func (c Credentials) String() string { return c.User + ":<redacted>" }

// GoString does the same for %#v.
func (c Credentials) GoString() string { return c.String() }

// TrafficAddrs tells the traffic generator where each path goes, and the driver what to block.
type TrafficAddrs struct {
	// Stream is the guest's TCP address; the driver blocks stream-layer data to its port.
	Stream netip.AddrPort
	// Forward is a UDP destination routed through the guest; the driver blocks IP fragment
	// groups on the forwarding path to ForwardPrefix.
	Forward       netip.AddrPort
	ForwardPrefix netip.Prefix
	// Control is the guest's UDP address for single-NBL traffic, blocked at inbound transport.
	Control netip.AddrPort
	// GuestStreamPort and GuestControlPort are the ports inside the guest when a hypervisor
	// forwards Stream and Control to them from other ports (QEMU's user-mode network); the
	// driver blocks these. 0: the same as Stream's and Control's.
	GuestStreamPort, GuestControlPort uint16
	// ForwardIn and ForwardOut, when a provider gives the guest two routed links (the qemu
	// provider's NICs 2 and 3), are those links: Prepare gives the guest its address on each
	// and turns IP forwarding on, and fragment-forward traffic goes in as Ethernet frames.
	// Both nil: the guest has none, and Forward is a plain UDP address.
	ForwardIn, ForwardOut *FrameLink
}

// FrameLink is one of the guest's routed links on the forward path: a NIC whose backend is a
// pair of UDP sockets on loopback carrying whole Ethernet frames (QEMU's dgram netdev).
// The addresses inside the frames exist only there.
type FrameLink struct {
	GuestSock netip.AddrPort   // the hypervisor's socket: a frame sent here enters the guest's NIC
	HostSock  netip.AddrPort   // wfplab's socket (wfplab binds it): what the NIC sends arrives here
	GuestMAC  net.HardwareAddr // the guest NIC's address; Prepare finds the NIC by it
	HostMAC   net.HardwareAddr // the neighbour wfplab plays on the link
	GuestIP   netip.Prefix     // the guest's address and the link's network, e.g. 198.51.100.1/24
	HostIP    netip.Addr       // the neighbour's address, e.g. 198.51.100.2
}

// Target is one guest a provider brought up.
type Target struct {
	Name     string // unique within a run, e.g. "win7-x64"
	OS       OS     // catalog entry the target claims to be; the lab checks it against the guest
	Endpoint Endpoint
	Creds    Credentials
	Traffic  TrafficAddrs
}

// Provider brings guests up and down. Up returns the targets that came up and a
// go-multierror with one entry per target that did not.
type Provider interface {
	Name() string
	Up(ctx context.Context) ([]Target, error)
	Down(ctx context.Context) error
}

// Evidence is what a hypervisor kept of a guest that stopped answering.
type Evidence struct {
	At          time.Time
	Status      string // the hypervisor's view of the machine, e.g. QMP's "running"
	ConsoleLog  string // path of the serial console log; "" when none
	ConsoleTail string // its last lines
	Screenshot  string // path of a PNG of the screen; "" when none
}

// Recoverer is a Provider that can reset a guest which stopped answering, keeping evidence
// of what the guest showed first. Providers without a hypervisor (static hosts) have none.
type Recoverer interface {
	Recover(ctx context.Context, target string) (Evidence, error)
}

// DriverPorts are the stream and control ports as the guest sees them: what its driver
// blocks.
func (t TrafficAddrs) DriverPorts() (stream, control uint16) {
	stream, control = t.Stream.Port(), t.Control.Port()
	if t.GuestStreamPort != 0 {
		stream = t.GuestStreamPort
	}
	if t.GuestControlPort != 0 {
		control = t.GuestControlPort
	}
	return stream, control
}
