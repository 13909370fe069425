package traffic

import (
	"fmt"
	"sort"
	"strings"
)

// SendErrors are the errors other than the peer resetting or closing a stream connection,
// which Resets counts: a stream callout that blocks a burst makes the TCP stack reset the
// connection, so on the stream path a reset is the traffic doing its job, not a failure.
func (c Counters) SendErrors() map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range c.Errors {
		if !peerGone(k) {
			out[k] = v
		}
	}
	return out
}

// Undelivered says why traffic of profile p with these totals reached nothing, or "" when
// some of it was delivered: nothing sent, every send call failed, no stream burst written
// in full, or datagrams refused (ICMP port unreachable: nothing listens there).
func (c Counters) Undelivered(p Profile) string {
	errs := c.SendErrors()
	var n uint64
	for _, v := range errs {
		n += v
	}
	switch {
	case c.Packets == 0:
		return "nothing was sent" + ErrorList(errs, ": ")
	case c.Syscalls > 0 && n >= c.Syscalls:
		return fmt.Sprintf("every one of %d send calls failed%s", c.Syscalls, ErrorList(errs, ": "))
	case p == StreamBurst && c.Bursts == 0:
		return "no burst was written in full" + ErrorList(c.Errors, ": ")
	case p != StreamBurst && errs["ECONNREFUSED"] > 0:
		return fmt.Sprintf("the destination refused %d sends (ECONNREFUSED, an ICMP port unreachable): nothing listens on that port", errs["ECONNREFUSED"])
	}
	return ""
}

// ErrorList is "prefix" then "KIND n, KIND n" sorted by kind, or "" when there are none.
func ErrorList(errs map[string]uint64, prefix string) string {
	kinds := make([]string, 0, len(errs))
	for k, v := range errs {
		if v > 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return ""
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, errs[k])
	}
	return prefix + strings.Join(parts, ", ")
}
