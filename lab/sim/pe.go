package sim

import (
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
)

const (
	machineI386  = pe.IMAGE_FILE_MACHINE_I386  // 0x14c
	machineAMD64 = pe.IMAGE_FILE_MACHINE_AMD64 // 0x8664
)

// peImage is what the loader looks at in an uploaded binary.
type peImage struct {
	machine uint16
	// signed: the certificate table (data directory 4, IMAGE_DIRECTORY_ENTRY_SECURITY) is
	// non-empty and lies inside the file. The model does not verify the Authenticode blob:
	// every signature counts as a test signature (the lab has no production-signed driver).
	signed bool
}

// inspectPE reads the PE headers of data. Anything that is not a PE image is an error.
func inspectPE(data []byte) (peImage, error) {
	if len(data) < 2 || data[0] != 'M' || data[1] != 'Z' {
		return peImage{}, errors.New("no MZ header")
	}
	f, err := pe.NewFile(bytes.NewReader(data))
	if err != nil {
		return peImage{}, fmt.Errorf("not a PE image: %w", err)
	}
	defer f.Close()
	img := peImage{machine: f.Machine}
	var dirs []pe.DataDirectory
	var count uint32
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		dirs, count = oh.DataDirectory[:], oh.NumberOfRvaAndSizes
	case *pe.OptionalHeader64:
		dirs, count = oh.DataDirectory[:], oh.NumberOfRvaAndSizes
	default:
		return peImage{}, errors.New("no optional header")
	}
	const security = pe.IMAGE_DIRECTORY_ENTRY_SECURITY
	if count > security && int(security) < len(dirs) {
		d := dirs[security]
		// For this directory VirtualAddress is a file offset.
		img.signed = d.Size > 0 && d.VirtualAddress > 0 && uint64(d.VirtualAddress)+uint64(d.Size) <= uint64(len(data))
	}
	return img, nil
}
