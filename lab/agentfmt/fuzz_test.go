package agentfmt

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wfplab/wfplab/lab/contract"
)

// FuzzParseLine: any input parses or fails without panicking, and what parses survives a
// round trip through a writer that follows FORMAT.md (formatRecord, below).
//
//	go test ./lab/agentfmt -run '^$' -fuzz FuzzParseLine -fuzztime 30s
func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		fmtH1, fmtS1, fmtV1, fmtE1,
		fmtS1 + "\r\n", fmtV1 + "\n",
		"C1 drv=running L.stream=1,1,2,1,0,1,0,0,0,0",
		"C1 drv=error:5",
		"E1 where=usage",
		"S2 future=1", "", "garbage", "S1 seq=1",
		strings.Replace(fmtS1, "drv=running", "drv=absent", 1),
		"S1 seq=0 t_us=0 np_bytes=0 np_allocs=0 np_frees=0 cpu_kernel_ms=0 cpu_user_ms=0 cpu_idle_ms=0 drv=absent T.%00%FF%25%3D=1,2,3",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, err := ParseLine(line)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with a value %v", err, got)
			}
			return
		}
		if got == nil {
			return
		}
		out := formatRecord(got)
		again, err := ParseLine(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, line, err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("round trip changed the value (in %q, out %q; -first +again):\n%s", line, out, diff)
		}
	})
}

// FuzzEscape: Unescape(Escape(s)) == s for every string, and Escape's output has no byte
// that would break a line's framing.
func FuzzEscape(f *testing.F) {
	for _, seed := range []string{"Ntf ", "a=b,c/d%e", "\x00\xff", "", "buffer too small"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := Escape(s)
		if strings.ContainsAny(esc, " =,/\r\n") {
			t.Fatalf("Escape(%q) = %q contains a framing byte", s, esc)
		}
		back, err := Unescape(esc)
		if err != nil || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
		if u, err := Unescape(s); err == nil && Escape(u) != s && !strings.Contains(s, "%") {
			t.Fatalf("Unescape accepted %q but Escape(%q) = %q", s, u, Escape(u))
		}
	})
}

// formatRecord writes a parsed record back as FORMAT.md describes: a second, independent
// writer the round trip holds the parser to.
func formatRecord(v any) string {
	switch r := v.(type) {
	case *contract.Header:
		return fmt.Sprintf("H1 agent=%s ver=%s interval_ms=%d arch=%s pid=%d",
			r.Agent, Escape(r.Version), r.IntervalMS, r.Arch, r.PID)
	case *contract.Sample:
		s := fmt.Sprintf("S1 seq=%d t_us=%d np_bytes=%d np_allocs=%d np_frees=%d cpu_kernel_ms=%d cpu_user_ms=%d cpu_idle_ms=%d drv=%s",
			r.Seq, r.TimeUS, r.NPBytes, r.NPAllocs, r.NPFrees, r.CPUKernelMS, r.CPUUserMS, r.CPUIdleMS, r.Driver.State)
		s += formatLayers(r.Driver)
		tags := make([]string, 0, len(r.ChangedTags))
		for tag := range r.ChangedTags {
			tags = append(tags, tag)
		}
		sort.Strings(tags)
		for _, tag := range tags {
			u := r.ChangedTags[tag]
			s += fmt.Sprintf(" T.%s=%d,%d,%d", Escape(tag), u.Allocs, u.Frees, u.Bytes)
		}
		return s + "\r\n"
	case *contract.Inventory:
		ts := "off"
		if r.TestSigning {
			ts = "on"
		}
		return fmt.Sprintf("V1 os_build=%s os_version=%s sp=%d arch=%s netio=%s tcpip=%s fwpkclnt=%s testsigning=%s drv_service=%s boot_us=%d\r\n",
			r.OSBuild, r.OSVersion, r.SP, r.Arch, r.Netio, r.Tcpip, r.Fwpkclnt, ts, r.DrvService, r.BootUS)
	case *Counters:
		return "C1 drv=" + r.Driver.State + formatLayers(r.Driver)
	case *AgentError:
		s := "E1 where=" + Escape(r.Where)
		if r.Code != 0 { // absent and 0 read back the same
			s += fmt.Sprintf(" code=%d", r.Code)
		}
		if r.Msg != "" {
			s += " msg=" + Escape(r.Msg)
		}
		return s
	}
	panic(fmt.Sprintf("formatRecord: unexpected %T", v))
}

func formatLayers(d contract.Driver) string {
	var s string
	for _, l := range contract.Layers {
		c, ok := d.Layers[l]
		if !ok {
			continue
		}
		s += fmt.Sprintf(" L.%s=%d,%d,%d,%d", l, c.Classify, c.Blocked, c.NBLs, c.MultiChain)
		for _, h := range c.Hist {
			s += fmt.Sprintf(",%d", h)
		}
	}
	return s
}
