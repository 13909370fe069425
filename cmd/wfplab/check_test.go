package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/internal/freeport"
)

// check --live asks each guest and gives a table with a next step per problem: a guest
// already patched and one that does not answer, against a healthy sim run.
func TestCheckLiveAsksEachGuest(t *testing.T) {
	code, stdout, stderr := runCLI(t, "check", "--live", "kb979223")
	if code != exitOK || strings.Count(stdout, " ok ") < 42 || strings.Contains(stdout, "PROBLEM") {
		t.Fatalf("check --live of the built-in scenario: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`win7-x64\s+netio.sys\s+6\.1\.7600\.16385, KB979223 unpatched\s+ok`).MatchString(stdout) {
		t.Errorf("no netio.sys row:\n%s", stdout)
	}

	dir := t.TempDir()
	patched := serveGuest(t, "win7-x64", true)
	closed, err := freeport.Get("tcp")
	if err != nil {
		t.Fatal(err)
	}
	target := func(name, os string, winrm, stream, control, forward uint16) string {
		return fmt.Sprintf("  - {name: %s, os: %s, host: 127.0.0.1, port: %d, stream_port: %d, control_port: %d, forward_dest: 127.0.0.1:%d, forward_prefix: 127.0.0.1/32}\n",
			name, os, winrm, stream, control, forward)
	}
	sc := writeFile(t, dir, "lab.yaml", "name: lab\nprovider: static\nphases: [before]\ntargets:\n"+
		target("patched", "win7-x64", patched.winrm, patched.stream, patched.control, patched.forward)+
		target("gone", "vista-sp1-x86", closed, 5001, 5002, 5003))
	t.Setenv("WFPLAB_USER", "")
	t.Setenv("WFPLAB_PASSWORD", "vagrant")
	code, stdout, stderr = runCLI(t, "check", "--live", sc)
	if code != exitFailure {
		t.Errorf("exit %d, want 2\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		`patched\s+netio.sys\s+6\.1\.7600\.20611, KB979223 patched\s+PROBLEM: already patched: phase before would stop with ALREADY_PATCHED\s+revert the guest`,
		`patched\s+free disk\s+\d+ MiB on C:\s+ok`,
		`gone\s+WinRM\s+127\.0\.0\.1:` + fmt.Sprint(closed) + `\s+PROBLEM: no answer: .*connection refused\s+start the guest`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("no row matching %q:\n%s", want, stdout)
		}
	}
	if strings.Index(stdout, "patched  ") > strings.Index(stdout, "gone  ") {
		t.Errorf("rows not in the scenario's order:\n%s", stdout)
	}
}
