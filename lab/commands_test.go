package lab

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The lines below are COMMANDS.md's: the lab must send exactly these, and the table must
// still show each of them.
func TestCommandLinesMatchCommandsMD(t *testing.T) {
	doc, err := os.ReadFile("COMMANDS.md")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ got, want string }{
		{cmdVer, `ver`},
		{cmdArch, `echo %PROCESSOR_ARCHITECTURE%`},
		{cmdBootTime, `wmic os get LastBootUpTime /value`},
		{fmt.Sprintf(fmtMkdir, GuestDir, GuestDir), `if not exist C:\wfplab mkdir C:\wfplab`},
		{fmt.Sprintf(fmtClearStale, `C:\wfplab\NAME.b64`, `C:\wfplab\NAME.b64`), `if exist C:\wfplab\NAME.b64 del /f /q C:\wfplab\NAME.b64`},
		{fmt.Sprintf(fmtAppendChunk, "CHUNK", `C:\wfplab\NAME.b64`), `echo CHUNK >> C:\wfplab\NAME.b64`},
		{fmt.Sprintf(fmtDecode, `C:\wfplab\NAME.b64`, `C:\wfplab\NAME`), `certutil -f -decode C:\wfplab\NAME.b64 C:\wfplab\NAME`},
		{fmt.Sprintf(fmtDelete, `C:\wfplab\NAME.b64`), `del /f /q C:\wfplab\NAME.b64`},
		{fmt.Sprintf(fmtHashFile, `C:\wfplab\NAME`), `certutil -hashfile C:\wfplab\NAME`},
		{cmdTestSigningOn, `bcdedit /set testsigning on`},
		{fmt.Sprintf(fmtAddStore, "Root", CertPath), `certutil -addstore Root C:\wfplab\wfplab-test.cer`},
		{fmt.Sprintf(fmtAddStore, "TrustedPublisher", CertPath), `certutil -addstore TrustedPublisher C:\wfplab\wfplab-test.cer`},
		{cmdReboot, `shutdown /r /f /t 0`},
		{cmdInventory, `C:\wfplab\wfplab-agent.exe versions`},
		{cmdCreateService, `sc create wfplabcallout type= kernel start= demand binPath= C:\wfplab\wfplabcallout.sys`},
		{fmt.Sprintf(fmtRegDword, regStreamPort, 49152), `reg add HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v StreamPort /t REG_DWORD /d 49152 /f`},
		{fmt.Sprintf(fmtRegDword, regControlPort, 49153), `reg add HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v ControlPort /t REG_DWORD /d 49153 /f`},
		{fmt.Sprintf(fmtRegSz, regForwardPrefix, "127.0.0.1/32"), `reg add HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v ForwardPrefix /t REG_SZ /d 127.0.0.1/32 /f`},
		{cmdStartDriver, `sc start wfplabcallout`},
		{cmdQueryDriver, `sc query wfplabcallout`},
		{cmdStopDriver, `sc stop wfplabcallout`},
		{cmdDeleteDriver, `sc delete wfplabcallout`},
		{fmt.Sprintf(fmtWusa, `C:\wfplab\Windows6.1-KB979223-x64.msu`), `wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart`},
		{fmt.Sprintf(fmtSample, 100), `C:\wfplab\wfplab-agent.exe sample --interval-ms 100`},
		{cmdCounters, `C:\wfplab\wfplab-agent.exe counters`},
		{cmdCountersReset, `C:\wfplab\wfplab-agent.exe reset`},
		{fmt.Sprintf(fmtDriverMode, "permit"), `C:\wfplab\wfplab-agent.exe mode permit`},
		{fmt.Sprintf(fmtDriverMode, "block"), `C:\wfplab\wfplab-agent.exe mode block`},
		{cmdGetmac, `getmac /fo csv /nh /v`},
		{fmt.Sprintf(fmtNetshAddress, "Local Area Connection 2", "198.51.100.1", mask(24)), `netsh interface ipv4 set address name="Local Area Connection 2" static 198.51.100.1 255.255.255.0`},
		{fmt.Sprintf(fmtNetshForwarding, "Local Area Connection 2"), `netsh interface ipv4 set interface "Local Area Connection 2" forwarding=enabled`},
		{fmt.Sprintf(fmtTaskCreate, `C:\wfplab\Windows6.1-KB979223-x64.msu`), `schtasks /create /tn wfplab-kb979223 /ru SYSTEM /sc once /st 00:00 /f /tr "%SystemRoot%\System32\wusa.exe C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart"`},
		{cmdTaskRun, `schtasks /run /tn wfplab-kb979223`},
		{cmdTaskQuery, `schtasks /query /tn wfplab-kb979223 /fo list /v`},
		{cmdTaskDelete, `schtasks /delete /tn wfplab-kb979223 /f`},
		{cmdIPEnableRouter, `reg add HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters /v IPEnableRouter /t REG_DWORD /d 1 /f`},
		{cmdNetioVersion, `wmic datafile where name="C:\\Windows\\System32\\drivers\\netio.sys" get Version /value`},
		{cmdFreeDisk, `wmic logicaldisk where "DeviceID='C:'" get FreeSpace /value`},
		{cmdBootConfig, `bcdedit /enum {current}`},
		{cmdGroupFragments, `netsh interface ipv4 set global groupforwardedfragments=enabled`},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
		if !strings.Contains(string(doc), "`"+c.want+"`") {
			t.Errorf("COMMANDS.md does not show the line %s", c.want)
		}
	}
}

func TestUploadChunksFitCmdLine(t *testing.T) {
	for _, path := range []string{`C:\wfplab\wfplab-agent.exe.b64`, `C:\` + strings.Repeat("d", 700) + `\x.b64`} {
		n := chunkSize(path)
		if n%4 != 0 || n > maxChunk || n <= 0 {
			t.Fatalf("%d-char path: chunk size %d", len(path), n)
		}
		line := fmt.Sprintf(fmtAppendChunk, strings.Repeat("A", n), path)
		if len(line) > maxCommandLine {
			t.Fatalf("%d-char path: echo line is %d characters, over %d", len(path), len(line), maxCommandLine)
		}
	}
	if n := chunkSize(`C:\wfplab\NAME.b64`); n != maxChunk {
		t.Fatalf("short path: chunk size %d, want %d", n, maxChunk)
	}
	chunks := chunkBase64(strings.Repeat("A", 10)+"==", 4)
	if strings.Join(chunks, "") != strings.Repeat("A", 10)+"==" || len(chunks) != 3 || chunks[2] != "AA==" {
		t.Fatalf("chunks %q", chunks)
	}
	for _, c := range chunks[:len(chunks)-1] {
		if strings.Contains(c, "=") {
			t.Fatalf("padding in a chunk before the last: %q", chunks)
		}
	}
}

func TestGuestPathRule(t *testing.T) {
	for _, ok := range []string{`C:\wfplab\wfplab-agent.exe`, `c:\x`, `D:\a\b_c\d-e.f`} {
		if !guestPathRE.MatchString(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{`C:\`, `C:\a b`, `C:\a&b`, `C:\a>b`, `\\server\share\x`, `C:/x`, `x`, `C:\a\`, `C:\a|b`, `C:\%x%`, `C:\a"b`} {
		if guestPathRE.MatchString(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWsmanDuration(t *testing.T) {
	cases := map[string]string{"60s": "PT60S", "1ms": "PT1S", "0s": "PT1S", "1500ms": "PT2S", "5m": "PT300S"}
	for in, want := range cases {
		d, _ := parseDurationForTest(in)
		if got := wsmanDuration(d); got != want {
			t.Errorf("wsmanDuration(%s) = %s, want %s", in, got, want)
		}
	}
}
