package sim

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim/kernel"
	"github.com/wfplab/wfplab/lab/sim/wsman"
)

// FuzzGuestLine: no command line makes a guest program panic or hang. The guest is not
// booted: the boot below has a kernel but no sockets, and shutdown requests find the guest
// "already going down".
func FuzzGuestLine(f *testing.F) {
	for _, s := range []string{
		`sc create x type= kernel start= demand binPath= C:\wfplab\x.sys`, `sc start x`, `sc qc x`, `sc query`, `sc delete x`,
		`sc create y type=kernel binPath= C:\y`, `reg add HKLM\SOFTWARE\x /v V /t REG_DWORD /d 0xffffffff /f`,
		`reg add HKLM\x /v V /t REG_BINARY /d zz`, `reg query HKLM\SOFTWARE /v`, `reg delete HKLM\SOFTWARE\x /va /f`,
		`certutil -f -decode C:\wfplab\a C:\wfplab\b`, `certutil -hashfile C:\Windows\System32\sc.exe SHA512`,
		`certutil -addstore Root C:\Windows\System32\sc.exe`, `certutil -encode C:\Windows\System32\sc.exe C:\e`,
		`wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart`, `shutdown /r /t 99999999999`, `shutdown /a`,
		`bcdedit /set {current} testsigning maybe`, `bcdedit /enum`, `wmic os get Caption,Version /value`, `wmic os get Nope`,
		`wmic cpu get x`, `hostname x`, `C:\wfplab\wfplab-agent.exe sample --interval-ms`, `C:\wfplab\wfplab-agent.exe reset`,
		`cmd /c "echo %COMPUTERNAME%"`, `cmd`, `C:\wfplab\other.exe`,
	} {
		f.Add(s)
	}
	o, _ := contract.LookupOS("win7-x64")
	g, err := NewMachine(MachineSpec{Name: "fuzz", OS: o}, testConfig())
	if err != nil {
		f.Fatal(err)
	}
	g.fs.SetFile(`C:\wfplab\wfplab-agent.exe`, buildPE(machineAMD64, false))
	g.fs.SetFile(`C:\wfplab\other.exe`, buildPE(machineAMD64, false))
	g.fs.SetFile(`C:\wfplab\x.sys`, buildPE(machineAMD64, true))
	k := kernel.New(kernel.Config{Arch: "x64", OSVersion: "6.1"})
	defer k.Close()
	b := &boot{n: 1, wall: time.Now(), mono: time.Now(), kern: k, down: make(chan struct{}), started: map[string]bool{}}
	f.Fuzz(func(t *testing.T, line string) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			g.run(ctx, b, wsman.Command{Line: line, Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%q did not return within 5s of its deadline", line)
		}
	})
}
