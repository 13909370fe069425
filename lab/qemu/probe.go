package qemu

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// probeTimeout bounds one WinRM probe (connect, request, status line). Probes overlap
// (see waitReady), so a slow answer does not delay noticing a fast one.
const probeTimeout = 5 * time.Second

// winrmAnswers says whether an HTTP server answers POST /wsman at addr with any status.
// A bare TCP connect is not enough: QEMU's user-mode networking accepts connections on a
// forwarded port before anything in the guest listens, then closes them.
func winrmAnswers(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // cancellation ends a blocked read
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	req := "POST /wsman HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n" +
		"Content-Length: 0\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("no HTTP answer: %w", err)
	}
	resp.Body.Close()
	return nil
}

// consoleSize is the console log's size, 0 when missing.
func consoleSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// tailLines returns the last n lines of a file (reading at most its last 64 KiB).
func tailLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-window, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return ""
	}
	s := strings.ReplaceAll(string(buf), "\r", "")
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first line of the window is cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// quoteTail formats a console tail for an error message.
func quoteTail(path string, n int) string {
	t := tailLines(path, n)
	if strings.TrimSpace(t) == "" {
		return fmt.Sprintf("console log %s is empty", path)
	}
	return fmt.Sprintf("console log %s ends with:\n    %s", path, strings.ReplaceAll(t, "\n", "\n    "))
}
