package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/internal/freeport"
)

// Traffic that reached nothing exits 2 with the reason: a UDP port nobody listens on, a
// TCP port that refuses every connection.
func TestTrafficThatDeliveredNothingFails(t *testing.T) {
	for _, tc := range []struct{ profile, network, want string }{
		{"single-nbl", "udp", "refused"},
		{"stream-burst", "tcp", "nothing was sent: ECONNREFUSED"},
	} {
		port, err := freeport.Get(tc.network)
		if err != nil {
			t.Fatal(err)
		}
		to := fmt.Sprintf("127.0.0.1:%d", port)
		code, stdout, stderr := runCLI(t, "traffic", "--profile", tc.profile, "--to", to, "--rate", "2000", "--duration", "1s", "--quiet")
		if code != exitFailure || !strings.Contains(stderr, "delivered nothing") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s to a closed port: exit %d, stderr %q\n%s", tc.profile, code, stderr, stdout)
		}
	}
}

// A guest that resets each stream connection after a burst (what a blocking stream callout
// makes Windows do) is traffic doing its job: resets are counted and explained, and are not
// send errors.
func TestTrafficExplainsStreamResets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c *net.TCPConn) {
				buf := make([]byte, 64<<10)
				c.Read(buf)
				c.SetLinger(0)
				c.Close()
			}(c.(*net.TCPConn))
		}
	}()
	code, stdout, stderr := runCLI(t, "traffic", "--profile", "stream-burst", "--to", l.Addr().String(), "--rate", "2000", "--duration", "2s", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`resets\s+[1-9]\d*\s`).MatchString(stdout) || !regexp.MustCompile(`send errors\s+none`).MatchString(stdout) ||
		!strings.Contains(stdout, "as Windows does when a stream callout blocks the data") {
		t.Errorf("resets not counted apart from send errors and explained:\n%s", stdout)
	}
}
