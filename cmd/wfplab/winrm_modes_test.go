package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/sim"
)

// staticTargetLine is one static target in flow style, with extra WinRM keys.
func staticTargetLine(name, extra string, n int) string {
	return "  - {name: " + name + ", os: win7-x64, host: 127.0.0." + string(rune('0'+n)) + ", port: 5986, stream_port: 49152, " +
		"control_port: 49153, forward_dest: 127.0.0." + string(rune('0'+n)) + ":9000, forward_prefix: 127.0.0." + string(rune('0'+n)) + "/32, " +
		"password_env: WFPLAB_TEST_PW, " + extra + "}\n"
}

// selfSignedPEM is a CA certificate in PEM.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// check validates the WinRM keys offline with file:line errors: auth's value when the
// scenario is read, ca_file's contents in the preflight.
func TestCheckWinRMKeys(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WFPLAB_TEST_PW", "secret")
	bad := writeFile(t, dir, "auth.yaml", "name: lab\nprovider: static\ntargets:\n"+
		staticTargetLine("a", "auth: kerberos, https: true", 1)+
		staticTargetLine("b", "ca_file: ca.pem", 2)+
		staticTargetLine("c", "https: true, insecure: true, ca_file: ca.pem", 3))
	code, _, stderr := runCLI(t, "check", bad)
	for _, want := range []string{
		"auth.yaml:4: targets[0].auth: must be one of basic, ntlm, got \"kerberos\"",
		"auth.yaml:5: targets[1].ca_file: only means something with https: true",
		"auth.yaml:6: targets[2].insecure: set either ca_file",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check does not say %q:\n%s", want, stderr)
		}
	}
	if code != exitFailure {
		t.Errorf("check: exit %d, want 2", code)
	}

	writeFile(t, dir, "good.pem", selfSignedPEM(t))
	writeFile(t, dir, "key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	writeFile(t, dir, "junk.pem", "not a certificate\n")
	sc := writeFile(t, dir, "ca.yaml", "name: lab\nprovider: static\ntargets:\n"+
		staticTargetLine("a", "auth: NTLM, https: true, ca_file: good.pem", 1)+
		staticTargetLine("b", "https: true, ca_file: missing.pem", 2)+
		staticTargetLine("c", "https: true, ca_file: key.pem", 3)+
		staticTargetLine("d", "https: true, ca_file: junk.pem", 4))
	code, stdout, stderr := runCLI(t, "check", sc)
	for _, want := range []string{
		"ca.yaml:5: targets[1].ca_file: target b: cannot read it",
		"ca.yaml:6: targets[2].ca_file: target c: " + dir + "/key.pem holds a PEM \"PRIVATE KEY\" block",
		"ca.yaml:7: targets[3].ca_file: target d: " + dir + "/junk.pem holds no PEM certificate",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "target a:") || code != exitFailure {
		t.Errorf("check: exit %d (want 2), and nothing about target a:\n%s\n%s", code, stdout, stderr)
	}
}

// serveGuestWith is serveGuest with the guest's configuration tweaked.
func serveGuestWith(t *testing.T, osName string, tweak func(*sim.Config)) servedGuest {
	t.Helper()
	return serveGuestCfg(t, osName, false, tweak)
}

// Users reach the WinRM modes through a static scenario and `sim serve`: a WinRM 2.0 guest
// and a WinRM 1.1 guest, both HTTPS-only with Basic off, pass check --live with auth: ntlm
// and their CA files; without the CA file the HTTPS row says what to give or set.
func TestCheckLiveHTTPSAndNTLM(t *testing.T) {
	dir := t.TempDir()
	guests := map[string]servedGuest{}
	for _, osName := range []string{"win7-x64", "2008-sp2-x64"} {
		ca := filepath.Join(dir, osName+"-ca.pem")
		guests[osName] = serveGuestWith(t, osName, func(c *sim.Config) {
			c.HTTPS, c.ServeCAFile, c.WinRMAuth = true, ca, "ntlm"
		})
	}
	target := func(osName, extra string) string {
		g := guests[osName]
		return fmt.Sprintf("  - {name: %s, os: %s, host: 127.0.0.1, port: %d, stream_port: %d, control_port: %d, "+
			"forward_dest: 127.0.0.1:%d, forward_prefix: 127.0.0.1/32, https: true, auth: ntlm%s}\n",
			osName, osName, g.winrm, g.stream, g.control, g.forward, extra)
	}
	t.Setenv("WFPLAB_USER", "")
	t.Setenv("WFPLAB_PASSWORD", "vagrant")
	sc := writeFile(t, dir, "lab.yaml", "name: lab\nprovider: static\nphases: [before]\ntargets:\n"+
		target("win7-x64", ", ca_file: win7-x64-ca.pem")+target("2008-sp2-x64", ", ca_file: 2008-sp2-x64-ca.pem"))
	code, stdout, stderr := runCLI(t, "check", "--live", sc)
	if code != exitOK || strings.Contains(stdout, "PROBLEM") {
		t.Fatalf("check --live over HTTPS and NTLM: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Log(stdout)
	for _, want := range []string{`win7-x64\s+credentials\s+user vagrant accepted`, `2008-sp2-x64\s+OS\s+Windows 6\.0`} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("no row matching %q:\n%s", want, stdout)
		}
	}

	sc = writeFile(t, dir, "noca.yaml", "name: lab\nprovider: static\nphases: [before]\ntargets:\n"+target("win7-x64", ""))
	code, stdout, stderr = runCLI(t, "check", "--live", sc)
	t.Log(stdout)
	if code == exitOK || !regexp.MustCompile(`win7-x64\s+HTTPS\s+https://127\.0\.0\.1:\d+/wsman\s+PROBLEM: the guest's HTTPS certificate is not trusted.*ca_file`).MatchString(stdout) {
		t.Errorf("check --live without ca_file: exit %d, want an HTTPS problem row\n%s\n%s", code, stdout, stderr)
	}
}
