package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// net.exe: `net session` (which needs an elevated token: scripts use it to check for one) and
// `net start NAME`. Errors go to stderr with net's "System error N has occurred." or its
// NET HELPMSG hint, exit code 2.

func netHelp(p *cmdexe.Process, msg string, n int) int {
	fmt.Fprintf(p.Stderr, "%s\r\n\r\nMore help is available by typing NET HELPMSG %d.\r\n\r\n", msg, n)
	return 2
}

func netDenied(p *cmdexe.Process) int {
	fmt.Fprint(p.Stderr, "System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n")
	return 2
}

func (g *Machine) netExe(_ context.Context, b *boot, p *cmdexe.Process) int {
	if len(p.Args) == 0 {
		fmt.Fprint(p.Stdout, "The syntax of this command is:\r\n\r\nNET\r\n    [ ACCOUNTS | COMPUTER | CONFIG | CONTINUE | FILE | GROUP | HELP |\r\n      HELPMSG | LOCALGROUP | PAUSE | SESSION | SHARE | START |\r\n      STATISTICS | STOP | TIME | USE | USER | VIEW ]\r\n")
		return 1
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch strings.ToLower(p.Args[0]) {
	case "session", "sessions", "sess":
		if !g.elevatedLocked() {
			return netDenied(p)
		}
		fmt.Fprint(p.Stdout, "There are no entries in the list.\r\n\r\n")
		return 0
	case "start":
		if len(p.Args) < 2 {
			fmt.Fprint(p.Stdout, "These Windows services are started:\r\n\r\n")
			for _, s := range g.svcs {
				if g.runningLocked(b, s) {
					fmt.Fprintf(p.Stdout, "   %s\r\n", s.display)
				}
			}
			fmt.Fprint(p.Stdout, "\r\nThe command completed successfully.\r\n\r\n")
			return 0
		}
		name := strings.Join(p.Args[1:], " ")
		var s *service
		for _, c := range g.svcs {
			if strings.EqualFold(c.name, name) || strings.EqualFold(c.display, name) {
				s = c
			}
		}
		switch {
		case s == nil:
			return netHelp(p, "The service name is invalid.", 2185)
		case !g.elevatedLocked():
			return netDenied(p)
		case g.runningLocked(b, s):
			return netHelp(p, "The requested service has already been started.", 2182)
		case s.start == startDisabled:
			fmt.Fprint(p.Stderr, "System error 1058 has occurred.\r\n\r\n"+win32Text[1058]+"\r\n\r\n")
			return 2
		}
		if s.typ == svcKernelDriver || s.typ == svcFSDriver {
			if code := g.loadDriverLocked(b, s); code != 0 {
				fmt.Fprintf(p.Stderr, "System error %d has occurred.\r\n\r\n%s\r\n\r\n", code, win32Text[code])
				return 2
			}
		} else {
			b.started[strings.ToLower(s.name)] = true
		}
		fmt.Fprintf(p.Stdout, "The %s service is starting.\r\nThe %s service was started successfully.\r\n\r\n", s.display, s.display)
		return 0
	}
	fmt.Fprintf(p.Stderr, "wfplab simulated guest: net %s is not modelled (session and start are).\r\n", p.Args[0])
	return 1
}
