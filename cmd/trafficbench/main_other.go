//go:build !linux

// Command bench measures the traffic generator; it needs Linux (sendmmsg, UDP_SEGMENT, rusage).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: the traffic benchmark runs on Linux only")
	os.Exit(2)
}
