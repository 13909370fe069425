package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func parseDurationForTest(s string) (time.Duration, error) { return time.ParseDuration(s) }

// Outputs as COMMANDS.md shows Windows printing them.
func TestParseVer(t *testing.T) {
	cases := map[string][2]string{
		"\r\nMicrosoft Windows [Version 6.1.7600]\r\n":    {"6.1", "7600"},
		"\r\nMicrosoft Windows [Version 6.0.6001]\r\n":    {"6.0", "6001"},
		"\r\nMicrosoft Windows [Version 6.0.6002]\r\n":    {"6.0", "6002"},
		"Microsoft Windows [Version 10.0.19045.3693]\r\n": {"10.0", "19045"},
	}
	for out, want := range cases {
		v, b, err := parseVer(out)
		if err != nil || v != want[0] || b != want[1] {
			t.Errorf("parseVer(%q) = %q, %q, %v; want %v", out, v, b, err, want)
		}
	}
	if _, _, err := parseVer("'ver' is not recognized"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestParseArch(t *testing.T) {
	for out, want := range map[string]string{"AMD64\r\n": "x64", "x86\r\n": "x86", "X86": "x86"} {
		if got, err := parseArch(out); err != nil || got != want {
			t.Errorf("parseArch(%q) = %q, %v; want %q", out, got, err, want)
		}
	}
	if _, err := parseArch("IA64\r\n"); err == nil || !strings.Contains(err.Error(), "Itanium") {
		t.Errorf("IA64: %v", err)
	}
	if _, err := parseArch("%PROCESSOR_ARCHITECTURE%\r\n"); err == nil {
		t.Error("unexpanded variable accepted")
	}
}

func TestParseBootTime(t *testing.T) {
	out := "\r\r\n\r\r\nLastBootUpTime=20261128063012.500000+000\r\r\n\r\r\n\r\r\n"
	if got, err := parseBootTime(out); err != nil || got != "20261128063012.500000+000" {
		t.Fatalf("parseBootTime = %q, %v", got, err)
	}
	if _, err := parseBootTime("\r\r\nNo Instance(s) Available.\r\r\n"); err == nil {
		t.Fatal("no LastBootUpTime accepted")
	}
}

func TestParseHashFile(t *testing.T) {
	const want = "4e1a0b9f8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"
	spaced := "4e 1a 0b 9f 8c 7d 6e 5f 4a 3b 2c 1d 0e 9f 8a 7b 6c 5d 4e 3f"
	for _, out := range []string{
		"SHA1 hash of file C:\\wfplab\\NAME:\r\n" + spaced + "\r\nCertUtil: -hashfile command completed successfully.\r\n",
		"SHA1 hash of C:\\wfplab\\NAME:\r\n" + strings.ToUpper(want) + "\r\nCertUtil: -hashfile command completed successfully.\r\n",
	} {
		if got, err := parseHashFile(out); err != nil || got != want {
			t.Errorf("parseHashFile(%q) = %q, %v", out, got, err)
		}
	}
	missing := "CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\nCertUtil: The system cannot find the file specified.\r\n"
	if _, err := parseHashFile(missing); err == nil {
		t.Error("failure output accepted")
	}
}

func TestParseSC(t *testing.T) {
	running := "\r\nSERVICE_NAME: wfplabcallout \r\n        TYPE               : 1  KERNEL_DRIVER  \r\n        STATE              : 4  RUNNING \r\n                                (STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n"
	if n, name, err := parseSCState(running); err != nil || n != scRunning || name != "RUNNING" {
		t.Errorf("running: %d %q %v", n, name, err)
	}
	stopped := "SERVICE_NAME: wfplabcallout\r\n        STATE              : 1  STOPPED\r\n"
	if n, name, err := parseSCState(stopped); err != nil || n != scStopped || name != "STOPPED" {
		t.Errorf("stopped: %d %q %v", n, name, err)
	}
	if _, _, err := parseSCState("[SC] OpenService FAILED 1060:\r\n"); err == nil {
		t.Error("no STATE accepted")
	}
	for out, want := range map[string]struct {
		code int
		msg  string
	}{
		"[SC] StartService FAILED 577:\r\n\r\nWindows cannot verify the digital signature for this file. ...\r\n\r\n": {577, "Windows cannot verify the digital signature for this file. ..."},
		"[SC] CreateService FAILED 1073:\r\n\r\nThe specified service already exists.\r\n\r\n":                        {1073, "The specified service already exists."},
		"[SC] StartService FAILED 193:\r\n\r\n%1 is not a valid Win32 application.\r\n\r\n":                           {193, "%1 is not a valid Win32 application."},
	} {
		code, msg, ok := scFailure(out)
		if !ok || code != want.code || msg != want.msg {
			t.Errorf("scFailure(%q) = %d, %q, %v", out, code, msg, ok)
		}
	}
	if _, _, ok := scFailure("[SC] CreateService SUCCESS\r\n"); ok {
		t.Error("success read as a failure")
	}
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }
