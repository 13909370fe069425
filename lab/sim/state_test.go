package sim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/kernel"
)

// TestStateSurvivesSaveAndLoad changes everything Windows keeps across a reboot, saves the
// state, loads it into a fresh guest (as the appliance does from its state disk after a real
// reboot) and checks it all came back, with what waited for the reboot in force.
func TestStateSurvivesSaveAndLoad(t *testing.T) {
	cfg := testConfig()
	cfg.ExtraNICs = []NIC{{MAC: net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0, 2}}}
	tg := startGuest(t, "win7-x64", cfg)
	tg.must(`netsh interface ipv4 set address name="Local Area Connection 2" static 198.51.100.1 255.255.255.0`)
	tg.must(`netsh interface ipv4 set interface "Local Area Connection 2" forwarding=enabled`)
	tg.must(`mkdir C:\wfplab`)
	tg.must(`echo kept > C:\wfplab\t.txt`)
	tg.must(`reg add HKLM\SOFTWARE\wfplab /v Kept /t REG_DWORD /d 7 /f`)
	tg.must(`sc create keptsvc type= own start= demand binPath= C:\wfplab\x.exe`)
	tg.must(`bcdedit /set testsigning on`)
	tg.must(`netsh advfirewall firewall add rule name="kept rule" dir=in action=allow protocol=UDP localport=7`)
	tg.must(`winrm set winrm/config @{MaxTimeoutms="1800000"}`)
	tg.must(`sc config WinRM start= auto`)
	name := tg.g.os.HotfixPackage
	tg.upload(`C:\wfplab\`+name, HotfixPackage(name))
	check(t, tg.run(`wusa C:\wfplab\`+name+` /quiet /norestart`), answer{"", "", 3010})
	tg.upload(`C:\wfplab\c.cer`, selfSignedCert(t, "wfplab state test"))
	tg.must(`certutil -addstore root C:\wfplab\c.cer`)
	state, err := tg.g.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := tg.g.SaveState(); !bytes.Equal(again, state) {
		t.Fatal("two saves of an unchanged machine differ: the appliance would rewrite its disk after every command")
	}

	o, _ := contract.LookupOS("win7-x64")
	g2, err := NewMachine(MachineSpec{Name: "win7-x64", OS: o}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.LoadState(state); err != nil {
		t.Fatal(err)
	}
	if err := g2.Start(netipZero); err != nil {
		t.Fatal(err)
	}
	tg2 := &tguest{t: t, g: g2}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g2.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	if n := g2.NICs()[1]; n.Addr.String() != "198.51.100.1/24" || !n.Forwarding {
		t.Errorf("NIC 2 after load: %+v; want its address and forwarding kept", n)
	}
	if a := tg2.must(`type C:\wfplab\t.txt`); a.out != "kept \r\n" {
		t.Fatalf("file after load: %q", a.out)
	}
	if a := tg2.must(`reg query HKLM\SOFTWARE\wfplab /v Kept`); !strings.Contains(a.out, "0x7") {
		t.Fatalf("registry after load: %q", a.out)
	}
	if a := tg2.must(`sc qc keptsvc`); !strings.Contains(a.out, `C:\wfplab\x.exe`) {
		t.Fatalf("service after load: %q", a.out)
	}
	if a := tg2.must(`netsh advfirewall firewall show rule name="kept rule"`); !strings.Contains(a.out, "LocalPort:                            7\r\n") {
		t.Fatalf("firewall rule after load: %q", a.out)
	}
	if a := tg2.must(`winrm get winrm/config`); !strings.Contains(a.out, "MaxTimeoutms = 1800000\r\n") {
		t.Fatalf("WinRM configuration after load: %q", a.out)
	}
	if a := tg2.must(`sc qc WinRM`); !strings.Contains(a.out, "AUTO_START") {
		t.Fatalf("WinRM start type after load: %q", a.out)
	}
	if a := tg2.must(`bcdedit /enum`); !strings.Contains(strings.ToLower(a.out), "testsigning             yes") {
		t.Fatalf("bcdedit after load: %q", a.out)
	}
	if !tg2.kern().Patched() {
		t.Fatal("the hotfix installed before the save is not in force after the load's boot")
	}
	if a := tg2.must(`certutil -addstore root C:\wfplab\c.cer`); !strings.Contains(a.out, "already in store") {
		t.Fatalf("certificate store after load: %q", a.out)
	}
	// The running state is the new boot's: nothing of the old one's services.
	if a := tg2.run(`sc query keptsvc`); !strings.Contains(a.out, "STOPPED") {
		t.Fatalf("service state after load: %q", a.out)
	}

	// A state of another OS is refused, and the guest keeps its own.
	o86, _ := contract.LookupOS("win7-x86")
	g3, err := NewMachine(MachineSpec{Name: "win7-x64", OS: o86}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := g3.LoadState(state); err == nil || !strings.Contains(err.Error(), "belongs to") {
		t.Fatalf("loading another OS's state: %v", err)
	}
	if err := g3.LoadState([]byte("garbage")); err == nil {
		t.Fatal("loading garbage succeeded")
	}
}

// TestHangWhenPoolPassesLimit leaks past HangPoolBytes and checks WinRM then holds requests
// (a timeout, not a refusal), while the guest is still up.
func TestHangWhenPoolPassesLimit(t *testing.T) {
	cfg := testConfig() // noise off: the pool moves only by leaks
	const nbl = 0x160   // win7-x86
	cfg.HangPoolBytes = kernel.BaselineBytes("6.1", "x86") + 20*nbl
	tg := startGuest(t, "win7-x86", cfg)
	tgt := installDriver(t, tg)
	tg.must(`ver`)
	for i := 0; i < 30; i++ { // 30 blocked chains of 8 NBLs leak 30 NBLs
		burst(t, tgt.Traffic.Stream, 8*1460)
	}
	time.Sleep(3 * hangCheckEvery)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ep := winrm.NewEndpoint(tgt.Endpoint.Host, tgt.Endpoint.Port, false, false, nil, nil, nil, 3*time.Second)
	c, err := winrm.NewClientWithParameters(ep, tgt.Creds.User, tgt.Creds.Password, winrm.NewParameters("PT2S", "en-US", 153600))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, _, err = c.RunWithContextWithString(ctx, "ver", "")
	if err == nil {
		t.Fatal("ver answered after the pool passed the hang limit")
	}
	if time.Since(start) < 2*time.Second {
		t.Fatalf("ver failed at once (%v) instead of hanging", err)
	}
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("ver failed with %v, want a timeout", err)
	}
	if !tg.g.Up() {
		t.Fatal("a hung guest is not down: Up must stay true")
	}
}
