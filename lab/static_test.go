package lab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
	"github.com/wfplab/wfplab/lab/contract"
)

func staticTraffic() contract.TrafficAddrs {
	return contract.TrafficAddrs{
		Stream:        netip.MustParseAddrPort("127.0.0.1:49152"),
		Forward:       netip.MustParseAddrPort("127.0.0.2:49154"),
		ForwardPrefix: netip.MustParsePrefix("127.0.0.2/32"),
		Control:       netip.MustParseAddrPort("127.0.0.1:49153"),
	}
}

func TestStaticProviderResolvesCredentials(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("file-secret\r\nignored second line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte("loose-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	ep := contract.Endpoint{Host: "127.0.0.1", Port: 5985}
	s := NewStatic(
		StaticTarget{Name: "a", OS: "win7-x64", Endpoint: ep, User: "vagrant", PasswordEnv: "WFPLAB_TEST_PW", Traffic: staticTraffic()},
		StaticTarget{Name: "b", OS: "vista-sp1-x86", Endpoint: ep, User: "vagrant", PasswordFile: pwFile, Traffic: staticTraffic()},
		StaticTarget{Name: "c", OS: "win9-x64", Endpoint: ep, User: "vagrant", PasswordEnv: "WFPLAB_TEST_PW", Traffic: staticTraffic()},
		StaticTarget{Name: "d", OS: "win7-x86", Endpoint: ep, User: "vagrant", PasswordFile: loose, Traffic: staticTraffic()},
		StaticTarget{Name: "e", OS: "win7-x86", Endpoint: ep, User: "vagrant", PasswordEnv: "WFPLAB_UNSET_PW", Traffic: staticTraffic()},
		StaticTarget{Name: "a", OS: "win7-x64", Endpoint: ep, User: "vagrant", PasswordEnv: "WFPLAB_TEST_PW", Traffic: staticTraffic()},
		StaticTarget{Name: "f", OS: "win7-x64", Endpoint: contract.Endpoint{Host: "127.0.0.1"}, User: "vagrant", PasswordEnv: "WFPLAB_TEST_PW"},
	)
	s.getenv = func(k string) string {
		if k == "WFPLAB_TEST_PW" {
			return "env-secret"
		}
		return ""
	}
	var p contract.Provider = s
	if p.Name() != "static" {
		t.Fatalf("name %q", p.Name())
	}
	targets, err := p.Up(context.Background())
	if len(targets) != 2 || targets[0].Name != "a" || targets[1].Name != "b" {
		t.Fatalf("targets %+v", targets)
	}
	if targets[0].Creds.Password != "env-secret" || targets[1].Creds.Password != "file-secret" {
		t.Fatalf("passwords not resolved: %q %q", targets[0].Creds.Password, targets[1].Creds.Password)
	}
	if targets[0].OS.Name != "win7-x64" || targets[1].OS.Arch != "x86" {
		t.Fatalf("OS not from the catalog: %+v %+v", targets[0].OS, targets[1].OS)
	}
	var merr *multierror.Error
	if !errors.As(err, &merr) || len(merr.Errors) != 5 {
		t.Fatalf("want a multierror with 5 entries (c, d, e, duplicate a, f), got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"c: unknown OS", "d: password file", "chmod 600", "e: environment variable WFPLAB_UNSET_PW", "a: the name is used", "f: endpoint port 0", "traffic addresses incomplete"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"env-secret", "file-secret", "loose-secret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error reveals %q", secret)
		}
	}
	if err := p.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestStaticProviderNeedsExactlyOnePasswordSource(t *testing.T) {
	base := StaticTarget{Name: "a", OS: "win7-x64", Endpoint: contract.Endpoint{Host: "127.0.0.1", Port: 5985}, User: "u", Traffic: staticTraffic()}
	none := base
	both := base
	both.PasswordEnv, both.PasswordFile = "X", "/nonexistent"
	for _, st := range []StaticTarget{none, both} {
		if _, err := NewStatic(st).Up(context.Background()); err == nil {
			t.Errorf("%+v accepted", st)
		}
	}
}

func TestDialChecksTarget(t *testing.T) {
	win7, _ := contract.LookupOS("win7-x64")
	good := contract.Target{Name: "g", OS: win7, Endpoint: contract.Endpoint{Host: "::1", Port: 5985}, Creds: contract.Credentials{User: "u", Password: "pw"}}
	g, err := Dial(good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Name() != "g" || g.Target().Endpoint.Port != 5985 {
		t.Fatalf("guest %s %+v", g.Name(), g.Target())
	}
	if g.opts.CommandTimeout != DefaultCommandTimeout || g.opts.RebootPoll != DefaultRebootPoll {
		t.Fatalf("defaults not applied: %+v", g.opts)
	}
	g.Close()
	if _, err := g.Run(context.Background(), "ver"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Run after Close: %v", err)
	}
	for _, bad := range []contract.Target{
		{OS: win7, Endpoint: good.Endpoint, Creds: good.Creds},
		{Name: "x", OS: win7, Endpoint: contract.Endpoint{Port: 5985}, Creds: good.Creds},
		{Name: "x", OS: win7, Endpoint: contract.Endpoint{Host: "h", Port: 70000}, Creds: good.Creds},
		{Name: "x", OS: win7, Endpoint: good.Endpoint},
		{Name: "x", Endpoint: good.Endpoint, Creds: good.Creds},
	} {
		if _, err := Dial(bad, Options{}); err == nil {
			t.Errorf("Dial(%+v) accepted", bad)
		}
	}
}

func TestRedaction(t *testing.T) {
	win7, _ := contract.LookupOS("win7-x64")
	var logged []string
	g, err := Dial(contract.Target{Name: "t", OS: win7, Endpoint: contract.Endpoint{Host: "127.0.0.1", Port: 1}, Creds: contract.Credentials{User: "u", Password: "hunter2"}},
		Options{Logf: func(f string, a ...any) { logged = append(logged, strings.TrimSpace(sprintf(f, a...))) }})
	if err != nil {
		t.Fatal(err)
	}
	err = g.errorf("guest said %q: %w", "password is hunter2", errors.New("cause hunter2"))
	if strings.Contains(err.Error(), "hunter2") || !strings.HasPrefix(err.Error(), "t: ") {
		t.Fatalf("error %q", err)
	}
	g.logf("echo %s", "hunter2")
	if len(logged) != 1 || strings.Contains(logged[0], "hunter2") || logged[0] != "t: echo <redacted>" {
		t.Fatalf("log %q", logged)
	}
	if s := sprintf("%v %+v %#v", g.target.Creds, g.target.Creds, g.target.Creds); strings.Contains(s, "hunter2") {
		t.Fatalf("credentials format as %q", s)
	}
}
