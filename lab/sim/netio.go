package sim

import "fmt"

// netioBuild is one netio.sys file the simulated guest can lay down, from KB979223's file
// tables: the release's own (GDR) file, which has the bug, and the hotfix's LDR file,
// which does not. The simulator decides from this table alone whether its kernel model
// leaks; it never asks the lab's client code, so a mistake there shows in a run.
type netioBuild struct {
	leaks bool
	fixed string // the KB979223 file that replaces this one; "" for a fixed file
}

var netioBuilds = map[string]netioBuild{
	"6.0.6001.18000": {leaks: true, fixed: "6.0.6001.22659"}, // Vista SP1 / 2008 RTM
	"6.0.6001.22659": {},
	"6.0.6002.18005": {leaks: true, fixed: "6.0.6002.22369"}, // Vista SP2 / 2008 SP2
	"6.0.6002.22369": {},
	"6.1.7600.16385": {leaks: true, fixed: "6.1.7600.20611"}, // 7 / 2008 R2 RTM
	"6.1.7600.20611": {},
}

// lookupNetio finds a netio.sys build; a version the simulator does not know is an error,
// never a guess in either direction.
func lookupNetio(version string) (netioBuild, error) {
	b, ok := netioBuilds[version]
	if !ok {
		return netioBuild{}, fmt.Errorf("sim: netio.sys %s is not a build the simulated guest knows (KB979223's file tables list 6.0.6001, 6.0.6002 and 6.1.7600)", version)
	}
	return b, nil
}

// agentDriverService is the service whose state the simulated agent reports, as the real
// agent's versions.c opens it by name.
const agentDriverService = "wfplabcallout"
