package traffic

import (
	"strings"
	"testing"
)

func TestUndeliveredAndSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Profile
		c    Counters
		want string // "" delivered, else a piece of the reason
	}{
		{"nothing sent", StreamBurst, Counters{Errors: map[string]uint64{"ECONNREFUSED": 7}}, "nothing was sent: ECONNREFUSED 7"},
		{"every call failed", SingleNBL, Counters{Packets: 3, Syscalls: 4, Errors: map[string]uint64{"EPERM": 4}}, "every one of 4 send calls failed: EPERM 4"},
		{"refused datagrams", SingleNBL, Counters{Packets: 500, Syscalls: 20, Errors: map[string]uint64{"ECONNREFUSED": 10}}, "refused 10 sends"},
		{"no whole burst", StreamBurst, Counters{Packets: 3, Syscalls: 1, Conns: 1, Resets: 1, Errors: map[string]uint64{"ECONNRESET": 1}}, "no burst was written in full"},
		{"resets are no failure", StreamBurst, Counters{Packets: 800, Bursts: 90, Syscalls: 100, Conns: 11, Resets: 10, Errors: map[string]uint64{"ECONNRESET": 6, "EPIPE": 4}}, ""},
		{"some errors", FragmentForward, Counters{Packets: 800, Syscalls: 100, Errors: map[string]uint64{"ENOBUFS": 3}}, ""},
	} {
		got := tc.c.Undelivered(tc.p)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: Undelivered = %q, want %q", tc.name, got, tc.want)
		}
	}
	c := Counters{Errors: map[string]uint64{"ECONNRESET": 2, "EPIPE": 1, "EOF": 1, "ECONNABORTED": 1, "ETIMEDOUT": 0, "timeout": 3}}
	if se := c.SendErrors(); len(se) != 2 || se["timeout"] != 3 {
		t.Errorf("SendErrors = %v, want only the non-reset kinds", se)
	}
}
