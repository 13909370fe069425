//go:build !linux

package appliance

import (
	"fmt"
	"os"
)

// Booted reports whether this process is the appliance's /init: never outside Linux.
func Booted() bool { return false }

// Init is /init of the appliance; the appliance is a Linux VM, so elsewhere it only says so.
func Init() {
	fmt.Fprintln(os.Stderr, "wfplab appliance: /init runs only inside the Linux appliance VM")
	os.Exit(1)
}
