package sim

import (
	"crypto/sha1"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/agentfmt"
)

// TestCommandsTable sends every line of COMMANDS.md through masterzen/winrm over HTTP and
// checks Windows' answer.
func TestCommandsTable(t *testing.T) {
	tg := startGuest(t, "win7-x64", testConfig())

	// #1, #2, #3, #23
	check(t, tg.run(`ver`), answer{"\r\nMicrosoft Windows [Version 6.1.7600]\r\n", "", 0})
	check(t, tg.run(`echo %PROCESSOR_ARCHITECTURE%`), answer{"AMD64\r\n", "", 0})
	bt := tg.must(`wmic os get LastBootUpTime /value`).out
	if !regexp.MustCompile(`^\r\r\n\r\r\nLastBootUpTime=\d{14}\.\d{6}\+000\r\r\n\r\r\n\r\r\n$`).MatchString(bt) {
		t.Fatalf("wmic output %q", bt)
	}
	m := bootTimeRe.FindStringSubmatch(bt)
	boot, err := time.Parse("20060102150405.000000", strings.TrimSuffix(m[1], "+000"))
	if err != nil || time.Since(boot) > time.Minute || time.Since(boot) < 0 {
		t.Fatalf("boot time %s (%v) is not just now", m[1], err)
	}
	check(t, tg.run(`hostname`), answer{"win7-x64\r\n", "", 0})
	check(t, tg.run(`echo hello world`), answer{"hello world\r\n", "", 0})
	check(t, tg.run(`exit 42`), answer{"", "", 42})
	check(t, tg.run(`foo bar`), answer{"", "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 1})

	// #4: twice, the second time the folder exists and `if not exist` skips mkdir.
	check(t, tg.run(`if not exist C:\wfplab mkdir C:\wfplab`), answer{"", "", 0})
	check(t, tg.run(`if not exist C:\wfplab mkdir C:\wfplab`), answer{"", "", 0})
	// #13 before the agent is there: "not recognized" with the full path.
	check(t, tg.run(`C:\wfplab\wfplab-agent.exe versions`),
		answer{"", "'C:\\wfplab\\wfplab-agent.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 1})

	// #5-#9 (the upload helper checks each answer and the SHA-1).
	agent := buildPE(machineAMD64, false)
	tg.upload(`C:\wfplab\wfplab-agent.exe`, agent)
	check(t, tg.run(`if exist C:\wfplab\wfplab-agent.exe.b64 del /f /q C:\wfplab\wfplab-agent.exe.b64`), answer{"", "", 0})

	// #13
	v := tg.must(`C:\wfplab\wfplab-agent.exe versions`).out
	if !regexp.MustCompile(`^V1 os_build=7600\.16385 os_version=6\.1 sp=0 arch=x64 netio=6\.1\.7600\.16385 tcpip=6\.1\.7600\.16385 fwpkclnt=6\.1\.7600\.16385 testsigning=off drv_service=absent boot_us=\d+\r\n$`).MatchString(v) {
		t.Fatalf("versions: %q", v)
	}

	// #10, #11
	check(t, tg.run(`bcdedit /set testsigning on`), answer{"The operation completed successfully.\r\n", "", 0})
	tg.upload(`C:\wfplab\wfplab-test.cer`, selfSignedCert(t, "wfplab test"))
	for _, store := range []string{"Root", "TrustedPublisher"} {
		check(t, tg.run(`certutil -addstore `+store+` C:\wfplab\wfplab-test.cer`), answer{
			store + "\r\nSignature matches Public Key\r\nCertificate \"wfplab test\" added to store.\r\nCertUtil: -addstore command completed successfully.\r\n", "", 0})
	}

	// #14 twice
	create := `sc create wfplabcallout type= kernel start= demand binPath= C:\wfplab\wfplabcallout.sys`
	check(t, tg.run(create), answer{"[SC] CreateService SUCCESS\r\n", "", 0})
	check(t, tg.run(create), answer{"[SC] CreateService FAILED 1073:\r\n\r\nThe specified service already exists.\r\n\r\n", "", 1073})

	// #15
	for _, l := range []string{
		`reg add HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v StreamPort /t REG_DWORD /d 49152 /f`,
		`reg add HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v ControlPort /t REG_DWORD /d 49153 /f`,
		`reg add HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v ForwardPrefix /t REG_SZ /d 127.0.0.1/32 /f`,
	} {
		check(t, tg.run(l), answer{"The operation completed successfully.\r\n\r\n", "", 0})
	}
	q := tg.must(`reg query HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters /v StreamPort`).out
	if !strings.Contains(q, "StreamPort    REG_DWORD    0xc000") {
		t.Fatalf("reg query: %q", q)
	}

	// #17 stopped, never started
	stopped := "\r\nSERVICE_NAME: wfplabcallout \r\n        TYPE               : 1  KERNEL_DRIVER  \r\n        STATE              : 1  STOPPED \r\n"
	if a := tg.must(`sc query wfplabcallout`); !strings.HasPrefix(a.out, stopped) || !strings.Contains(a.out, "WIN32_EXIT_CODE    : 1077  (0x435)") {
		t.Fatalf("sc query: %q", a.out)
	}
	// #16 with the driver missing, then unsigned: test signing is configured but not in force.
	if a := tg.run(`sc start wfplabcallout`); a.code != 2 || !strings.Contains(a.out, "[SC] StartService FAILED 2:") {
		t.Fatalf("start without the file: %+v", a)
	}
	tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineAMD64, true))
	a := tg.run(`sc start wfplabcallout`)
	if a.code != 577 || !strings.HasPrefix(a.out, "[SC] StartService FAILED 577:\r\n\r\nWindows cannot verify the digital signature for this file.") || !strings.HasSuffix(a.out, "\r\n\r\n") {
		t.Fatalf("start before test signing is in force: %+v", a)
	}
	// #18 not started
	check(t, tg.run(`sc stop wfplabcallout`), answer{"[SC] ControlService FAILED 1062:\r\n\r\nThe service has not been started.\r\n\r\n", "", 1062})

	// #20: wrong package name, not a cabinet, missing, then the real thing twice.
	pkgs := HotfixPackages()
	msu := mustRead(t, pkgs, "Windows6.1-KB979223-x64.msu")
	tg.upload(`C:\wfplab\Windows6.1-KB979223-x86.msu`, mustRead(t, pkgs, "Windows6.1-KB979223-x86.msu"))
	check(t, tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x86.msu /quiet /norestart`), answer{"", "", -2145124329})
	check(t, tg.run(`wusa C:\wfplab\missing.msu /quiet /norestart`), answer{"", "", 2})
	tg.upload(`C:\wfplab\Windows6.1-KB979223-x64.msu`, []byte("not a cabinet"))
	if a := tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart`); a.code == 0 || a.code == 3010 {
		t.Fatalf("a non-cabinet installed: %+v", a)
	}
	tg.upload(`C:\wfplab\Windows6.1-KB979223-x64.msu`, msu)
	check(t, tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart`), answer{"", "", 3010})
	check(t, tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart`), answer{"", "", 2359302})
	// Pending: netio in force is still stock.
	if v := tg.must(`C:\wfplab\wfplab-agent.exe versions`).out; !strings.Contains(v, " netio=6.1.7600.16385 ") {
		t.Fatalf("netio changed before the reboot: %q", v)
	}

	// #12, then the driver loads: test signing is in force now.
	tg.reboot()
	v = tg.must(`C:\wfplab\wfplab-agent.exe versions`).out
	if !strings.Contains(v, " netio=6.1.7600.20611 ") || !strings.Contains(v, " testsigning=on ") || !strings.Contains(v, " drv_service=stopped ") {
		t.Fatalf("after reboot: %q", v)
	}
	running := "\r\nSERVICE_NAME: wfplabcallout \r\n        TYPE               : 1  KERNEL_DRIVER  \r\n        STATE              : 4  RUNNING \r\n                                (STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n"
	check(t, tg.run(`sc start wfplabcallout`), answer{running + "        PID                : 0\r\n        FLAGS              : \r\n", "", 0})
	check(t, tg.run(`sc start wfplabcallout`), answer{"[SC] StartService FAILED 1056:\r\n\r\nAn instance of the service is already running.\r\n\r\n", "", 1056})
	check(t, tg.run(`sc query wfplabcallout`), answer{running, "", 0})
	if v := tg.must(`C:\wfplab\wfplab-agent.exe versions`).out; !strings.Contains(v, " drv_service=running ") {
		t.Fatalf("versions with the driver running: %q", v)
	}

	// #22
	zero := "L.stream=0,0,0,0,0,0,0,0,0,0 L.stream.multi_blocked=0 L.forward=0,0,0,0,0,0,0,0,0,0 L.forward.multi_blocked=0" +
		" L.transport=0,0,0,0,0,0,0,0,0,0 L.transport.multi_blocked=0"
	check(t, tg.run(`C:\wfplab\wfplab-agent.exe counters`), answer{"C1 drv=running " + zero + "\r\n", "", 0})
	check(t, tg.run(`C:\wfplab\wfplab-agent.exe reset`), answer{"C1 drv=running " + zero + "\r\n", "", 0})

	// #18, #19
	check(t, tg.run(`sc stop wfplabcallout`), answer{
		"\r\nSERVICE_NAME: wfplabcallout \r\n        TYPE               : 1  KERNEL_DRIVER  \r\n        STATE              : 1  STOPPED \r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n", "", 0})
	check(t, tg.run(`C:\wfplab\wfplab-agent.exe counters`), answer{"C1 drv=absent\r\n", "", 0})
	check(t, tg.run(`sc delete wfplabcallout`), answer{"[SC] DeleteService SUCCESS\r\n", "", 0})
	check(t, tg.run(`sc query wfplabcallout`), answer{"[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n", "", 1060})
	if a := tg.run(`sc start wfplabcallout`); a.code != 1060 {
		t.Fatalf("start a deleted service: %+v", a)
	}
	// Deleting the service took its Parameters key with it, as on Windows.
	if a := tg.run(`reg query HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters`); a.code != 1 {
		t.Fatalf("Parameters survived sc delete: %+v", a)
	}
}

func check(t *testing.T, got, want answer) {
	t.Helper()
	if got != want {
		t.Fatalf("\n got %#v\nwant %#v", got, want)
	}
}

func TestUploadErrors(t *testing.T) {
	tg := startGuest(t, "win7-x86", testConfig())
	tg.must(`mkdir C:\wfplab`)
	tg.must(`echo QUJD >> C:\wfplab\x.b64`)
	tg.must(`echo REVG >> C:\wfplab\x.b64`)
	check(t, tg.run(`certutil -f -decode C:\wfplab\x.b64 C:\wfplab\x`),
		answer{"Input Length = 14\r\nOutput Length = 6\r\nCertUtil: -decode command completed successfully.\r\n", "", 0})
	check(t, tg.run(`type C:\wfplab\x`), answer{"ABCDEF", "", 0})
	// Without -f an existing output is not replaced.
	check(t, tg.run(`certutil -decode C:\wfplab\x.b64 C:\wfplab\x`),
		answer{"CertUtil: -decode command FAILED: 0x80070050 (WIN32: 80 ERROR_FILE_EXISTS)\r\nCertUtil: The file exists.\r\n", "", -2147024816})
	tg.must(`echo !!notbase64 >> C:\wfplab\x.b64`)
	check(t, tg.run(`certutil -f -decode C:\wfplab\x.b64 C:\wfplab\y`),
		answer{"CertUtil: -decode command FAILED: 0x80090005 (-2146893819)\r\nCertUtil: Bad Data.\r\n", "", -2146893819})
	check(t, tg.run(`certutil -f -decode C:\wfplab\none.b64 C:\wfplab\y`),
		answer{"CertUtil: -decode command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\nCertUtil: The system cannot find the file specified.\r\n", "", -2147024894})
	check(t, tg.run(`certutil -hashfile C:\wfplab\none`),
		answer{"CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\nCertUtil: The system cannot find the file specified.\r\n", "", -2147024894})
	sum := sha1.Sum([]byte("ABCDEF"))
	var pairs []string
	for _, c := range sum {
		pairs = append(pairs, fmt.Sprintf("%02x", c))
	}
	check(t, tg.run(`certutil -hashfile C:\WFPLAB\X`),
		answer{"SHA1 hash of file C:\\WFPLAB\\X:\r\n" + strings.Join(pairs, " ") + "\r\nCertUtil: -hashfile command completed successfully.\r\n", "", 0})
	check(t, tg.run(`echo %PROCESSOR_ARCHITECTURE%`), answer{"x86\r\n", "", 0})
	check(t, tg.run(`c:/windows/system32/cmd.exe /c echo hi`), answer{"hi\r\n", "", 0})
	check(t, tg.run(`cmd /c "exit 3"`), answer{"", "", 3})

	// A larger upload in many chunks round-trips.
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tg.upload(`C:\wfplab\big.bin`, big)
}

func TestDriverLoading(t *testing.T) {
	t.Run("x64", func(t *testing.T) {
		tg := startGuest(t, "2008r2-x64", testConfig())
		tg.must(`mkdir C:\wfplab`)
		tg.must(`sc create wfplabcallout type= kernel start= demand binPath= C:\wfplab\wfplabcallout.sys`)
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineAMD64, false))
		// Unsigned, no test signing: 577.
		if a := tg.run(`sc start wfplabcallout`); a.code != 577 {
			t.Fatalf("unsigned: %+v", a)
		}
		// Signed (a certificate table) but test signing not in force: 577.
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineAMD64, true))
		if a := tg.run(`sc start wfplabcallout`); a.code != 577 {
			t.Fatalf("test-signed without test mode: %+v", a)
		}
		tg.must(`bcdedit /set testsigning on`)
		if a := tg.run(`sc start wfplabcallout`); a.code != 577 {
			t.Fatalf("test signing took effect before the reboot: %+v", a)
		}
		tg.reboot()
		// An x86 driver on x64: 193.
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineI386, true))
		check(t, tg.run(`sc start wfplabcallout`), answer{"[SC] StartService FAILED 193:\r\n\r\n%1 is not a valid Win32 application.\r\n\r\n", "", 193})
		// Unsigned x64 in test mode: still 577.
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineAMD64, false))
		if a := tg.run(`sc start wfplabcallout`); a.code != 577 {
			t.Fatalf("unsigned in test mode: %+v", a)
		}
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineAMD64, true))
		tg.must(`sc start wfplabcallout`)
		// A demand-start driver is stopped after a reboot.
		tg.reboot()
		if a := tg.must(`sc query wfplabcallout`); !strings.Contains(a.out, "STATE              : 1  STOPPED") {
			t.Fatalf("driver running after reboot: %q", a.out)
		}
	})
	t.Run("x86", func(t *testing.T) {
		tg := startGuest(t, "vista-sp1-x86", testConfig())
		tg.must(`mkdir C:\wfplab`)
		tg.must(`sc create wfplabcallout type= kernel start= demand binPath= C:\wfplab\wfplabcallout.sys`)
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineAMD64, true))
		if a := tg.run(`sc start wfplabcallout`); a.code != 193 {
			t.Fatalf("x64 driver on x86: %+v", a)
		}
		// x86 kernels do not enforce signing.
		tg.upload(`C:\wfplab\wfplabcallout.sys`, buildPE(machineI386, false))
		tg.must(`sc start wfplabcallout`)
		tg.upload(`C:\wfplab\not-pe.sys`, []byte("MZ but nothing else"))
		tg.must(`sc create other type= kernel start= demand binPath= C:\wfplab\not-pe.sys`)
		if a := tg.run(`sc start other`); a.code != 193 {
			t.Fatalf("non-PE driver: %+v", a)
		}
	})
}

func TestAgentChecks(t *testing.T) {
	tg := startGuest(t, "win7-x86", testConfig())
	tg.must(`mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineAMD64, false))
	if a := tg.run(`C:\wfplab\wfplab-agent.exe versions`); a.code != 216 || !strings.Contains(a.err, "is not compatible with the version of Windows") {
		t.Fatalf("x64 agent on x86: %+v", a)
	}
	tg.upload(`C:\wfplab\wfplab-agent.exe`, []byte("placeholder"))
	if a := tg.run(`C:\wfplab\wfplab-agent.exe versions`); a.code != 193 {
		t.Fatalf("non-PE agent: %+v", a)
	}
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineI386, false))
	a := tg.run(`C:\wfplab\wfplab-agent.exe bogus`)
	if a.code != 1 || !strings.HasPrefix(a.out, "E1 where=usage ") {
		t.Fatalf("usage error: %+v", a)
	}
	if v, err := agentfmt.ParseLine(strings.TrimRight(a.out, "\r\n")); err != nil {
		t.Fatalf("lab/agentfmt cannot parse %q: %v", a.out, err)
	} else if e, ok := v.(*agentfmt.AgentError); !ok || e.Where != "usage" || !strings.Contains(e.Msg, "unknown command bogus") {
		t.Fatalf("E1 parsed as %#v", v)
	}
	if a := tg.run(`C:\wfplab\wfplab-agent.exe sample --interval-ms 0`); a.code != 1 {
		t.Fatalf("interval 0: %+v", a)
	}
	// Relative to the folder, through cd, and through cmd /c.
	if a := tg.must(`cd /d C:\wfplab && wfplab-agent versions`); !strings.HasPrefix(a.out, "V1 ") {
		t.Fatalf("relative: %+v", a)
	}
	if a := tg.must(`cmd /c "C:\wfplab\wfplab-agent.exe versions"`); !strings.HasPrefix(a.out, "V1 ") {
		t.Fatalf("cmd /c: %+v", a)
	}
	// The agent's output redirected to a file lands there.
	tg.must(`C:\wfplab\wfplab-agent.exe versions > C:\wfplab\v.txt`)
	if a := tg.must(`type C:\wfplab\v.txt`); !strings.HasPrefix(a.out, "V1 os_build=7600.16385 ") {
		t.Fatalf("redirected: %+v", a)
	}
}

func TestVistaWusaAndWinRM11(t *testing.T) {
	tg := startGuest(t, "vista-sp2-x64", testConfig())
	check(t, tg.run(`ver`), answer{"\r\nMicrosoft Windows [Version 6.0.6002]\r\n", "", 0})
	tg.must(`mkdir C:\wfplab`)
	pkgs := HotfixPackages()
	tg.upload(`C:\wfplab\Windows6.1-KB979223-x64.msu`, mustRead(t, pkgs, "Windows6.1-KB979223-x64.msu"))
	check(t, tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet /norestart`), answer{"", "", 1})
	tg.upload(`C:\wfplab\Windows6.0-KB979223-x64.msu`, mustRead(t, pkgs, "Windows6.0-KB979223-x64.msu"))
	check(t, tg.run(`wusa C:\wfplab\Windows6.0-KB979223-x64.msu /quiet /norestart`), answer{"", "", 3010})
	check(t, tg.run(`wusa C:\wfplab\Windows6.0-KB979223-x64.msu /quiet /norestart`), answer{"", "", 1})
	tg.upload(`C:\wfplab\wfplab-agent.exe`, buildPE(machineI386, false)) // x86 agent on x64: WOW64
	tg.reboot()
	v := tg.must(`C:\wfplab\wfplab-agent.exe versions`).out
	if !strings.Contains(v, " netio=6.0.6002.22369 tcpip=6.0.6002.22369 fwpkclnt=6.0.6002.22369 ") || !strings.Contains(v, "os_build=6002.18005 os_version=6.0 sp=2 ") {
		t.Fatalf("6.0 after the hotfix: %q", v)
	}
}

func TestShutdownVariants(t *testing.T) {
	cfg := testConfig()
	cfg.ShutdownDelay = time.Second // answers must arrive before the guest goes down
	tg := startGuest(t, "win7-x64", cfg)
	check(t, tg.run(`shutdown /a`), answer{"", "win7-x64: Unable to abort the system shutdown because no shutdown was in progress.(1116)\r\n", 1116})
	check(t, tg.run(`shutdown /r /t 60`), answer{"", "", 0})
	check(t, tg.run(`shutdown /r /t 60`), answer{"", "win7-x64: A system shutdown has already been scheduled.(1190)\r\n", 1190})
	check(t, tg.run(`shutdown /a`), answer{"", "", 0})
	if tg.g.BootCount() != 1 {
		t.Fatal("rebooted")
	}
	// wusa /quiet without /norestart restarts the guest.
	tg.must(`mkdir C:\wfplab`)
	tg.upload(`C:\wfplab\Windows6.1-KB979223-x64.msu`, HotfixPackage("Windows6.1-KB979223-x64.msu"))
	check(t, tg.run(`wusa C:\wfplab\Windows6.1-KB979223-x64.msu /quiet`), answer{"", "", 3010})
	eventually(t, 15*time.Second, "the wusa restart", func() bool { return tg.g.BootCount() == 2 && tg.g.Up() })
	// While one reboot is under way a second shutdown answers 1115.
	check(t, tg.run(`shutdown /r /f /t 0`), answer{"", "", 0})
	check(t, tg.run(`shutdown /r /t 60`), answer{"", "win7-x64: A system shutdown is in progress.(1115)\r\n", 1115})
	eventually(t, 15*time.Second, "the third boot", func() bool { return tg.g.BootCount() == 3 && tg.g.Up() })
}

func TestFilesAndRegistryPersistAcrossReboots(t *testing.T) {
	tg := startGuest(t, "win7-x64", testConfig())
	tg.must(`mkdir C:\wfplab\deep\er`)
	tg.must(`echo kept > C:\wfplab\deep\er\file.txt`)
	tg.must(`reg add HKLM\SOFTWARE\wfplab /v Kept /t REG_DWORD /d 0x10 /f`)
	tg.reboot()
	check(t, tg.run(`type C:\wfplab\deep\er\file.txt`), answer{"kept \r\n", "", 0})
	if a := tg.must(`reg query HKLM\SOFTWARE\wfplab`); !strings.Contains(a.out, "Kept    REG_DWORD    0x10") {
		t.Fatalf("registry lost: %q", a.out)
	}
	if a := tg.run(`del C:\Windows\System32\drivers\netio.sys`); !strings.Contains(a.err, "Access is denied.") {
		t.Fatalf("system file deletable: %+v", a)
	}
	if a := tg.must(`type %windir%\System32\drivers\netio.sys`); !strings.Contains(a.out, "simulated") {
		t.Fatalf("netio stand-in: %+v", a)
	}
}
