package contract

import (
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults(" http_500_every=7, slow_every=5,slow_by=2s ,reboot_every=90s,reboot_down=2m,drop_receive_every=3,agent_dies_after=20s,hang_pool_mb=64")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{DropReceiveEvery: 3, HTTP500Every: 7, SlowEvery: 5, SlowBy: 2 * time.Second,
		RebootEvery: 90 * time.Second, RebootDown: 2 * time.Minute, AgentDiesAfter: 20 * time.Second, HangPoolMB: 64}
	if f != want {
		t.Fatalf("got %+v, want %+v", f, want)
	}
	back, err := ParseFaults(f.String())
	if err != nil || back != f {
		t.Fatalf("String %q does not read back: %+v, %v", f.String(), back, err)
	}
	if f, err := ParseFaults(""); err != nil || f.Any() {
		t.Fatalf("empty spec: %+v, %v", f, err)
	}
}

func TestParseFaultsRejects(t *testing.T) {
	for spec, want := range map[string]string{
		"http_500_every":                "want key=value",
		"drop_every=3":                  "unknown fault \"drop_every\"",
		"http_500_every=-1":             "whole number",
		"http_500_every=x":              "whole number",
		"slow_every=3":                  "needs slow_by",
		"slow_by=1s":                    "needs slow_every",
		"reboot_down=1m":                "needs reboot_every",
		"reboot_every=soon":             "duration",
		"reboot_every=1000h":            "at most",
		"hang_pool_mb=1,hang_pool_mb=2": "given twice",
	} {
		_, err := ParseFaults(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFaults(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
}

func FuzzParseFaults(f *testing.F) {
	f.Add("http_500_every=7,slow_every=5,slow_by=2s")
	f.Add("reboot_every=1m,reboot_down=3m,agent_dies_after=10s,hang_pool_mb=9,drop_receive_every=2")
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseFaults(spec)
		if err != nil {
			return
		}
		back, err := ParseFaults(got.String())
		if err != nil || back != got {
			t.Fatalf("%q parsed to %+v, whose String %q reads back as %+v, %v", spec, got, got.String(), back, err)
		}
	})
}
