package sim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// wmicNL is wmic's line end: it writes CRLF through a text-mode stream, which doubles the CR.
const wmicNL = "\r\r\n"

// wmic models `wmic os get PROP[,PROP...] [/value | /format:list]`.
func (g *Machine) wmic(_ context.Context, b *boot, p *cmdexe.Process) int {
	args := p.Args
	if len(args) == 0 {
		fmt.Fprint(p.Stdout, "wfplab simulated guest: interactive wmic is not modelled."+wmicNL)
		return 1
	}
	var props map[string]string
	rest := args[1:]
	switch strings.ToLower(args[0]) {
	case "os":
		props = g.osProperties(b)
	case "datafile", "logicaldisk":
		if len(rest) < 2 || !strings.EqualFold(rest[0], "where") {
			fmt.Fprintf(p.Stderr, "wfplab simulated guest: only \"wmic %s where ... get\" is modelled.%s", args[0], wmicNL)
			return 1
		}
		var found bool
		if strings.EqualFold(args[0], "datafile") {
			props, found = g.dataFile(b, rest[1])
		} else {
			props, found = g.logicalDisk(rest[1])
		}
		if !found {
			// wmic answers a query that matches nothing on stderr, with exit 0 (unverified).
			fmt.Fprint(p.Stderr, "No Instance(s) Available."+wmicNL)
			return 0
		}
		rest = rest[2:]
	default:
		fmt.Fprintf(p.Stderr, "%s - Alias not found.%s", args[0], wmicNL)
		return 44210
	}
	if len(rest) < 1 || !strings.EqualFold(rest[0], "get") {
		fmt.Fprintf(p.Stderr, "wfplab simulated guest: only \"wmic %s get\" is modelled.%s", args[0], wmicNL)
		return 1
	}
	list := false
	var names []string
	for _, a := range rest[1:] {
		switch strings.ToLower(a) {
		case "/value", "/format:list":
			list = true
			continue
		}
		for _, n := range strings.Split(a, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		for n := range props {
			names = append(names, n)
		}
	}
	canon := make([]string, 0, len(names))
	for _, n := range names {
		found := ""
		for k := range props {
			if strings.EqualFold(k, n) {
				found = k
			}
		}
		if found == "" {
			fmt.Fprintf(p.Stderr, "Node - %s%sERROR:%sDescription = Invalid query%s%s", strings.ToUpper(g.hostname), wmicNL, wmicNL, wmicNL, wmicNL)
			return 44135
		}
		canon = append(canon, found)
	}
	// wmic lists properties in alphabetical order, whatever order they were asked in.
	sort.Slice(canon, func(i, j int) bool { return strings.ToLower(canon[i]) < strings.ToLower(canon[j]) })
	if list {
		fmt.Fprint(p.Stdout, wmicNL+wmicNL)
		for _, n := range canon {
			fmt.Fprintf(p.Stdout, "%s=%s%s", n, props[n], wmicNL)
		}
		fmt.Fprint(p.Stdout, wmicNL+wmicNL)
		return 0
	}
	var head, row strings.Builder
	for _, n := range canon {
		w := max(len(n), len(props[n])) + 2
		fmt.Fprintf(&head, "%-*s", w, n)
		fmt.Fprintf(&row, "%-*s", w, props[n])
	}
	fmt.Fprint(p.Stdout, head.String()+wmicNL+row.String()+wmicNL+wmicNL)
	return 0
}

// cimTime formats a time as a CIM datetime in UTC: yyyymmddHHMMSS.mmmmmm+000.
func cimTime(t time.Time) string {
	return t.UTC().Format("20060102150405.000000") + "+000"
}

func (g *Machine) osProperties(b *boot) map[string]string {
	build, _, _ := strings.Cut(g.os.Build, ".")
	arch := "64-bit"
	if g.os.Arch == "x86" {
		arch = "32-bit"
	}
	sp := ""
	if g.os.SP > 0 {
		sp = fmt.Sprintf("Service Pack %d", g.os.SP)
	}
	return map[string]string{
		"BuildNumber":             build,
		"Caption":                 "Microsoft " + g.os.Product,
		"CSDVersion":              sp,
		"CSName":                  strings.ToUpper(g.hostname),
		"LastBootUpTime":          cimTime(b.wall),
		"LocalDateTime":           cimTime(time.Now()),
		"OSArchitecture":          arch,
		"ServicePackMajorVersion": strconv.Itoa(g.os.SP),
		"Version":                 g.verString(),
	}
}

func parseUint(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func secondsDur(n int) time.Duration { return time.Duration(n) * time.Second }

// dataFile answers `wmic datafile where name="C:\\...\\netio.sys"` for the driver files
// KB979223 replaces: WQL doubles each backslash; cmd.exe has taken the quotes off.
func (g *Machine) dataFile(b *boot, where string) (map[string]string, bool) {
	k, v, ok := strings.Cut(where, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(k), "name") {
		return nil, false
	}
	path := strings.ReplaceAll(strings.Trim(strings.TrimSpace(v), `"'`), `\\`, `\`)
	versions := map[string]string{"netio.sys": b.files.netio, "tcpip.sys": b.files.tcpip, "fwpkclnt.sys": b.files.fwpkclnt}
	for name, ver := range versions {
		if strings.EqualFold(path, `C:\Windows\System32\drivers\`+name) {
			return map[string]string{"Name": strings.ToLower(path), "Version": ver}, true
		}
	}
	return nil, false
}

// logicalDisk answers `wmic logicaldisk where "DeviceID='C:'"`: the simulated disk's room.
func (g *Machine) logicalDisk(where string) (map[string]string, bool) {
	k, v, ok := strings.Cut(where, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(k), "DeviceID") || !strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"'`), "C:") {
		return nil, false
	}
	free := g.fs.Free()
	return map[string]string{"DeviceID": "C:", "FreeSpace": strconv.FormatInt(free, 10)}, true
}
