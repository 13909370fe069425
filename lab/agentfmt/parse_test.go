package agentfmt

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wfplab/wfplab/lab/contract"
)

// The example lines of guest/agent/FORMAT.md, verbatim.
const (
	fmtH1 = "H1 agent=wfplab-agent ver=0.1.0 interval_ms=100 arch=x64 pid=1234"
	fmtS1 = "S1 seq=42 t_us=123456789 np_bytes=52428800 np_allocs=120000 np_frees=118000 cpu_kernel_ms=1234 cpu_user_ms=567 cpu_idle_ms=99999 drv=running L.stream=10,10,80,10,0,0,0,10,0,0 L.forward=0,0,0,0,0,0,0,0,0,0 L.transport=5,5,5,0,5,0,0,0,0,0 T.Nnbl=900,800,57600 T.Ntf%20=3,1,256"
	fmtV1 = "V1 os_build=7600.16385 os_version=6.1 sp=0 arch=x64 netio=6.1.7600.16385 tcpip=6.1.7600.16385 fwpkclnt=6.1.7600.16385 testsigning=off drv_service=absent boot_us=123456789"
	fmtE1 = "E1 where=SystemPoolTagInformation code=3221225476 msg=buffer%20too%20small"
)

func TestGoldenHeader(t *testing.T) {
	got, err := ParseLine(fmtH1 + "\r\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &contract.Header{Agent: "wfplab-agent", Version: "0.1.0", IntervalMS: 100, Arch: "x64", PID: 1234}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ParseLine(H1) mismatch (-want +got):\n%s", diff)
	}
}

func TestGoldenSample(t *testing.T) {
	for _, ending := range []string{"\r\n", "\n", ""} {
		got, err := ParseSample(fmtS1 + ending)
		if err != nil {
			t.Fatalf("ending %q: %v", ending, err)
		}
		want := contract.Sample{
			Seq: 42, TimeUS: 123456789, NPBytes: 52428800, NPAllocs: 120000, NPFrees: 118000,
			CPUKernelMS: 1234, CPUUserMS: 567, CPUIdleMS: 99999,
			Driver: contract.Driver{State: "running", Layers: map[contract.Layer]contract.LayerCounters{
				contract.LayerStream:    {Classify: 10, Blocked: 10, NBLs: 80, MultiChain: 10, Hist: [6]uint64{0, 0, 0, 10, 0, 0}},
				contract.LayerForward:   {},
				contract.LayerTransport: {Classify: 5, Blocked: 5, NBLs: 5, MultiChain: 0, Hist: [6]uint64{5, 0, 0, 0, 0, 0}},
			}},
			ChangedTags: map[string]contract.TagUsage{
				"Nnbl": {Allocs: 900, Frees: 800, Bytes: 57600},
				"Ntf ": {Allocs: 3, Frees: 1, Bytes: 256},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("ending %q: ParseSample mismatch (-want +got):\n%s", ending, diff)
		}
	}
}

func TestGoldenInventory(t *testing.T) {
	got, err := ParseInventory(fmtV1 + "\r\n")
	if err != nil {
		t.Fatal(err)
	}
	want := contract.Inventory{OSVersion: "6.1", OSBuild: "7600.16385", SP: 0, Arch: "x64", Netio: "6.1.7600.16385",
		Tcpip: "6.1.7600.16385", Fwpkclnt: "6.1.7600.16385", TestSigning: false, DrvService: "absent", BootUS: 123456789}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ParseInventory mismatch (-want +got):\n%s", diff)
	}
	on, err := ParseInventory(strings.Replace(fmtV1, "testsigning=off", "testsigning=on", 1))
	if err != nil || !on.TestSigning {
		t.Fatalf("testsigning=on: %+v, %v", on, err)
	}
	missing, err := ParseInventory(strings.Replace(fmtV1, "tcpip=6.1.7600.16385", "tcpip=missing", 1))
	if err != nil || missing.Tcpip != "missing" {
		t.Fatalf("tcpip=missing: %+v, %v", missing, err)
	}
}

func TestGoldenCounters(t *testing.T) {
	got, err := ParseLine("C1 drv=running L.stream=10,10,80,10,0,0,0,10,0,0 L.forward=1,1,3,1,0,0,1,0,0,0 L.transport=5,5,5,0,5,0,0,0,0,0\r\n")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := got.(*Counters)
	if !ok {
		t.Fatalf("got %T, want *Counters", got)
	}
	want := &Counters{Driver: contract.Driver{State: "running", Layers: map[contract.Layer]contract.LayerCounters{
		contract.LayerStream:    {Classify: 10, Blocked: 10, NBLs: 80, MultiChain: 10, Hist: [6]uint64{0, 0, 0, 10, 0, 0}},
		contract.LayerForward:   {Classify: 1, Blocked: 1, NBLs: 3, MultiChain: 1, Hist: [6]uint64{0, 0, 1, 0, 0, 0}},
		contract.LayerTransport: {Classify: 5, Blocked: 5, NBLs: 5, Hist: [6]uint64{5, 0, 0, 0, 0, 0}},
	}}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("ParseLine(C1) mismatch (-want +got):\n%s", diff)
	}
	// A version 2 driver adds L.<layer>.multi_blocked; the order of the fields does not matter.
	v2, err := ParseCounters("C1 drv=running L.stream.multi_blocked=7 L.stream=10,9,80,10,0,0,0,10,0,0 L.forward=0,0,0,0,0,0,0,0,0,0" +
		" L.forward.multi_blocked=0 L.transport=0,0,0,0,0,0,0,0,0,0 L.other.multi_blocked=3")
	if err != nil {
		t.Fatal(err)
	}
	if st := v2.Driver.Layers[contract.LayerStream]; !st.HasMultiBlocked || st.MultiBlocked != 7 || st.Blocked != 9 {
		t.Errorf("L.stream with multi_blocked: %+v", st)
	}
	if fw := v2.Driver.Layers[contract.LayerForward]; !fw.HasMultiBlocked || fw.MultiBlocked != 0 {
		t.Errorf("L.forward with multi_blocked=0: %+v", fw)
	}
	if tr := v2.Driver.Layers[contract.LayerTransport]; tr.HasMultiBlocked {
		t.Errorf("L.transport without multi_blocked: %+v", tr)
	}
	absent, err := ParseCounters("C1 drv=absent")
	if err != nil || absent.Driver.State != "absent" || absent.Driver.Layers != nil {
		t.Fatalf("drv=absent: %+v, %v", absent, err)
	}
	e, err := ParseCounters("C1 drv=error:31")
	if err != nil || e.Driver.State != "error:31" {
		t.Fatalf("drv=error:31: %+v, %v", e, err)
	}
}

func TestCountersMode(t *testing.T) {
	c, err := ParseCounters("C1 drv=running mode=permit L.stream=1,0,1,0,1,0,0,0,0,0 L.forward=0,0,0,0,0,0,0,0,0,0 L.transport=0,0,0,0,0,0,0,0,0,0")
	if err != nil || c.Mode != ModePermit || c.Driver.Layers[contract.LayerStream].Classify != 1 {
		t.Fatalf("mode=permit: %+v, %v", c, err)
	}
	for _, bad := range []string{"C1 drv=running mode=allow", "C1 drv=absent mode=block", "C1 drv=running mode="} {
		if c, err := ParseCounters(bad); err == nil {
			t.Errorf("%q parsed as %+v; want an error", bad, c)
		}
	}
}

func TestGoldenAgentError(t *testing.T) {
	got, err := ParseLine(fmtE1)
	if err != nil {
		t.Fatal(err)
	}
	want := &AgentError{Where: "SystemPoolTagInformation", Code: 3221225476, Msg: "buffer too small"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ParseLine(E1) mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(want.Error(), "buffer too small") || !strings.Contains(want.Error(), "SystemPoolTagInformation") {
		t.Fatalf("Error() = %q", want.Error())
	}
	usage, err := ParseLine("E1 where=usage msg=unknown%20command")
	if err != nil || usage.(*AgentError).Where != "usage" {
		t.Fatalf("usage E1: %+v, %v", usage, err)
	}
}

func TestUnknownKindsAndKeysAreSkipped(t *testing.T) {
	for _, line := range []string{"", "\r\n", "S2 seq=1 whatever", "X9", "Z1 a=b c=d", "H2 agent=other"} {
		got, err := ParseLine(line)
		if err != nil || got != nil {
			t.Errorf("%q: got %v, %v; want nil, nil", line, got, err)
		}
	}
	// Unknown keys, including an unknown layer and an unknown prefix, are ignored.
	s, err := ParseSample(fmtS1 + " future_key=x%zz L.ale=1,2 Q.x=y")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Driver.Layers["ale"]; ok || len(s.Driver.Layers) != 3 {
		t.Fatalf("unknown layer leaked in: %+v", s.Driver.Layers)
	}
	h, err := ParseHeader(fmtH1 + " build=abc")
	if err != nil || h.PID != 1234 {
		t.Fatalf("%+v %v", h, err)
	}
}

func TestMalformedKnownKeysAreRejected(t *testing.T) {
	cases := map[string]string{
		"negative number":      strings.Replace(fmtS1, "seq=42", "seq=-42", 1),
		"plus sign":            strings.Replace(fmtS1, "seq=42", "seq=+42", 1),
		"exponent":             strings.Replace(fmtS1, "np_bytes=52428800", "np_bytes=5e7", 1),
		"overflow":             strings.Replace(fmtS1, "seq=42", "seq=18446744073709551616", 1),
		"empty value":          strings.Replace(fmtS1, "t_us=123456789", "t_us=", 1),
		"missing key":          strings.Replace(fmtS1, "np_frees=118000 ", "", 1),
		"duplicate key":        fmtS1 + " seq=43",
		"layer short":          strings.Replace(fmtS1, "L.forward=0,0,0,0,0,0,0,0,0,0", "L.forward=0,0,0", 1),
		"layer bad number":     strings.Replace(fmtS1, "L.forward=0,0,0,0,0,0,0,0,0,0", "L.forward=0,0,0,0,0,0,0,0,0,x", 1),
		"tag three bytes":      strings.Replace(fmtS1, "T.Nnbl=", "T.Nnb=", 1),
		"tag bad escape":       strings.Replace(fmtS1, "T.Ntf%20=", "T.Ntf%2=", 1),
		"tag lower hex":        strings.Replace(fmtS1, "T.Ntf%20=", "T.Ntf%2a=", 1),
		"tag two numbers":      strings.Replace(fmtS1, "T.Nnbl=900,800,57600", "T.Nnbl=900,800", 1),
		"tag twice":            fmtS1 + " T.%4Enbl=1,1,1",
		"drv unknown":          strings.Replace(fmtS1, "drv=running", "drv=sleepy", 1),
		"drv error no code":    strings.Replace(fmtS1, "drv=running", "drv=error:", 1),
		"layers when absent":   strings.Replace(fmtS1, "drv=running", "drv=absent", 1),
		"multi_blocked absent": "C1 drv=absent L.stream.multi_blocked=1",
		"multi_blocked alone":  "C1 drv=running L.stream.multi_blocked=1",
		"multi_blocked list":   "C1 drv=running L.stream=0,0,0,0,0,0,0,0,0,0 L.stream.multi_blocked=1,2",
		"double space":         strings.Replace(fmtS1, " t_us", "  t_us", 1),
		"trailing space":       fmtS1 + " ",
		"no equals":            fmtS1 + " lonely",
		"empty key":            fmtS1 + " =5",
		"tab":                  strings.Replace(fmtS1, " t_us", "\tt_us", 1),
		"non-ascii":            fmtS1 + " x=\xc3\xa9",
		"bare CR inside":       strings.Replace(fmtS1, " t_us", "\r t_us", 1),
		"header agent":         strings.Replace(fmtH1, "agent=wfplab-agent", "agent=other", 1),
		"header arch":          strings.Replace(fmtH1, "arch=x64", "arch=arm64", 1),
		"header ver raw slash": strings.Replace(fmtH1, "ver=0.1.0", "ver=0.1/0", 1),
		"inventory netio":      strings.Replace(fmtV1, "netio=6.1.7600.16385", "netio=6.1.7600", 1),
		"inventory testsign":   strings.Replace(fmtV1, "testsigning=off", "testsigning=yes", 1),
		"inventory service":    strings.Replace(fmtV1, "drv_service=absent", "drv_service=gone", 1),
		"inventory os_version": strings.Replace(fmtV1, "os_version=6.1", "os_version=6", 1),
		"inventory missing":    strings.Replace(fmtV1, " boot_us=123456789", "", 1),
		"error code":           strings.Replace(fmtE1, "code=3221225476", "code=0xC0000004", 1),
		"error no where":       "E1 code=5",
		"not a record":         "hello world",
		"kind lower":           "s1 seq=1",
		"too long":             "S1 x=" + strings.Repeat("a", MaxLineLen),
	}
	for name, line := range cases {
		if got, err := ParseLine(line); err == nil {
			t.Errorf("%s: %q parsed as %+v, want an error", name, line, got)
		}
	}
}

func TestTypedParsersRejectOtherKinds(t *testing.T) {
	if _, err := ParseSample(fmtV1); err == nil || err.Error() != "expected an S1 line, got a V1 line" {
		t.Errorf("ParseSample(V1) error = %v", err)
	}
	if _, err := ParseInventory(fmtS1); err == nil || !strings.Contains(err.Error(), "S1") {
		t.Errorf("ParseInventory(S1) error = %v", err)
	}
	if _, err := ParseInventory(""); err == nil || !strings.Contains(err.Error(), "blank") {
		t.Errorf("ParseInventory(blank) error = %v", err)
	}
	if _, err := ParseHeader(fmtS1); err == nil || err.Error() != "expected an H1 line, got an S1 line" {
		t.Errorf("ParseHeader(S1) error = %v", err)
	}
	if _, err := ParseCounters(fmtE1); err == nil || err.Error() != "expected a C1 line, got an E1 line" {
		t.Errorf("ParseCounters(E1) error = %v", err)
	}
	if _, err := ParseInventory("hello world"); err == nil || !strings.Contains(err.Error(), "not a record kind") {
		t.Errorf("ParseInventory(garbage) error = %v", err)
	}
}

func TestErrorNamesTheKey(t *testing.T) {
	_, err := ParseSample(strings.Replace(fmtS1, "np_bytes=52428800", "np_bytes=lots", 1))
	if err == nil || !strings.Contains(err.Error(), "np_bytes") || !strings.Contains(err.Error(), "S1") {
		t.Fatalf("error %v does not name S1 and np_bytes", err)
	}
}

func TestSampleWithoutDriverOrTags(t *testing.T) {
	s, err := ParseSample("S1 seq=0 t_us=1 np_bytes=2 np_allocs=3 np_frees=4 cpu_kernel_ms=5 cpu_user_ms=6 cpu_idle_ms=7 drv=absent")
	if err != nil {
		t.Fatal(err)
	}
	if s.Driver.State != "absent" || s.Driver.Layers != nil || s.ChangedTags == nil || len(s.ChangedTags) != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestTagsDeferred(t *testing.T) {
	base := "S1 seq=0 t_us=1 np_bytes=2 np_allocs=3 np_frees=4 cpu_kernel_ms=5 cpu_user_ms=6 cpu_idle_ms=7 drv=absent T.Nnbl=1,0,576"
	s, err := ParseSample(base + " tags_deferred=1200")
	if err != nil || s.TagsDeferred != 1200 || len(s.ChangedTags) != 1 {
		t.Fatalf("ParseSample = %+v, %v; want 1200 deferred and one tag", s, err)
	}
	if s, err := ParseSample(base); err != nil || s.TagsDeferred != 0 {
		t.Fatalf("without the field: %+v, %v", s, err)
	}
	if _, err := ParseSample(base + " tags_deferred=-3"); err == nil || !strings.Contains(err.Error(), "tags_deferred") {
		t.Fatalf("a malformed tags_deferred is accepted or not named: %v", err)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	cases := map[string]string{
		"Ntf ":       "Ntf%20",
		"a=b":        "a%3Db",
		"50%":        "50%25",
		"x/y,z":      "x%2Fy%2Cz",
		"tab\there":  "tab%09here",
		"\xff\x00":   "%FF%00",
		"plain~!":    "plain~!",
		"":           "",
		"buffer too": "buffer%20too",
	}
	for raw, esc := range cases {
		if got := Escape(raw); got != esc {
			t.Errorf("Escape(%q) = %q, want %q", raw, got, esc)
		}
		back, err := Unescape(esc)
		if err != nil || back != raw {
			t.Errorf("Unescape(%q) = %q, %v; want %q", esc, back, err, raw)
		}
	}
	// Over-escaping a safe byte is still readable.
	if got, err := Unescape("%41bc"); err != nil || got != "Abc" {
		t.Errorf("Unescape(%%41bc) = %q, %v", got, err)
	}
	for _, bad := range []string{"%", "%2", "%2g", "%2a", "a b", "a=b", "a,b", "a/b", "\x7f"} {
		if got, err := Unescape(bad); err == nil {
			t.Errorf("Unescape(%q) = %q, want an error", bad, got)
		}
	}
}
