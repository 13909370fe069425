package sim

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// Service types and start types as SCM numbers them.
const (
	svcKernelDriver = 1
	svcFSDriver     = 2
	svcOwnProcess   = 0x10
	svcShareProcess = 0x20

	startBoot     = 0
	startSystem   = 1
	startAuto     = 2
	startDemand   = 3
	startDisabled = 4
)

// service is one entry of the service database. Its running state belongs to the boot.
type service struct {
	name    string // as created
	display string
	typ     int
	start   int
	errCtl  int
	binPath string
	deleted bool // marked for deletion; removed when stopped or at the next boot
}

var (
	svcTypeNames = map[string]int{"own": svcOwnProcess, "share": svcShareProcess, "kernel": svcKernelDriver,
		"filesys": svcFSDriver, "rec": 8, "interact": svcOwnProcess}
	startNames = map[string]int{"boot": startBoot, "system": startSystem, "auto": startAuto,
		"demand": startDemand, "disabled": startDisabled, "delayed-auto": startAuto}
)

func typeLabel(t int) string {
	switch t {
	case svcKernelDriver:
		return "1  KERNEL_DRIVER  "
	case svcFSDriver:
		return "2  FILE_SYSTEM_DRIVER  "
	case svcShareProcess:
		return "20  WIN32_SHARE_PROCESS  "
	}
	return "10  WIN32_OWN_PROCESS  "
}

func startLabel(s int) string {
	return map[int]string{startBoot: "0   BOOT_START", startSystem: "1   SYSTEM_START", startAuto: "2   AUTO_START",
		startDemand: "3   DEMAND_START", startDisabled: "4   DISABLED"}[s]
}

// Win32 errors sc reports, with the message text FormatMessage gives (unexpanded inserts
// stay, as sc prints them).
var win32Text = map[int]string{
	2:    "The system cannot find the file specified.",
	5:    "Access is denied.",
	87:   "The parameter is incorrect.",
	193:  "%1 is not a valid Win32 application.",
	577:  "Windows cannot verify the digital signature for this file. A recent hardware or software change might have installed a file that is signed incorrectly or damaged, or that might be malicious software from an unknown source.",
	1053: "The service did not respond to the start or control request in a timely fashion.",
	1056: "An instance of the service is already running.",
	1058: "The service cannot be started, either because it is disabled or because it has no enabled devices associated with it.",
	1060: "The specified service does not exist as an installed service.",
	1062: "The service has not been started.",
	1072: "The specified service has been marked for deletion.",
	1073: "The specified service already exists.",
	1275: "This driver has been blocked from loading",
	1639: "Invalid command line argument. Consult the Windows Installer SDK for detailed command line help.",
}

func scFail(p *cmdexe.Process, what string, code int) int {
	fmt.Fprintf(p.Stdout, "[SC] %s FAILED %d:\r\n\r\n%s\r\n\r\n", what, code, win32Text[code])
	return code
}

// sc models sc.exe create, start, stop, query, qc and delete.
func (g *Machine) sc(_ context.Context, b *boot, p *cmdexe.Process) int {
	args := p.Args
	if len(args) > 0 && strings.HasPrefix(args[0], `\\`) {
		fmt.Fprintf(p.Stdout, "wfplab simulated guest: sc on a remote machine (%s) is not modelled.\r\n", args[0])
		return 1
	}
	if len(args) == 0 {
		fmt.Fprint(p.Stdout, "DESCRIPTION:\r\n        SC is a command line program used for communicating with the\r\n        Service Control Manager and services.\r\nUSAGE:\r\n        sc <server> [command] [service name] <option1> <option2>...\r\n")
		return 0
	}
	op := strings.ToLower(args[0])
	if op == "query" && len(args) == 1 {
		return g.scQueryAll(b, p)
	}
	if len(args) < 2 {
		fmt.Fprintf(p.Stdout, "DESCRIPTION:\r\n        sc %s requires a service name.\r\nUSAGE:\r\n        sc <server> %s [service name] ...\r\n", op, op)
		return 1639
	}
	name := args[1]
	if op != "query" && op != "queryex" && op != "qc" {
		if !g.elevated() {
			return scFail(p, "OpenSCManager", 5)
		}
	}
	switch op {
	case "config":
		return g.scConfig(p, name, args[2:])
	case "create":
		return g.scCreate(p, name, args[2:])
	case "start":
		return g.scStart(b, p, name)
	case "stop":
		return g.scStop(b, p, name)
	case "query", "queryex":
		return g.scQuery(b, p, name)
	case "qc":
		return g.scQC(p, name)
	case "delete":
		return g.scDelete(b, p, name)
	}
	fmt.Fprintf(p.Stdout, "wfplab simulated guest: sc %s is not modelled (create, config, start, stop, query, qc, delete are).\r\n", op)
	return 1
}

func (g *Machine) scCreate(p *cmdexe.Process, name string, opts []string) int {
	s := &service{name: name, display: name, typ: svcOwnProcess, start: startDemand, errCtl: 1}
	usage := func() int {
		fmt.Fprint(p.Stdout, "DESCRIPTION:\r\n        Creates a service entry in the registry and Service Database.\r\nUSAGE:\r\n"+
			"        sc <server> create [service name] [binPath= ] <option1> <option2>...\r\n\r\nOPTIONS:\r\n"+
			"NOTE: The option name includes the equal sign.\r\n      A space is required between the equal sign and the value.\r\n")
		return 1639
	}
	hasBin := false
	for i := 0; i < len(opts); i += 2 {
		key := strings.ToLower(opts[i])
		if !strings.HasSuffix(key, "=") || i+1 >= len(opts) {
			return usage()
		}
		val := opts[i+1]
		switch key {
		case "type=":
			t, ok := svcTypeNames[strings.ToLower(val)]
			if !ok {
				return usage()
			}
			s.typ = t
		case "start=":
			st, ok := startNames[strings.ToLower(val)]
			if !ok {
				return usage()
			}
			s.start = st
		case "error=":
			s.errCtl = map[string]int{"ignore": 0, "normal": 1, "severe": 2, "critical": 3}[strings.ToLower(val)]
		case "binpath=":
			s.binPath, hasBin = val, true
		case "displayname=":
			s.display = val
		case "group=", "tag=", "depend=", "obj=", "password=":
		default:
			return usage()
		}
	}
	if !hasBin {
		return usage()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.svcs[strings.ToLower(name)]; ok {
		if old.deleted {
			return scFail(p, "CreateService", 1072)
		}
		return scFail(p, "CreateService", 1073)
	}
	g.svcs[strings.ToLower(name)] = s
	g.writeServiceKey(s)
	fmt.Fprint(p.Stdout, "[SC] CreateService SUCCESS\r\n")
	return 0
}

// elevatedLocked: the WinRM user holds an administrator's full token; g.mu is held.
func (g *Machine) elevatedLocked() bool { return !g.cfg.Unelevated }

// elevated is elevatedLocked for callers that do not hold g.mu.
func (g *Machine) elevated() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.elevatedLocked()
}

// runningLocked: the service runs in boot b (a driver loaded, or a user-mode service
// started); g.mu is held.
func (g *Machine) runningLocked(b *boot, s *service) bool {
	if s.typ == svcKernelDriver || s.typ == svcFSDriver {
		return b.driverOwner == strings.ToLower(s.name)
	}
	return b.started[strings.ToLower(s.name)]
}

// scConfig is `sc config NAME option= value ...` (start=, type=, error=, binPath=,
// DisplayName=; the others are accepted and not kept).
func (g *Machine) scConfig(p *cmdexe.Process, name string, opts []string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	if !ok {
		return scFail(p, "OpenService", 1060)
	}
	next := *s
	if len(opts) == 0 || len(opts)%2 != 0 {
		fmt.Fprint(p.Stdout, "DESCRIPTION:\r\n        Modifies a service entry in the registry and Service Database.\r\nUSAGE:\r\n        sc <server> config [service name] <option1> <option2>...\r\n")
		return 1639
	}
	for i := 0; i < len(opts); i += 2 {
		val := opts[i+1]
		switch strings.ToLower(opts[i]) {
		case "start=":
			st, ok := startNames[strings.ToLower(val)]
			if !ok {
				return scFail(p, "ChangeServiceConfig", 87)
			}
			next.start = st
		case "type=":
			t, ok := svcTypeNames[strings.ToLower(val)]
			if !ok {
				return scFail(p, "ChangeServiceConfig", 87)
			}
			next.typ = t
		case "error=":
			e, ok := map[string]int{"ignore": 0, "normal": 1, "severe": 2, "critical": 3}[strings.ToLower(val)]
			if !ok {
				return scFail(p, "ChangeServiceConfig", 87)
			}
			next.errCtl = e
		case "binpath=":
			next.binPath = val
		case "displayname=":
			next.display = val
		case "group=", "tag=", "depend=", "obj=", "password=":
		default:
			fmt.Fprintf(p.Stdout, "[SC] ChangeServiceConfig: unknown option %s\r\n", opts[i])
			return 1639
		}
	}
	if s.deleted {
		return scFail(p, "ChangeServiceConfig", 1072)
	}
	*s = next
	g.writeServiceKey(s)
	fmt.Fprint(p.Stdout, "[SC] ChangeServiceConfig SUCCESS\r\n")
	return 0
}

// writeServiceKey writes a service's configuration to its registry key, as SCM keeps it.
func (g *Machine) writeServiceKey(s *service) {
	key := servicesKey + `\` + s.name
	g.reg.set(key, "Type", regDWORD, uint32(s.typ))
	g.reg.set(key, "Start", regDWORD, uint32(s.start))
	g.reg.set(key, "ErrorControl", regDWORD, uint32(s.errCtl))
	g.reg.set(key, "ImagePath", regExpandSZ, s.imagePath())
	g.reg.set(key, "DisplayName", regSZ, s.display)
}

// imagePath is the path as SCM stores it: a driver's full DOS path becomes an NT path.
func (s *service) imagePath() string {
	if s.typ <= svcFSDriver && len(s.binPath) > 2 && s.binPath[1] == ':' {
		return `\??\` + s.binPath
	}
	return s.binPath
}

// imageFile resolves a driver's image path to a file of the simulated disk.
func (s *service) imageFile() string {
	p := strings.Trim(s.binPath, `"`)
	lower := asciiLower(p)
	switch {
	case strings.HasPrefix(lower, `\??\`):
		p = p[4:]
	case strings.HasPrefix(lower, `\systemroot\`):
		p = `C:\Windows\` + p[len(`\systemroot\`):]
	case strings.HasPrefix(lower, `system32\`):
		p = `C:\Windows\` + p
	}
	abs, err := cmdexe.Abs(sys32, p)
	if err != nil {
		return p
	}
	return abs
}

func (g *Machine) scStart(b *boot, p *cmdexe.Process, name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	switch {
	case !ok:
		return scFail(p, "StartService: OpenService", 1060)
	case s.deleted:
		return scFail(p, "StartService", 1072)
	case s.start == startDisabled:
		return scFail(p, "StartService", 1058)
	case g.runningLocked(b, s):
		return scFail(p, "StartService", 1056)
	}
	if code := g.loadDriverLocked(b, s); code != 0 {
		return scFail(p, "StartService", code)
	}
	g.writeServiceBlock(p, b, s, true)
	return 0
}

// loadDriverLocked loads a kernel service's image as the kernel would and, if it loads,
// starts the model's callout driver with the parameters in the service's Parameters key.
// The model has one callout driver: every kernel service is it, one at a time.
func (g *Machine) loadDriverLocked(b *boot, s *service) int {
	if s.typ != svcKernelDriver && s.typ != svcFSDriver {
		return 1053 // user-mode services are not modelled: they never report running
	}
	data, err := g.fs.ReadFile(s.imageFile())
	if err != nil {
		return 2
	}
	img, err := inspectPE(data)
	want := uint16(machineI386)
	if g.os.Arch == "x64" {
		want = machineAMD64
	}
	if err != nil || img.machine != want {
		return 193
	}
	// x64 kernels enforce signing; a test signature counts only in test-signing mode, and
	// the model takes every signature for a test signature.
	if g.os.Arch == "x64" && (!img.signed || !b.testSigning) {
		return 577
	}
	if b.driverOwner != "" {
		return 1275
	}
	if err := b.kern.StartDriver(g.driverConfig(s.name)); err != nil {
		return 1056
	}
	b.driverOwner = strings.ToLower(s.name)
	b.started[strings.ToLower(s.name)] = true
	return 0
}

// driverConfig reads StreamPort, ControlPort (REG_DWORD) and ForwardPrefix (REG_SZ) from the
// service's Parameters key, as the driver does in DriverEntry. Missing or malformed values
// leave that path unfiltered.
func (g *Machine) driverConfig(name string) kernel.DriverConfig {
	key := servicesKey + `\` + name + `\Parameters`
	var dc kernel.DriverConfig
	if v, ok := g.reg.dword(key, "StreamPort"); ok && v <= 0xffff {
		dc.StreamPort = uint16(v)
	}
	if v, ok := g.reg.dword(key, "ControlPort"); ok && v <= 0xffff {
		dc.ControlPort = uint16(v)
	}
	if v, ok := g.reg.text(key, "ForwardPrefix"); ok {
		if pfx, err := netip.ParsePrefix(strings.TrimSpace(v)); err == nil {
			dc.ForwardPrefix = pfx.Masked()
		}
	}
	return dc
}

// startBootDrivers starts the boot-, system- and auto-start drivers of a new boot; a driver
// that fails to load stays stopped, as Windows logs and goes on.
func (g *Machine) startBootDrivers(b *boot) {
	for _, s := range g.svcs {
		if s.start <= startAuto && (s.typ == svcKernelDriver || s.typ == svcFSDriver) {
			if code := g.loadDriverLocked(b, s); code != 0 {
				g.logf("boot-start driver %s did not load (error %d)", s.name, code)
			}
		}
	}
}

func (g *Machine) scStop(b *boot, p *cmdexe.Process, name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	if !ok {
		return scFail(p, "OpenService", 1060)
	}
	if b.driverOwner != strings.ToLower(s.name) {
		return scFail(p, "ControlService", 1062)
	}
	_ = b.kern.StopDriver()
	b.driverOwner = ""
	g.writeServiceBlock(p, b, s, false)
	if s.deleted {
		delete(g.svcs, strings.ToLower(s.name))
		g.reg.deleteTree(servicesKey + `\` + s.name)
	}
	return 0
}

func (g *Machine) scQuery(b *boot, p *cmdexe.Process, name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	if !ok {
		return scFail(p, "EnumQueryServicesStatus:OpenService", 1060)
	}
	g.writeServiceBlock(p, b, s, false)
	return 0
}

func (g *Machine) scQueryAll(b *boot, p *cmdexe.Process) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.svcs {
		g.writeServiceBlock(p, b, s, false)
	}
	return 0
}

func (g *Machine) scQC(p *cmdexe.Process, name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	if !ok {
		return scFail(p, "OpenService", 1060)
	}
	fmt.Fprintf(p.Stdout, "[SC] QueryServiceConfig SUCCESS\r\n\r\nSERVICE_NAME: %s\r\n", s.name)
	fmt.Fprintf(p.Stdout, "        TYPE               : %s\r\n", typeLabel(s.typ))
	fmt.Fprintf(p.Stdout, "        START_TYPE         : %s\r\n", startLabel(s.start))
	fmt.Fprintf(p.Stdout, "        ERROR_CONTROL      : %d   %s\r\n", s.errCtl,
		map[int]string{0: "IGNORE", 1: "NORMAL", 2: "SEVERE", 3: "CRITICAL"}[s.errCtl])
	fmt.Fprintf(p.Stdout, "        BINARY_PATH_NAME   : %s\r\n", s.imagePath())
	fmt.Fprint(p.Stdout, "        LOAD_ORDER_GROUP   : \r\n        TAG                : 0\r\n")
	fmt.Fprintf(p.Stdout, "        DISPLAY_NAME       : %s\r\n", s.display)
	fmt.Fprint(p.Stdout, "        DEPENDENCIES       : \r\n        SERVICE_START_NAME : \r\n")
	return 0
}

func (g *Machine) scDelete(b *boot, p *cmdexe.Process, name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	if !ok {
		return scFail(p, "OpenService", 1060)
	}
	if s.deleted {
		return scFail(p, "DeleteService", 1072)
	}
	if b.driverOwner == strings.ToLower(s.name) {
		s.deleted = true // goes when it stops or at the next boot
	} else {
		delete(g.svcs, strings.ToLower(s.name))
		g.reg.deleteTree(servicesKey + `\` + s.name)
	}
	fmt.Fprint(p.Stdout, "[SC] DeleteService SUCCESS\r\n")
	return 0
}

// writeServiceBlock prints sc's SERVICE_NAME block; withPID adds the PID and FLAGS lines
// sc start prints.
func (g *Machine) writeServiceBlock(p *cmdexe.Process, b *boot, s *service, withPID bool) {
	running := g.runningLocked(b, s)
	fmt.Fprintf(p.Stdout, "\r\nSERVICE_NAME: %s \r\n", s.name)
	fmt.Fprintf(p.Stdout, "        TYPE               : %s\r\n", typeLabel(s.typ))
	exit := 0
	if running {
		fmt.Fprint(p.Stdout, "        STATE              : 4  RUNNING \r\n")
		if s.typ == svcKernelDriver || s.typ == svcFSDriver {
			fmt.Fprint(p.Stdout, "                                (STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n")
		} else {
			fmt.Fprint(p.Stdout, "                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n")
		}
	} else {
		fmt.Fprint(p.Stdout, "        STATE              : 1  STOPPED \r\n")
		if !b.started[strings.ToLower(s.name)] {
			exit = 1077 // ERROR_SERVICE_NEVER_STARTED
		}
	}
	fmt.Fprintf(p.Stdout, "        WIN32_EXIT_CODE    : %d  (0x%x)\r\n", exit, exit)
	fmt.Fprint(p.Stdout, "        SERVICE_EXIT_CODE  : 0  (0x0)\r\n")
	fmt.Fprint(p.Stdout, "        CHECKPOINT         : 0x0\r\n")
	fmt.Fprint(p.Stdout, "        WAIT_HINT          : 0x0\r\n")
	if withPID {
		fmt.Fprint(p.Stdout, "        PID                : 0\r\n")
		fmt.Fprint(p.Stdout, "        FLAGS              : \r\n")
	}
}

// serviceState is the agent's drv_service value for a service name.
func (g *Machine) serviceState(b *boot, name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.svcs[strings.ToLower(name)]
	switch {
	case !ok:
		return "absent"
	case b.driverOwner == strings.ToLower(s.name):
		return "running"
	}
	return "stopped"
}
