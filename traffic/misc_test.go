package traffic

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestErrorKind(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmsg", err)}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{opErr(syscall.ECONNREFUSED), "ECONNREFUSED"},
		{opErr(syscall.ECONNRESET), "ECONNRESET"},
		{opErr(syscall.EPIPE), "EPIPE"},
		{opErr(syscall.EMSGSIZE), "EMSGSIZE"},
		{opErr(syscall.ENOBUFS), "ENOBUFS"},
		{fmt.Errorf("wrapped: %w", opErr(syscall.EHOSTUNREACH)), "EHOSTUNREACH"},
		{&net.OpError{Op: "write", Err: os.ErrDeadlineExceeded}, KindTimeout},
		{io.EOF, KindEOF},
		{opErr(syscall.Errno(0x7ff)), KindOther},
		{errors.New("something else"), KindOther},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for kind, gone := range map[string]bool{"ECONNRESET": true, "EPIPE": true, KindEOF: true, "ECONNREFUSED": false, KindTimeout: false} {
		if peerGone(kind) != gone {
			t.Errorf("peerGone(%q) = %v", kind, !gone)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 64)
	fillPayload(b)
	for _, p := range Profiles {
		PutHeader(b, p, 0x0102030405060708)
		h, ok := ParseHeader(b)
		if !ok || h.Profile != p || h.Seq != 0x0102030405060708 {
			t.Errorf("%s: parsed %+v, %v", p, h, ok)
		}
	}
	if string(b[:4]) != "WFPL" || b[HeaderLen] != 'a'+HeaderLen%26 {
		t.Errorf("payload starts %q, filler %q", b[:4], b[HeaderLen])
	}
	for _, bad := range [][]byte{b[:HeaderLen-1], append([]byte("XFPL"), b[4:]...), nil} {
		if _, ok := ParseHeader(bad); ok {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}

func TestCountersAdd(t *testing.T) {
	a := Counters{Packets: 1, Bytes: 2, Bursts: 3, Conns: 4, Resets: 5, Syscalls: 6, Errors: map[string]uint64{"EPIPE": 1}}
	b := Counters{Packets: 10, Errors: map[string]uint64{"EPIPE": 2, "timeout": 1}}
	s := a.Add(b)
	if s.Packets != 11 || s.Bytes != 2 || s.Syscalls != 6 || s.Errors["EPIPE"] != 3 || s.Errors["timeout"] != 1 || s.ErrorCount() != 4 {
		t.Errorf("sum %+v", s)
	}
	s.Errors["EPIPE"] = 99
	if a.Errors["EPIPE"] != 1 || b.Errors["EPIPE"] != 2 {
		t.Error("Add shares its Errors map with an operand")
	}
}
