package guest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

// Golden lines: what guest/agent/*.c prints, written by hand from FORMAT.md and the
// code (field order, escapes, the extra tags_deferred field, CRLF endings).
var golden = []string{
	"H1 agent=wfplab-agent ver=0.1.0 interval_ms=100 arch=x64 pid=1234\r\n",
	"H1 agent=wfplab-agent ver=0.1.0 interval_ms=3600000 arch=x86 pid=4\r\n",
	"S1 seq=0 t_us=123456789 np_bytes=52428800 np_allocs=120000 np_frees=118000 cpu_kernel_ms=1234 cpu_user_ms=567 cpu_idle_ms=99999 drv=running" +
		" L.stream=10,10,80,10,0,0,0,10,0,0 L.forward=0,0,0,0,0,0,0,0,0,0 L.transport=5,5,5,0,5,0,0,0,0,0" +
		" T.Nnbl=900,800,57600 T.Ntf%20=3,1,256 T.%25%3D%2F%2C=1,0,16 tags_deferred=412\r\n",
	"S1 seq=1 t_us=123556789 np_bytes=52429000 np_allocs=120010 np_frees=118005 cpu_kernel_ms=1235 cpu_user_ms=567 cpu_idle_ms=100098 drv=absent\r\n",
	"S1 seq=2 t_us=123656789 np_bytes=52429000 np_allocs=120010 np_frees=118005 cpu_kernel_ms=1235 cpu_user_ms=567 cpu_idle_ms=100197 drv=error:5 T.Nnbl=18446744073709551615,0,1\r\n",
	"V1 os_build=7600.16385 os_version=6.1 sp=0 arch=x64 netio=6.1.7600.16385 tcpip=6.1.7600.16385 fwpkclnt=6.1.7600.16385 testsigning=off drv_service=absent boot_us=123456789\r\n",
	"V1 os_build=6002.18005 os_version=6.0 sp=2 arch=x86 netio=missing tcpip=6.0.6002.18005 fwpkclnt=6.0.6002.18005 testsigning=on drv_service=start_pending boot_us=1\r\n",
	"C1 drv=running L.stream=1,1,3,1,0,0,1,0,0,0 L.forward=2,2,34,2,0,0,0,0,1,1 L.transport=7,7,7,0,7,0,0,0,0,0\r\n",
	"C1 drv=absent\r\n",
	"C1 drv=running L.stream=4,3,9,2,1,1,0,1,0,0 L.stream.multi_blocked=1 L.forward=2,2,34,2,0,0,0,0,1,1 L.forward.multi_blocked=2" +
		" L.transport=7,7,7,0,7,0,0,0,0,0 L.transport.multi_blocked=0\r\n",
	"C1 drv=error:31\r\n",
	"E1 where=SystemPoolTagInformation code=3221225476 msg=pool%20tag%20query%20failed\r\n",
	"E1 where=usage code=87 msg=unknown%20command;%20use%20sample%2C%20versions%2C%20counters%20or%20reset\r\n",
}

func TestGoldenLinesParse(t *testing.T) {
	for _, line := range golden {
		v, err := agentfmt.ParseLine(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if v == nil {
			t.Errorf("%q: the parser skipped it as an unknown kind", line)
		}
	}
}

// Spot checks that the golden lines mean what the agent means by them.
func TestGoldenLinesValues(t *testing.T) {
	s, err := agentfmt.ParseSample(golden[2])
	if err != nil {
		t.Fatal(err)
	}
	if s.NPBytes != 52428800 || s.CPUIdleMS != 99999 || s.Driver.State != "running" {
		t.Errorf("sample fields: %+v", s)
	}
	st := s.Driver.Layers[contract.LayerStream]
	if st.Classify != 10 || st.NBLs != 80 || st.MultiChain != 10 || st.Hist != [6]uint64{0, 0, 0, 10, 0, 0} {
		t.Errorf("L.stream: %+v", st)
	}
	if got := s.ChangedTags["Ntf "]; got != (contract.TagUsage{Allocs: 3, Frees: 1, Bytes: 256}) {
		t.Errorf("T.Ntf%%20: %+v", got)
	}
	if got, ok := s.ChangedTags["%=/,"]; !ok || got.Bytes != 16 {
		t.Errorf("escaped tag %%=/, not read back: %+v", s.ChangedTags)
	}
	if len(s.ChangedTags) != 3 {
		t.Errorf("tags_deferred was read as a tag: %v", s.ChangedTags)
	}
	inv, err := agentfmt.ParseInventory(golden[6])
	if err != nil {
		t.Fatal(err)
	}
	if inv.OSBuild != "6002.18005" || inv.SP != 2 || inv.Netio != "missing" || !inv.TestSigning || inv.DrvService != "start_pending" {
		t.Errorf("inventory: %+v", inv)
	}
	c, err := agentfmt.ParseCounters(golden[7])
	if err != nil {
		t.Fatal(err)
	}
	if fw := c.Driver.Layers[contract.LayerForward]; fw.NBLs != 34 || fw.Hist[4] != 1 || fw.Hist[5] != 1 || fw.HasMultiBlocked {
		t.Errorf("L.forward from a version 1 driver: %+v", fw)
	}
	// A version 2 driver: a FIN was permitted (classify 4, blocked 3) and one of the two
	// multi-NBL chains seen was blocked.
	c, err = agentfmt.ParseCounters(golden[9])
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Driver.Layers[contract.LayerStream]; st.Classify != 4 || st.Blocked != 3 || st.MultiChain != 2 ||
		!st.HasMultiBlocked || st.MultiBlocked != 1 {
		t.Errorf("L.stream from a version 2 driver: %+v", st)
	}
	if fw := c.Driver.Layers[contract.LayerForward]; !fw.HasMultiBlocked || fw.MultiBlocked != 2 {
		t.Errorf("L.forward from a version 2 driver: %+v", fw)
	}
}

// The examples in FORMAT.md itself parse (the C1 example's "..." stands for a layer's
// ten numbers).
func TestFormatExamplesParse(t *testing.T) {
	f, err := os.Open(filepath.Join(guestDir(t), "agent", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kind := regexp.MustCompile(`^[A-Z]+[0-9]+ `)
	inFence := false
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if !inFence || !kind.MatchString(line) {
			continue
		}
		line = strings.ReplaceAll(line, "=...", "=0,0,0,0,0,0,0,0,0,0")
		n++
		if v, err := agentfmt.ParseLine(line); err != nil || v == nil {
			t.Errorf("FORMAT.md example %q: %v (parsed %v)", line, err, v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("found %d example lines in FORMAT.md, want one per record kind (5)", n)
	}
}

// The longest S1 the agent can build still fits the format's line limit: every
// fixed field at its widest, three layers of 20-digit counters, and the room the
// agent keeps for tags_deferred.
func TestWidestSampleFitsLineLimit(t *testing.T) {
	max := "18446744073709551615"
	layer := strings.TrimSuffix(strings.Repeat(max+",", 10), ",")
	line := "S1 seq=" + max + " t_us=" + max + " np_bytes=" + max + " np_allocs=" + max + " np_frees=" + max +
		" cpu_kernel_ms=" + max + " cpu_user_ms=" + max + " cpu_idle_ms=" + max + " drv=running" +
		" L.stream=" + layer + " L.stream.multi_blocked=" + max + " L.forward=" + layer + " L.forward.multi_blocked=" + max +
		" L.transport=" + layer + " L.transport.multi_blocked=" + max + " tags_deferred=4294967295"
	if len(line) > agentfmt.MaxLineLen/4 {
		t.Errorf("fixed part of S1 is %d bytes: too little room left for tags", len(line))
	}
	if _, err := agentfmt.ParseSample(line); err != nil {
		t.Errorf("widest S1: %v", err)
	}
}
