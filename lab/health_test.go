package lab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/internal/freeport"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

func findings(fs []lab.Finding) map[string]lab.Finding {
	m := map[string]lab.Finding{}
	for _, f := range fs {
		m[f.Check] = f
	}
	return m
}

// Health asks a simulated guest over WinRM what a run depends on, and says what is wrong
// with a next step: a guest already patched, another OS than claimed, refused
// credentials, nothing listening.
func TestSimHealth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := startSim(t, "win7-x64", nil)
	got := findings(s.guest.Health(ctx, true))
	for check, want := range map[string]string{"WinRM": "answers", "credentials": "accepted", "OS": "Windows 6.1 build 7600 x64",
		"netio.sys": "6.1.7600.16385, KB979223 unpatched", "test signing": "off (prepare turns it on", "driver": "not installed",
		"free disk": "MiB on C:"} {
		if f := got[check]; !strings.Contains(f.Value, want) || f.Problem != "" {
			t.Errorf("%s: %+v, want %q and no problem", check, f, want)
		}
	}

	p := startSim(t, "vista-sp2-x64", func(c *sim.Config) { c.Patched = true })
	if f := findings(p.guest.Health(ctx, true))["netio.sys"]; !strings.Contains(f.Problem, "ALREADY_PATCHED") || f.Next == "" {
		t.Errorf("a patched guest before phase before: %+v", f)
	}
	if f := findings(p.guest.Health(ctx, false))["netio.sys"]; f.Problem != "" || !strings.Contains(f.Value, "patched") {
		t.Errorf("a patched guest with no phase before: %+v", f)
	}

	wrongOS := s.target
	wrongOS.OS, _ = contract.LookupOS("2008-sp2-x64")
	if f := findings(dial(t, wrongOS, lab.Options{}).Health(ctx, true))["OS"]; !strings.Contains(f.Problem, "claims 2008-sp2-x64") || f.Next == "" {
		t.Errorf("another OS than claimed: %+v", f)
	}
	badPW := s.target
	badPW.Creds.Password = "wrong"
	fs := dial(t, badPW, lab.Options{}).Health(ctx, true)
	if f := findings(fs)["credentials"]; !strings.Contains(f.Problem, "401") || len(fs) != 2 || strings.Contains(f.Problem, "wrong") {
		t.Errorf("refused credentials: %+v (%d findings)", fs, len(fs))
	}
	port, err := freeport.Get("tcp")
	if err != nil {
		t.Fatal(err)
	}
	gone := s.target
	gone.Endpoint.Port = int(port)
	fs = dial(t, gone, lab.Options{}).Health(ctx, true)
	if len(fs) != 1 || fs[0].Check != "WinRM" || fs[0].Problem == "" || fs[0].Next == "" {
		t.Errorf("nothing listening: %+v", fs)
	}
}
