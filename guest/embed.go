package guest

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

// dist holds the signed binaries `make -C guest dist` copied from build/; they are
// committed so that a machine with only Go can run the lab.
//
//go:embed dist
var dist embed.FS

// Arches are the guest architectures there are tools for.
var Arches = []string{"x86", "x64"}

// File names inside the guest tools, the same in dist/<arch>/ and build/<arch>/.
const (
	AgentFile  = "wfplab-agent.exe"
	DriverFile = "wfplabcallout.sys"
	CertFile   = "wfplab-test.cer"
)

// Tools returns the agent, the callout driver and the DER certificate that signed them,
// for arch "x86" or "x64".
func Tools(arch string) (agent, driver, cert []byte, err error) {
	known := false
	for _, a := range Arches {
		known = known || a == arch
	}
	if !known {
		return nil, nil, nil, fmt.Errorf("guest: no tools for architecture %q (have %v)", arch, Arches)
	}
	read := func(name string) ([]byte, error) {
		b, err := fs.ReadFile(dist, path.Join("dist", arch, name))
		if err != nil {
			return nil, fmt.Errorf("guest: embedded %s/%s is missing (run `make -C guest dist` and commit guest/dist): %w", arch, name, err)
		}
		return b, nil
	}
	if agent, err = read(AgentFile); err != nil {
		return nil, nil, nil, err
	}
	if driver, err = read(DriverFile); err != nil {
		return nil, nil, nil, err
	}
	if cert, err = read(CertFile); err != nil {
		return nil, nil, nil, err
	}
	return agent, driver, cert, nil
}

// Dist is the embedded dist/ tree (dist/<arch>/<file>), read-only.
func Dist() fs.FS { return dist }
