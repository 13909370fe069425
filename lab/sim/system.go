package sim

import (
	"fmt"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// What a fresh install of the modelled Windows holds: environment, folders, system
// programs, driver files and registry keys.

// verString is what `ver` prints: major.minor.build.
func (g *Machine) verString() string {
	build, _, _ := strings.Cut(g.os.Build, ".")
	return g.os.Version + "." + build
}

func (g *Machine) userName() string {
	u := g.cfg.User
	if i := strings.LastIndexAny(u, `\@`); i >= 0 && u[i] == '\\' {
		u = u[i+1:]
	} else if i >= 0 {
		u = u[:i]
	}
	if u == "" {
		return "user"
	}
	return u
}

func (g *Machine) profileDir() string { return `C:\Users\` + g.userName() }

func (g *Machine) procArch() string {
	if g.os.Arch == "x64" {
		return "AMD64"
	}
	return "x86"
}

// environ is the environment of a WinRM cmd shell on the guest.
func (g *Machine) environ() map[string]string {
	prof := g.profileDir()
	cn := strings.ToUpper(g.hostname)
	env := map[string]string{
		"ALLUSERSPROFILE":        `C:\ProgramData`,
		"APPDATA":                prof + `\AppData\Roaming`,
		"CommonProgramFiles":     `C:\Program Files\Common Files`,
		"COMPUTERNAME":           cn,
		"ComSpec":                `C:\Windows\system32\cmd.exe`,
		"HOMEDRIVE":              `C:`,
		"HOMEPATH":               strings.TrimPrefix(prof, "C:"),
		"LOCALAPPDATA":           prof + `\AppData\Local`,
		"NUMBER_OF_PROCESSORS":   fmt.Sprint(g.cfg.Model.CPUs),
		"OS":                     "Windows_NT",
		"Path":                   `C:\Windows\system32;C:\Windows;C:\Windows\System32\Wbem`,
		"PATHEXT":                ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
		"PROCESSOR_ARCHITECTURE": g.procArch(),
		"PROCESSOR_IDENTIFIER":   "Simulated " + g.os.Arch + " processor (wfplab model)",
		"PROCESSOR_LEVEL":        "6",
		"PROCESSOR_REVISION":     "0000",
		"ProgramData":            `C:\ProgramData`,
		"ProgramFiles":           `C:\Program Files`,
		"PROMPT":                 "$P$G",
		"PUBLIC":                 `C:\Users\Public`,
		"SystemDrive":            `C:`,
		"SystemRoot":             `C:\Windows`,
		"TEMP":                   prof + `\AppData\Local\Temp`,
		"TMP":                    prof + `\AppData\Local\Temp`,
		"USERDOMAIN":             cn,
		"USERNAME":               g.userName(),
		"USERPROFILE":            prof,
		"windir":                 `C:\Windows`,
	}
	if g.os.Arch == "x64" {
		env["ProgramFiles(x86)"] = `C:\Program Files (x86)`
		env["CommonProgramFiles(x86)"] = `C:\Program Files (x86)\Common Files`
		env["ProgramW6432"] = `C:\Program Files`
	}
	return env
}

// layDownSystem creates the folders, system programs and registry keys a fresh install has.
func (g *Machine) layDownSystem() {
	prof := g.profileDir()
	for _, d := range []string{
		`C:\Windows\System32\drivers`, `C:\Windows\System32\wbem`, `C:\ProgramData`, `C:\Program Files\Common Files`,
		`C:\Users\Public`, prof + `\AppData\Local\Temp`, prof + `\AppData\Roaming`,
	} {
		g.fs.SetDir(d)
	}
	if g.os.Arch == "x64" {
		g.fs.SetDir(`C:\Program Files (x86)\Common Files`)
		g.fs.SetDir(`C:\Windows\SysWOW64`)
	}
	for path := range programs {
		g.fs.SetFile(path, []byte("wfplab simulated guest: stand-in for "+cmdexe.Base(path)+"\r\n"))
	}
	g.fs.SetFile(sys32+`\winrm.cmd`, []byte(winrmCmdText))
	g.fs.SetFile(sys32+`\winrm.vbs`, []byte("' wfplab simulated guest: stand-in for winrm.vbs, which cscript runs\r\n"))
	g.writeSystemFiles(g.files)
	g.fs.Protect(`C:\Windows`)

	build, rev, _ := strings.Cut(g.os.Build, ".")
	cv := `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
	g.reg.set(cv, "ProductName", regSZ, "Windows "+strings.TrimPrefix(g.os.Product, "Windows "))
	g.reg.set(cv, "CurrentVersion", regSZ, g.os.Version)
	g.reg.set(cv, "CurrentBuildNumber", regSZ, build)
	g.reg.set(cv, "CurrentBuild", regSZ, build)
	if g.os.SP > 0 {
		g.reg.set(cv, "CSDVersion", regSZ, fmt.Sprintf("Service Pack %d", g.os.SP))
	}
	g.reg.set(cv, "BuildLabEx", regSZ, build+"."+rev+".simulated")
	g.reg.set(`HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName`, "ComputerName", regSZ, strings.ToUpper(g.hostname))
	g.reg.ensureKey(servicesKey)
	// The WinRM service: started by hand on client releases, automatically on servers
	// (Microsoft's "Installation and configuration for Windows Remote Management").
	winrm := &service{name: "WinRM", display: "Windows Remote Management (WS-Management)", typ: svcShareProcess,
		start: startDemand, errCtl: 1, binPath: sys32 + `\svchost.exe -k NetworkService`}
	if strings.Contains(g.os.Product, "Server") {
		winrm.start = startAuto
	}
	g.svcs["winrm"] = winrm
	g.writeServiceKey(winrm)
	// The WinRM exception: the lab reaches the guest, so it is on.
	g.enableWinRMRuleLocked()
	// A fresh install does not route (COMMANDS.md #27 turns it on).
	g.reg.set(servicesKey+`\Tcpip\Parameters`, "IPEnableRouter", regDWORD, uint64(0))
}

// writeSystemFiles writes the stand-ins of the driver files KB979223 replaces, saying which
// version they model.
func (g *Machine) writeSystemFiles(v fileVersions) {
	for name, ver := range map[string]string{"netio.sys": v.netio, "tcpip.sys": v.tcpip, "fwpkclnt.sys": v.fwpkclnt} {
		g.fs.SetFile(`C:\Windows\System32\drivers\`+name,
			[]byte(fmt.Sprintf("wfplab simulated guest: stand-in for %s, file version %s\r\n", name, ver)))
	}
}

// newPID hands out process ids the way Windows does: multiples of 4.
func (g *Machine) newPID() uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pid == 0 {
		g.pid = 1000 + uint32(uint64(g.seed)%1000)*4
	}
	g.pid += 4
	return g.pid
}
