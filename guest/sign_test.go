package guest

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkCert holds the test certificate to what Vista and unpatched 7 / 2008 R2 accept:
// RSA, signed with SHA-1, for code signing.
func checkCert(t *testing.T, name string, der []byte) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%s: not a DER certificate: %v", name, err)
	}
	if cert.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Errorf("%s: signed with %v, want SHA1-RSA", name, cert.SignatureAlgorithm)
	}
	if cert.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("%s: %v key, want RSA", name, cert.PublicKeyAlgorithm)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) {
		t.Errorf("%s: no codeSigning extended key usage (%v)", name, cert.ExtKeyUsage)
	}
	// Valid from before Vista's release (November 2006), so a guest with an old clock does
	// not find it not yet valid, until long after any run.
	if oldest := time.Date(2006, 1, 1, 0, 0, 0, 0, time.UTC); cert.NotBefore.After(oldest) {
		t.Errorf("%s: valid from %s, want on or before %s (make it with openssl ca -selfsign -startdate)", name,
			cert.NotBefore.Format(time.DateOnly), oldest.Format(time.DateOnly))
	}
	if cert.NotAfter.Before(time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("%s: valid only until %s", name, cert.NotAfter.Format(time.DateOnly))
	}
	if cert.Subject.CommonName != "wfplab test" {
		t.Errorf("%s: subject CN %q, want \"wfplab test\" (certutil -addstore reports that name)", name, cert.Subject.CommonName)
	}
	return cert
}

// verifySigned runs `osslsigncode verify` against the shipped certificate and wants a
// valid Authenticode signature with a SHA-1 message digest.
func verifySigned(t *testing.T, file string, der []byte) {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, time.Minute, "osslsigncode", "verify", "-CAfile", caFile, "-in", file)
	if err != nil {
		t.Errorf("osslsigncode verify %s: %v\n%s", file, err, lastLines(out, 20))
		return
	}
	if !regexp.MustCompile(`(?m)^Message digest algorithm\s*:\s*SHA1\s*$`).MatchString(out) {
		t.Errorf("%s: signature digest is not SHA-1:\n%s", file, lastLines(out, 30))
	}
	if !strings.Contains(out, "Signature verification: ok") {
		t.Errorf("%s: signature does not verify against its certificate:\n%s", file, lastLines(out, 30))
	}
}

func TestBuiltBinariesAreSignedWithSHA1(t *testing.T) {
	build := requireBuild(t)
	for _, arch := range Arches {
		t.Run(arch, func(t *testing.T) {
			der, err := os.ReadFile(filepath.Join(build, arch, CertFile))
			if err != nil {
				t.Fatal(err)
			}
			checkCert(t, arch+"/"+CertFile, der)
			for _, name := range []string{DriverFile, AgentFile} {
				path := filepath.Join(build, arch, name)
				if p := openPE(t, path); p.dir(4).Size == 0 {
					t.Errorf("%s: empty certificate table (data directory 4)", path)
				}
				verifySigned(t, path, der)
			}
		})
	}
}

// The signature check must be able to fail: a changed byte breaks the digest, and
// the checksum check sees it too.
func TestTamperedDriverFailsVerification(t *testing.T) {
	build := requireBuild(t)
	raw, err := os.ReadFile(filepath.Join(build, "x64", DriverFile))
	if err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile(filepath.Join(build, "x64", CertFile))
	if err != nil {
		t.Fatal(err)
	}
	tampered := slices.Clone(raw)
	tampered[0x400] ^= 0xff // first byte of .text
	path := filepath.Join(t.TempDir(), DriverFile)
	if err := os.WriteFile(path, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	p := openPE(t, path)
	if peChecksum(p.raw, p.checksumAt) == p.checksum {
		t.Errorf("checksum unchanged after tampering")
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, time.Minute, "osslsigncode", "verify", "-CAfile", caFile, "-in", path)
	if strings.Contains(out, "Signature verification: ok") && !strings.Contains(out, "MISMATCH") {
		t.Errorf("osslsigncode accepted a tampered driver:\n%s", lastLines(out, 20))
	}
}
