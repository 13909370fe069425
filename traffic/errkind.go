package traffic

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Error kinds the counters use besides errno names.
const (
	KindTimeout = "timeout"
	KindEOF     = "EOF"
	KindOther   = "other"
)

var errnoKinds = []struct {
	errno syscall.Errno
	name  string
}{
	{syscall.ECONNREFUSED, "ECONNREFUSED"},
	{syscall.ECONNRESET, "ECONNRESET"},
	{syscall.ECONNABORTED, "ECONNABORTED"},
	{syscall.EPIPE, "EPIPE"},
	{syscall.EMSGSIZE, "EMSGSIZE"},
	{syscall.ENOBUFS, "ENOBUFS"},
	{syscall.EAGAIN, "EAGAIN"},
	{syscall.EHOSTUNREACH, "EHOSTUNREACH"},
	{syscall.ENETUNREACH, "ENETUNREACH"},
	{syscall.EADDRNOTAVAIL, "EADDRNOTAVAIL"},
	{syscall.EPERM, "EPERM"},
	{syscall.EACCES, "EACCES"},
	{syscall.EINVAL, "EINVAL"},
	{syscall.EIO, "EIO"},
}

// ErrorKind names a send or connect error for the counters: an errno name such as
// "ECONNREFUSED", "timeout", "EOF" (the peer closed), or "other".
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		for _, k := range errnoKinds {
			if errno == k.errno {
				return k.name
			}
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return KindTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return KindEOF
	}
	return KindOther
}

// peerGone reports whether an error kind means the peer reset or closed the connection.
func peerGone(kind string) bool {
	return kind == "ECONNRESET" || kind == "EPIPE" || kind == "ECONNABORTED" || kind == KindEOF
}
