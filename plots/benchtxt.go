package plots

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/wfplab/wfplab/bench"
)

// benchName is the benchmark every line belongs to; sub-name keys say which cell.
const benchName = "BenchmarkKB979223"

// benchUnits says, for each unit bench.txt writes, which way is better. They go into
// bench.txt as "Unit <unit> better=..." lines (the format's unit metadata), so benchstat
// and wfplab compare judge a change without knowing wfplab; a new metric adds its unit here.
var benchUnits = []struct{ unit, better string }{
	{"leak-B/s", "lower"},
	{"B/chain", "lower"},
	{"chains/s", "higher"},
	{"pkts/s", "higher"},
	// The throughput windows' metrics (bench.TputMetrics).
	{"classified/s", "higher"},
	{"sent/s", "higher"},
	{"fwd/s", "higher"},
	{"cpu-%", "lower"},
}

// BenchBetter is +1 when higher values of unit are better, -1 when lower are, 0 when
// bench.txt does not say: the direction of a unit from a bench.txt written before its
// Unit lines.
func BenchBetter(unit string) int {
	for _, u := range benchUnits {
		if u.unit == unit {
			if u.better == "higher" {
				return 1
			}
			return -1
		}
	}
	return 0
}

// BenchText is bench.txt of the run in src, as Write writes it: what wfplab compare reads
// from a store whose folder has no bench.txt.
func BenchText(src Source) ([]byte, error) {
	rd, err := load(src, config{})
	return renderBench(rd), err
}

// renderBench writes the results in the Go benchmark format
// (golang.org/design/14313-benchmark-format), so benchstat compares two runs cell by cell.
// Only keys that stay the same between comparable runs are configuration lines; the run's
// identity (id, seed, times) goes in comments, which the format ignores, or benchstat would
// put every run in a table of its own.
func renderBench(rd *runData) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# wfplab run %s: scenario %s, seed %d, provider %s, wfplab %s\n",
		comment(orDash(rd.run.ID)), comment(orDash(rd.run.Scenario)), rd.run.Seed, comment(orDash(rd.run.Provider)), comment(orDash(rd.run.Tool)))
	fmt.Fprintf(&b, "# started %s, finished %s\n", timeText(rd.run.Started), timeText(rd.run.Finished))
	fmt.Fprintf(&b, "# %s\n", comment(rd.headline()))
	b.WriteString("# N is the number of pool samples in the estimate; leak-B/s is the OLS slope of nonpaged pool.\n")
	for _, u := range benchUnits {
		fmt.Fprintf(&b, "Unit %s better=%s\n", u.unit, u.better)
	}
	b.WriteString("goos: windows\n")
	if rd.run.Scenario != "" {
		fmt.Fprintf(&b, "scenario: %s\n", configValue(rd.run.Scenario))
	}
	for _, td := range rd.targets {
		var lines []string
		for _, c := range td.cells {
			if line, ok := benchLine(c); ok {
				lines = append(lines, line)
			}
		}
		if len(lines) == 0 {
			continue
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "target: %s\n", configValue(td.info.Name))
		if td.info.Product != "" {
			fmt.Fprintf(&b, "product: %s\n", configValue(td.info.Product))
		}
		if arch := goarch(td.info.Arch); arch != "" {
			fmt.Fprintf(&b, "goarch: %s\n", arch)
		}
		for _, p := range td.phases {
			fmt.Fprintf(&b, "# %s: netio.sys %s\n", comment(p.Phase), comment(netioText(&p)))
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// benchLine is one cell's result line; cells without a finite estimate have none.
func benchLine(c *cell) (string, bool) {
	r := c.Result
	// An incomplete window's estimate would read as a measurement next to complete ones.
	if r == nil || r.Verdict == bench.Incomplete || !finite(r.Leak.Slope) || r.Leak.N < 1 {
		return "", false
	}
	name := fmt.Sprintf("%s/target=%s/phase=%s/profile=%s", benchName, nameValue(c.Target), nameValue(c.Phase), nameValue(c.Profile))
	fields := []string{name, strconv.Itoa(r.Leak.N), benchValue(r.Leak.Slope), "leak-B/s"}
	// NaN means no multi-NBL chains: leave the unit out rather than write a value benchstat rejects.
	if finite(r.BytesPerChain) {
		fields = append(fields, benchValue(r.BytesPerChain), "B/chain")
	}
	if finite(r.ChainsPerSec) {
		fields = append(fields, benchValue(r.ChainsPerSec), "chains/s")
	}
	if finite(r.PacketsPerSec) {
		fields = append(fields, benchValue(r.PacketsPerSec), "pkts/s")
	}
	return strings.Join(fields, "\t"), true
}

func benchValue(v float64) string { return strconv.FormatFloat(v, 'g', 7, 64) }

// nameValue keeps a sub-name value one field with no extra key levels: no spaces, no slashes.
// A trailing "-<digits>" would read as GOMAXPROCS, so it gets a marker.
func nameValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsSpace(r) || r == '/' || !unicode.IsPrint(r) {
			b.WriteByte('_')
		} else {
			b.WriteRune(r)
		}
	}
	out := b.String()
	if out == "" {
		return "_"
	}
	if i := strings.LastIndexByte(out, '-'); i >= 0 && i+1 < len(out) && strings.Trim(out[i+1:], "0123456789") == "" {
		out = out[:i] + "_" + out[i+1:]
	}
	return out
}

// configValue keeps a configuration value on its line.
func configValue(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func comment(s string) string { return configValue(s) }

func goarch(arch string) string {
	switch strings.ToLower(arch) {
	case "x86":
		return "386"
	case "x64":
		return "amd64"
	}
	return ""
}
