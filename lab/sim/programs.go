package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// program is a Windows program the simulated guest implements.
type program func(g *Machine, ctx context.Context, b *boot, p *cmdexe.Process) int

const sys32 = `C:\Windows\System32`

// programs maps the full path of each system program to its model.
var programs = map[string]program{}

func init() {
	for name, fn := range map[string]program{
		`cmd.exe`:       (*Machine).cmd,
		`sc.exe`:        (*Machine).sc,
		`reg.exe`:       (*Machine).regExe,
		`certutil.exe`:  (*Machine).certutil,
		`wusa.exe`:      (*Machine).wusa,
		`shutdown.exe`:  (*Machine).shutdownExe,
		`bcdedit.exe`:   (*Machine).bcdedit,
		`hostname.exe`:  (*Machine).hostnameExe,
		`getmac.exe`:    (*Machine).getmac,
		`netsh.exe`:     (*Machine).netsh,
		`schtasks.exe`:  (*Machine).schtasks,
		`wbem\WMIC.exe`: (*Machine).wmic,
		`cscript.exe`:   (*Machine).cscript,
		`net.exe`:       (*Machine).netExe,
		`find.exe`:      (*Machine).findExe,
		`findstr.exe`:   (*Machine).findstrExe,
	} {
		programs[sys32+`\`+name] = fn
	}
}

// agentName is the file name the lab's agent is uploaded as; any uploaded copy of it runs the
// simulated agent.
const agentName = "wfplab-agent.exe"

// exec runs a program file a command line named.
func (g *Machine) exec(ctx context.Context, b *boot, p *cmdexe.Process) int {
	for path, fn := range programs {
		if strings.EqualFold(path, p.Path) {
			return fn(g, ctx, b, p)
		}
	}
	if code, ok := g.checkExecutable(p); !ok {
		return code
	}
	if strings.EqualFold(cmdexe.Base(p.Path), agentName) {
		return g.agent(ctx, b, p)
	}
	fmt.Fprintf(p.Stderr, "wfplab simulated guest: %s is a valid program, but the model runs only %s and the system tools the lab uses.\r\n", p.Path, agentName)
	return 1
}

// checkExecutable loads a program image as CreateProcess would: a PE file whose machine type
// the OS runs (x86 programs run on x64 through WOW64).
func (g *Machine) checkExecutable(p *cmdexe.Process) (int, bool) {
	data, err := g.fs.ReadFile(p.Path)
	if err != nil {
		fmt.Fprintf(p.Stderr, "Access is denied.\r\n")
		return 5, false
	}
	img, err := inspectPE(data)
	if err != nil {
		fmt.Fprintf(p.Stderr, "%s is not a valid Win32 application.\r\n", p.Path)
		return 193, false
	}
	if img.machine != machineI386 && !(img.machine == machineAMD64 && g.os.Arch == "x64") {
		fmt.Fprintf(p.Stderr, "This version of %s is not compatible with the version of Windows you're running. "+
			"Check your computer's system information to see whether you need a x86 (32-bit) or x64 (64-bit) version of the program, "+
			"and then contact the software publisher.\r\n", p.Path)
		return 216, false
	}
	return 0, true
}

// cmd is `cmd /c LINE` (and /k, which ends as /c here: there is no console): a new cmd.exe
// with the environment and folder of the one that started it.
func (g *Machine) cmd(ctx context.Context, b *boot, p *cmdexe.Process) int {
	line := p.Tail
	lower := asciiLower(line) // byte offsets must stay those of line
	i := strings.Index(lower, "/c")
	if j := strings.Index(lower, "/k"); i < 0 || (j >= 0 && j < i) {
		i = j
	}
	if i < 0 {
		fmt.Fprintf(p.Stdout, "Microsoft Windows [Version %s]\r\n", g.verString())
		return 0
	}
	inner := strings.TrimSpace(line[i+2:])
	if len(inner) >= 2 && inner[0] == '"' && inner[len(inner)-1] == '"' {
		inner = inner[1 : len(inner)-1]
	}
	in := g.interp(b)
	if p.Env != nil {
		in.Env = p.Env
	}
	if p.Cwd != "" {
		in.Cwd = p.Cwd
	}
	return in.Run(ctx, inner, p.Stdin, p.Stdout, p.Stderr)
}

func (g *Machine) hostnameExe(_ context.Context, _ *boot, p *cmdexe.Process) int {
	if len(p.Args) > 0 {
		fmt.Fprint(p.Stderr, "sethostname: Use the Network Control Panel Applet to set hostname.\r\n")
		return 1
	}
	fmt.Fprintf(p.Stdout, "%s\r\n", g.hostname)
	return 0
}

// bcdedit models `/set [{current}] testsigning on|off` and `/enum`.
func (g *Machine) bcdedit(_ context.Context, b *boot, p *cmdexe.Process) int {
	args := p.Args
	if len(args) == 0 || strings.EqualFold(args[0], "/enum") {
		g.mu.Lock()
		ts := g.bcdTestSigning
		g.mu.Unlock()
		fmt.Fprint(p.Stdout, "\r\nWindows Boot Loader\r\n-------------------\r\n")
		fmt.Fprint(p.Stdout, "identifier              {current}\r\n")
		fmt.Fprint(p.Stdout, "device                  partition=C:\r\n")
		fmt.Fprint(p.Stdout, "path                    \\Windows\\system32\\winload.exe\r\n")
		fmt.Fprintf(p.Stdout, "description             %s\r\n", g.os.Product)
		if ts {
			fmt.Fprint(p.Stdout, "testsigning             Yes\r\n")
		}
		fmt.Fprint(p.Stdout, "osdevice                partition=C:\r\n")
		fmt.Fprint(p.Stdout, "systemroot              \\Windows\r\n")
		return 0
	}
	if !g.elevated() {
		fmt.Fprint(p.Stderr, "The boot configuration data store could not be opened.\r\nAccess is denied.\r\n")
		return 1
	}
	if !strings.EqualFold(args[0], "/set") {
		fmt.Fprint(p.Stderr, "The parameter is incorrect.\r\nRun \"bcdedit /?\" for command line assistance.\r\n")
		return 1
	}
	args = args[1:]
	if len(args) > 0 && strings.HasPrefix(args[0], "{") {
		if !strings.EqualFold(args[0], "{current}") && !strings.EqualFold(args[0], "{default}") {
			fmt.Fprint(p.Stderr, "An error occurred while attempting to reference the specified entry.\r\nThe system cannot find the file specified.\r\n")
			return 1
		}
		args = args[1:]
	}
	if len(args) != 2 {
		fmt.Fprint(p.Stderr, "The set command specified is not valid.\r\nRun \"bcdedit /?\" for command line assistance.\r\nThe parameter is incorrect.\r\n")
		return 1
	}
	if !strings.EqualFold(args[0], "testsigning") {
		fmt.Fprintf(p.Stderr, "wfplab simulated guest: the boot option %q is not modelled (only testsigning is).\r\n", args[0])
		return 1
	}
	var on bool
	switch strings.ToLower(args[1]) {
	case "on", "yes", "true":
		on = true
	case "off", "no", "false":
	default:
		fmt.Fprint(p.Stderr, "The integer data is not valid as specified.\r\nRun \"bcdedit /?\" for command line assistance.\r\nThe parameter is incorrect.\r\n")
		return 1
	}
	g.mu.Lock()
	g.bcdTestSigning = on
	g.mu.Unlock()
	fmt.Fprint(p.Stdout, "The operation completed successfully.\r\n")
	return 0
}

// shutdownExe models /r /s /p /a with /t and /f.
func (g *Machine) shutdownExe(_ context.Context, b *boot, p *cmdexe.Process) int {
	var reboot, off, abort bool
	delay := 30 // Windows' default for /r and /s
	for i := 0; i < len(p.Args); i++ {
		a := strings.ToLower(p.Args[i])
		if strings.HasPrefix(a, "-") {
			a = "/" + a[1:]
		}
		switch a {
		case "/r", "/g":
			reboot = true
		case "/s", "/p":
			off = true
			if a == "/p" {
				delay = 0
			}
		case "/a":
			abort = true
		case "/f", "/hybrid":
		case "/t":
			if i+1 >= len(p.Args) {
				return shutdownUsage(p)
			}
			i++
			n, ok := parseUint(p.Args[i])
			if !ok || n > 315360000 {
				return shutdownUsage(p)
			}
			delay = int(n)
		case "/c", "/d":
			i++ // comment or reason: accepted, not kept
		default:
			return shutdownUsage(p)
		}
	}
	var code int
	switch {
	case abort:
		code = g.abortShutdown()
	case reboot || off:
		code = g.requestShutdown(b, secondsDur(delay), reboot)
	default:
		return shutdownUsage(p)
	}
	switch code {
	case 0:
		return 0
	case 1115:
		fmt.Fprintf(p.Stderr, "%s: A system shutdown is in progress.(1115)\r\n", g.hostname)
	case 1116:
		fmt.Fprintf(p.Stderr, "%s: Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n", g.hostname)
	case 1190:
		fmt.Fprintf(p.Stderr, "%s: A system shutdown has already been scheduled.(1190)\r\n", g.hostname)
	}
	return code
}

func shutdownUsage(p *cmdexe.Process) int {
	fmt.Fprint(p.Stdout, "Usage: shutdown [/i | /l | /s | /r | /g | /a | /p | /h | /e] [/f]\r\n    [/m \\\\computer][/t xxx][/d [p|u:]xx:yy [/c \"comment\"]]\r\n")
	return 87 // ERROR_INVALID_PARAMETER
}

// asciiLower lowers ASCII letters only, keeping byte offsets.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
