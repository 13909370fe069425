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
	if !strings.EqualFold(args[0], "os") {
		fmt.Fprintf(p.Stderr, "%s - Alias not found.%s", args[0], wmicNL)
		return 44210
	}
	if len(args) < 2 || !strings.EqualFold(args[1], "get") {
		fmt.Fprintf(p.Stderr, "wfplab simulated guest: only \"wmic os get\" is modelled.%s", wmicNL)
		return 1
	}
	list := false
	var names []string
	for _, a := range args[2:] {
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
	props := g.osProperties(b)
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
