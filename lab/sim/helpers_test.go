package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/pe"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"
	"github.com/wfplab/wfplab/lab/contract"
)

var netipZero netip.AddrPort

// testConfig is a fast, quiet configuration: short reboots, noise off.
func testConfig() Config {
	return Config{Seed: 7, RebootDown: 300 * time.Millisecond}
}

type tguest struct {
	t *testing.T
	g *Machine
}

func startGuest(t *testing.T, osName string, cfg Config) *tguest {
	t.Helper()
	o, err := contract.LookupOS(osName)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewMachine(MachineSpec{Name: osName, OS: o}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(netipZero); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return &tguest{t: t, g: g}
}

func (tg *tguest) client() *winrm.Client {
	tg.t.Helper()
	tgt := tg.g.Target()
	host := tgt.Endpoint.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // the library puts the host into the URL as is
	}
	ep := winrm.NewEndpoint(host, tgt.Endpoint.Port, false, false, nil, nil, nil, 30*time.Second)
	c, err := winrm.NewClientWithParameters(ep, tgt.Creds.User, tgt.Creds.Password, winrm.NewParameters("PT20S", "en-US", 153600))
	if err != nil {
		tg.t.Fatal(err)
	}
	return c
}

type answer struct {
	out, err string
	code     int
}

// run sends one command line over WinRM, as the lab does.
func (tg *tguest) run(line string) answer {
	tg.t.Helper()
	a, err := tg.try(line)
	if err != nil {
		tg.t.Fatalf("%s: %v", line, err)
	}
	return a
}

// try is run that hands back a transport error.
func (tg *tguest) try(line string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, code, err := tg.client().RunWithContextWithString(ctx, line, "")
	return answer{out, errOut, code}, err
}

// must runs a line that has to succeed.
func (tg *tguest) must(line string) answer {
	tg.t.Helper()
	a := tg.run(line)
	if a.code != 0 {
		tg.t.Fatalf("%s: exit %d\nstdout %q\nstderr %q", line, a.code, a.out, a.err)
	}
	return a
}

// upload copies data to path the lab's way: folder, stale .b64 removed, echo chunks,
// certutil -decode, .b64 removed, SHA-1 checked.
func (tg *tguest) upload(path string, data []byte) {
	tg.t.Helper()
	dir := path[:strings.LastIndexByte(path, '\\')]
	b64 := path + ".b64"
	tg.must(fmt.Sprintf(`if not exist %s mkdir %s`, dir, dir))
	tg.must(fmt.Sprintf(`if exist %s del /f /q %s`, b64, b64))
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(len(enc), 7600)
		a := tg.must(fmt.Sprintf(`echo %s >> %s`, enc[:n], b64))
		if a.out != "" || a.err != "" {
			tg.t.Fatalf("echo answered %+v", a)
		}
		enc = enc[n:]
	}
	tg.must(fmt.Sprintf(`certutil -f -decode %s %s`, b64, path))
	tg.must(fmt.Sprintf(`del /f /q %s`, b64))
	a := tg.must(fmt.Sprintf(`certutil -hashfile %s`, path))
	sum := sha1.Sum(data)
	if got := hashFromOutput(a.out); got != hex.EncodeToString(sum[:]) {
		tg.t.Fatalf("uploaded %s: SHA-1 %s, want %x (output %q)", path, got, sum, a.out)
	}
}

var hashLine = regexp.MustCompile(`(?m)^([0-9a-fA-F]{2}( ?[0-9a-fA-F]{2}){19})\r?$`)

func hashFromOutput(out string) string {
	m := hashLine.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(m[1], " ", ""))
}

// buildPE makes a minimal PE image that debug/pe reads: headers only, no sections, and a
// certificate table (data directory 4) at the end of the file when signed.
func buildPE(machine uint16, signed bool) []byte {
	var b bytes.Buffer
	dos := make([]byte, 0x40)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 0x40)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	is64 := machine == pe.IMAGE_FILE_MACHINE_AMD64
	optSize := uint16(224)
	if is64 {
		optSize = 240
	}
	binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: machine, SizeOfOptionalHeader: optSize, Characteristics: 0x2102})
	certOff := uint32(b.Len()) + uint32(optSize)
	var dd [16]pe.DataDirectory
	if signed {
		dd[pe.IMAGE_DIRECTORY_ENTRY_SECURITY] = pe.DataDirectory{VirtualAddress: certOff, Size: 16}
	}
	if is64 {
		binary.Write(&b, binary.LittleEndian, pe.OptionalHeader64{Magic: 0x20b, Subsystem: 1, NumberOfRvaAndSizes: 16,
			SectionAlignment: 0x1000, FileAlignment: 0x200, SizeOfHeaders: 0x200, DataDirectory: dd})
	} else {
		binary.Write(&b, binary.LittleEndian, pe.OptionalHeader32{Magic: 0x10b, Subsystem: 1, NumberOfRvaAndSizes: 16,
			SectionAlignment: 0x1000, FileAlignment: 0x200, SizeOfHeaders: 0x200, DataDirectory: dd})
	}
	if signed {
		// WIN_CERTIFICATE: length, revision 0x0200, type PKCS_SIGNED_DATA, then (fake) data.
		binary.Write(&b, binary.LittleEndian, [2]uint32{16, 0x00020200})
		b.WriteString("fakepk7\x00")
	}
	return b.Bytes()
}

// selfSignedCert is a DER certificate with the given common name.
func selfSignedCert(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// refused reports whether a TCP connection to addr is refused now.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// eventually polls cond every 20 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var bootTimeRe = regexp.MustCompile(`LastBootUpTime=(\S+)`)

func (tg *tguest) bootTime() string {
	tg.t.Helper()
	m := bootTimeRe.FindStringSubmatch(tg.must(`wmic os get LastBootUpTime /value`).out)
	if m == nil {
		tg.t.Fatal("no LastBootUpTime")
	}
	return m[1]
}

// reboot sends the lab's reboot line and waits until the guest answers with a new boot time.
func (tg *tguest) reboot() {
	tg.t.Helper()
	before := tg.bootTime()
	addr := tg.g.Target().Endpoint
	// As the lab does, a transport error on the shutdown command itself is accepted: on a
	// loaded machine the guest may go down before the client collected the answer.
	// TestRebootAnswersBeforeGoingDown holds the answer itself to exit 0.
	if a, err := tg.try(`shutdown /r /f /t 0`); err == nil && (a.code != 0 || a.out != "" || a.err != "") {
		tg.t.Fatalf("shutdown answered %+v", a)
	}
	hostPort := net.JoinHostPort(addr.Host, fmt.Sprint(addr.Port))
	eventually(tg.t, 5*time.Second, "WinRM to refuse connections", func() bool { return refused(hostPort) })
	eventually(tg.t, 10*time.Second, "WinRM to come back", func() bool { return !refused(hostPort) })
	if after := tg.bootTime(); after == before {
		tg.t.Fatalf("boot time unchanged after reboot: %s", after)
	}
}

func mustRead(t *testing.T, fsys fs.FS, name string) []byte {
	t.Helper()
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// waitServed waits (15 s at most) for a cancelled Serve to return without error.
func waitServed(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return")
	}
}
