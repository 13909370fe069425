package lab_test

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// PE machine types (COFF header).
const (
	machineX86 = 0x14c
	machineX64 = 0x8664
)

// makePE builds a minimal PE image: DOS header with e_lfanew, "PE\0\0", a COFF header with
// the machine type, an optional header (PE32 for x86, PE32+ for x64) with 16 data
// directories, and, when signed, a certificate table entry (data directory 4) pointing at a
// WIN_CERTIFICATE appended at the end. pad adds pseudo-random bytes (seeded) so uploads of
// a few hundred KB are realistic and not trivially compressible.
func makePE(machine uint16, signed bool, pad int, seed uint64) []byte {
	const peOff = 0x80
	pe32plus := machine == machineX64
	optSize := 224 // PE32: 96 bytes + 16 directories * 8
	if pe32plus {
		optSize = 240 // PE32+: 112 + 16 * 8
	}
	headerEnd := peOff + 4 + 20 + optSize
	img := make([]byte, headerEnd+pad)
	copy(img, "MZ")
	binary.LittleEndian.PutUint32(img[0x3c:], peOff)
	copy(img[peOff:], "PE\x00\x00")
	coff := img[peOff+4:]
	binary.LittleEndian.PutUint16(coff[0:], machine)
	binary.LittleEndian.PutUint16(coff[2:], 0)                // sections
	binary.LittleEndian.PutUint16(coff[16:], uint16(optSize)) // SizeOfOptionalHeader
	binary.LittleEndian.PutUint16(coff[18:], 0x0002|0x2000)   // executable image, DLL (drivers are)
	opt := coff[20:]
	dirs := 96
	if pe32plus {
		binary.LittleEndian.PutUint16(opt[0:], 0x20b)
		binary.LittleEndian.PutUint32(opt[108:], 16) // NumberOfRvaAndSizes
		dirs = 112
	} else {
		binary.LittleEndian.PutUint16(opt[0:], 0x10b)
		binary.LittleEndian.PutUint32(opt[92:], 16)
	}
	binary.LittleEndian.PutUint16(opt[68:], 1) // Subsystem: native
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := headerEnd; i < len(img); i++ {
		img[i] = byte(r.Uint32())
	}
	if signed {
		cert := make([]byte, 8+64)
		binary.LittleEndian.PutUint32(cert[0:], uint32(len(cert))) // dwLength
		binary.LittleEndian.PutUint16(cert[4:], 0x0200)            // WIN_CERT_REVISION_2_0
		binary.LittleEndian.PutUint16(cert[6:], 0x0002)            // WIN_CERT_TYPE_PKCS_SIGNED_DATA
		for i := 8; i < len(cert); i++ {
			cert[i] = byte(r.Uint32())
		}
		// The security directory holds a file offset (not an RVA), 8-byte aligned.
		for len(img)%8 != 0 {
			img = append(img, 0)
		}
		off := len(img)
		img = append(img, cert...)
		// img may have moved: index it afresh. Directory 4 is the certificate table.
		dir := img[peOff+4+20+dirs+4*8:]
		binary.LittleEndian.PutUint32(dir[0:], uint32(off))
		binary.LittleEndian.PutUint32(dir[4:], uint32(len(cert)))
	}
	return img
}

// makeMSU is a stand-in hotfix package: a cabinet starts with "MSCF".
func makeMSU(size int, seed uint64) []byte {
	b := make([]byte, size)
	copy(b, "MSCF")
	r := rand.New(rand.NewPCG(seed, 0xcab))
	for i := 4; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// The builder is checked against the standard library's PE reader.
func TestMakePE(t *testing.T) {
	for _, c := range []struct {
		machine uint16
		signed  bool
	}{{machineX86, false}, {machineX86, true}, {machineX64, false}, {machineX64, true}} {
		img := makePE(c.machine, c.signed, 1000, 1)
		f, err := pe.NewFile(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("machine %#x: %v", c.machine, err)
		}
		if f.Machine != c.machine {
			t.Fatalf("machine %#x read as %#x", c.machine, f.Machine)
		}
		var sec pe.DataDirectory
		switch oh := f.OptionalHeader.(type) {
		case *pe.OptionalHeader32:
			sec = oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]
		case *pe.OptionalHeader64:
			sec = oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]
		default:
			t.Fatalf("machine %#x: optional header %T", c.machine, f.OptionalHeader)
		}
		if (sec.Size != 0) != c.signed || (c.signed && int(sec.VirtualAddress)+int(sec.Size) != len(img)) {
			t.Fatalf("machine %#x signed %v: certificate directory %+v, image %d bytes", c.machine, c.signed, sec, len(img))
		}
	}
}
