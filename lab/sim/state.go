package sim

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// What a Windows machine keeps across a power cycle: its disk, registry, service database,
// boot configuration and installed updates. Pool, driver running state and samplers belong
// to a boot and are not part of it. SaveState and LoadState carry it to and from a state disk
// (the appliance's /dev/vda); the in-process guest keeps it in memory and needs neither.

// stateVersion changes whenever savedState changes shape.
const stateVersion = 2

type savedState struct {
	Version     int
	Name, OS    string // a state belongs to one guest of one catalog OS
	Files       []cmdexe.MemEntry
	Registry    []savedKey
	Services    []savedService
	TestSigning bool
	Versions    savedVersions
	Pending     *savedVersions
	HotfixDone  bool
	Certs       []savedCert
	NICs        []savedNIC // what netsh set, which Windows keeps across a reboot
	WinRM       []savedWinRMProp
	Listeners   []savedListener
	Firewall    []savedRule
	LoopFwd     bool
	// GroupFragments is netsh's groupforwardedfragments, a global setting Windows keeps.
	GroupFragments bool
}

// savedWinRMProp is one WinRM configuration property by its path ("Service/Auth/Basic").
type savedWinRMProp struct{ Path, Value string }

type savedListener struct {
	Address, Transport string
	Port               int
}

type savedRule struct {
	Name, Dir, Action, Protocol, LocalPort string
	Enabled                                bool
}

// savedNIC is one adapter's configuration, found again by its MAC address.
type savedNIC struct {
	MAC        string
	Addr       string // netip.Prefix text; "" while DHCP
	Forwarding bool
}

type savedCert struct {
	Store string
	Thumb [20]byte
	Name  string
}

type savedVersions struct{ Netio, Tcpip, Fwpkclnt string }

func saveVersions(v fileVersions) savedVersions { return savedVersions{v.netio, v.tcpip, v.fwpkclnt} }

func (v savedVersions) versions() fileVersions { return fileVersions{v.Netio, v.Tcpip, v.Fwpkclnt} }

type savedKey struct {
	Path   string
	Values []savedValue // in creation order
}

type savedValue struct {
	Name, Type, Str string
	Num             uint64
	Bin             []byte
	Multi           []string
}

type savedService struct {
	Name, Display, BinPath string
	Type, Start, ErrCtl    int
	Deleted                bool
}

// SaveState encodes the guest's persistent state (gob), the same bytes for the same state.
// Safe to call while the guest runs.
func (g *Machine) SaveState() ([]byte, error) {
	s := savedState{Version: stateVersion, Name: g.name, OS: g.os.Name, Files: g.fs.Entries()}
	g.reg.mu.Lock()
	for _, k := range g.reg.keys {
		sk := savedKey{Path: k.path}
		for _, ln := range k.order {
			v, ok := k.values[ln]
			if !ok {
				continue
			}
			sk.Values = append(sk.Values, savedValue{Name: v.name, Type: v.typ, Str: v.str, Num: v.num, Bin: v.bin, Multi: v.multi})
		}
		s.Registry = append(s.Registry, sk)
	}
	g.reg.mu.Unlock()
	sort.Slice(s.Registry, func(i, j int) bool { return s.Registry[i].Path < s.Registry[j].Path })

	g.mu.Lock()
	for _, sv := range g.svcs {
		s.Services = append(s.Services, savedService{Name: sv.name, Display: sv.display, BinPath: sv.binPath,
			Type: sv.typ, Start: sv.start, ErrCtl: sv.errCtl, Deleted: sv.deleted})
	}
	s.TestSigning = g.bcdTestSigning
	s.Versions = saveVersions(g.files)
	if g.pendingFiles != nil {
		p := saveVersions(*g.pendingFiles)
		s.Pending = &p
	}
	s.HotfixDone = g.hotfixDone
	for _, n := range g.nics {
		sn := savedNIC{MAC: n.MAC.String(), Forwarding: n.Forwarding}
		if n.Addr.IsValid() {
			sn.Addr = n.Addr.String()
		}
		s.NICs = append(s.NICs, sn)
	}
	for store, certs := range g.stores {
		for thumb, name := range certs {
			s.Certs = append(s.Certs, savedCert{store, thumb, name})
		}
	}
	g.wcfg.root.walk("", func(path string, p *winrmProp) { s.WinRM = append(s.WinRM, savedWinRMProp{path, p.value}) })
	for _, l := range g.wcfg.listeners {
		s.Listeners = append(s.Listeners, savedListener{l.address, l.transport, l.port})
	}
	for _, r := range g.fw {
		s.Firewall = append(s.Firewall, savedRule{r.name, r.dir, r.action, r.protocol, r.localPort, r.enabled})
	}
	s.LoopFwd = g.loopFwd
	s.GroupFragments = g.groupFrags
	g.mu.Unlock()
	// Sorted, so an unchanged machine encodes to the same bytes and the appliance skips the write.
	sort.Slice(s.Services, func(i, j int) bool { return s.Services[i].Name < s.Services[j].Name })
	sort.Slice(s.Certs, func(i, j int) bool {
		a, b := s.Certs[i], s.Certs[j]
		return a.Store < b.Store || a.Store == b.Store && bytes.Compare(a.Thumb[:], b.Thumb[:]) < 0
	})
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&s); err != nil {
		return nil, fmt.Errorf("sim: guest %s: encoding its state: %w", g.name, err)
	}
	return buf.Bytes(), nil
}

// LoadState replaces the guest's persistent state with one SaveState made, before Start. A
// state of another guest or OS, or of another format version, is refused and nothing changes.
func (g *Machine) LoadState(data []byte) error {
	var s savedState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return fmt.Errorf("sim: guest %s: decoding saved state: %w", g.name, err)
	}
	switch {
	case s.Version != stateVersion:
		return fmt.Errorf("sim: guest %s: saved state has format %d, this wfplab reads %d", g.name, s.Version, stateVersion)
	case s.Name != g.name || !strings.EqualFold(s.OS, g.os.Name):
		return fmt.Errorf("sim: guest %s (%s): saved state belongs to guest %s (%s)", g.name, g.os.Name, s.Name, s.OS)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.boots > 0 {
		return fmt.Errorf("sim: guest %s: LoadState after Start", g.name)
	}
	if err := g.fs.Load(s.Files); err != nil {
		return fmt.Errorf("sim: guest %s: saved disk: %w", g.name, err)
	}
	keys := make(map[string]*regKey, len(s.Registry))
	for _, sk := range s.Registry {
		k := &regKey{path: sk.Path, values: map[string]*regValue{}}
		for _, v := range sk.Values {
			k.put(&regValue{name: v.Name, typ: v.Type, str: v.Str, num: v.Num, bin: v.Bin, multi: v.Multi})
		}
		keys[strings.ToLower(sk.Path)] = k
	}
	g.reg.mu.Lock()
	g.reg.keys = keys
	g.reg.mu.Unlock()
	g.svcs = make(map[string]*service, len(s.Services))
	for _, sv := range s.Services {
		g.svcs[strings.ToLower(sv.Name)] = &service{name: sv.Name, display: sv.Display, binPath: sv.BinPath,
			typ: sv.Type, start: sv.Start, errCtl: sv.ErrCtl, deleted: sv.Deleted}
	}
	g.bcdTestSigning = s.TestSigning
	g.files = s.Versions.versions()
	g.pendingFiles = nil
	if s.Pending != nil {
		p := s.Pending.versions()
		g.pendingFiles = &p
	}
	g.hotfixDone = s.HotfixDone
	for _, sn := range s.NICs {
		for _, n := range g.nics {
			if n.MAC.String() != sn.MAC {
				continue // an adapter the VM no longer has keeps nothing
			}
			n.Forwarding = sn.Forwarding
			if a, err := netip.ParsePrefix(sn.Addr); err == nil {
				n.Addr = a
			}
		}
	}
	saved := map[string]string{}
	for _, p := range s.WinRM {
		saved[p.Path] = p.Value
	}
	g.wcfg.root.walk("", func(path string, p *winrmProp) {
		if v, ok := saved[path]; ok {
			p.value = v
		}
	})
	g.wcfg.listeners = nil
	for _, l := range s.Listeners {
		g.wcfg.listeners = append(g.wcfg.listeners, winrmListener{l.Address, l.Transport, l.Port})
	}
	g.fw = nil
	for _, r := range s.Firewall {
		g.fw = append(g.fw, &fwRule{r.Name, r.Dir, r.Action, r.Protocol, r.LocalPort, r.Enabled})
	}
	g.loopFwd = s.LoopFwd
	g.groupFrags = s.GroupFragments
	g.stores = map[string]map[[20]byte]string{}
	for _, c := range s.Certs {
		if g.stores[c.Store] == nil {
			g.stores[c.Store] = map[[20]byte]string{}
		}
		g.stores[c.Store][c.Thumb] = c.Name
	}
	return nil
}
