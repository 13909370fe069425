package guest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stripSignature removes the Authenticode signature the way osslsigncode does; two
// builds of the same sources are equal after this even though each signature differs
// (a signing time, and possibly another test certificate).
func stripSignature(t *testing.T, signed string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "unsigned-"+filepath.Base(signed))
	if msg, err := run(t, time.Minute, "osslsigncode", "remove-signature", "-in", signed, "-out", out); err != nil {
		t.Fatalf("osslsigncode remove-signature %s: %v\n%s", signed, err, lastLines(msg, 20))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The committed binaries must be what the committed sources build: otherwise run
// `make -C guest dist` and commit guest/dist.
func TestDistMatchesFreshBuild(t *testing.T) {
	build := requireBuild(t)
	dir := guestDir(t)
	for _, arch := range Arches {
		for _, name := range []string{DriverFile, AgentFile} {
			t.Run(arch+"/"+name, func(t *testing.T) {
				distFile := filepath.Join(dir, "dist", arch, name)
				if _, err := os.Stat(distFile); err != nil {
					t.Fatalf("%v: run `make -C guest dist` and commit guest/dist", err)
				}
				got := stripSignature(t, distFile)
				want := stripSignature(t, filepath.Join(build, arch, name))
				if !bytes.Equal(got, want) {
					t.Fatalf("dist/%s/%s (sha256 %x unsigned) differs from a fresh build (%x): the sources changed; "+
						"run `make -C guest dist` and commit guest/dist", arch, name, sha256.Sum256(got), sha256.Sum256(want))
				}
			})
		}
	}
}

// The committed binaries pass the same structural checks as a fresh build, and each
// is signed by the certificate shipped beside it.
func TestDistBinaries(t *testing.T) {
	requireTools(t, "osslsigncode")
	dir := guestDir(t)
	for _, arch := range Arches {
		t.Run(arch, func(t *testing.T) {
			base := filepath.Join(dir, "dist", arch)
			der, err := os.ReadFile(filepath.Join(base, CertFile))
			if err != nil {
				t.Fatalf("%v: run `make -C guest dist` and commit guest/dist", err)
			}
			checkCert(t, "dist/"+arch+"/"+CertFile, der)
			driver := filepath.Join(base, DriverFile)
			checkDriver(t, driver, arch, "", openPE(t, driver))
			agent := filepath.Join(base, AgentFile)
			checkAgent(t, agent, arch, openPE(t, agent))
			verifySigned(t, driver, der)
			verifySigned(t, agent, der)
		})
	}
}

// Tools hands out exactly the committed files, and nothing for an unknown architecture.
func TestToolsServesDist(t *testing.T) {
	dir := guestDir(t)
	for _, arch := range Arches {
		agent, driver, cert, err := Tools(arch)
		if err != nil {
			t.Fatalf("Tools(%q): %v", arch, err)
		}
		for name, got := range map[string][]byte{AgentFile: agent, DriverFile: driver, CertFile: cert} {
			want, err := os.ReadFile(filepath.Join(dir, "dist", arch, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Tools(%q) %s differs from dist/%s/%s", arch, name, arch, name)
			}
		}
		if p := peMachineOf(t, driver); p != peMachine[arch] {
			t.Errorf("Tools(%q) driver machine %#x", arch, p)
		}
	}
	if _, _, _, err := Tools("ia64"); err == nil {
		t.Errorf("Tools(ia64) returned no error")
	}
	entries, err := fs.ReadDir(Dist(), "dist")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(Arches) {
		t.Errorf("dist/ has %d entries, want one folder per architecture %v", len(entries), Arches)
	}
}

func peMachineOf(t *testing.T, b []byte) uint16 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return openPE(t, path).file.FileHeader.Machine
}

// Keep the committed binaries small: they travel in git and, base64-encoded in
// 7600-character chunks, over WinRM to every guest.
func TestDistIsSmall(t *testing.T) {
	const limit = 64 << 10
	err := fs.WalkDir(Dist(), "dist", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > limit {
			return fmt.Errorf("%s is %d bytes, over %d", path, info.Size(), limit)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
