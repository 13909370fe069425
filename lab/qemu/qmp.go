package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// qmpTimeout bounds every QMP call (the caller may give a shorter deadline).
const qmpTimeout = 10 * time.Second

// qmpClient talks to one QEMU's QMP socket with go-qemu's SocketMonitor, one connection
// per call (QMP serves one client at a time, and a fresh connection cannot inherit a
// stuck one).
//
// Every call has a deadline. SocketMonitor has none of its own and keeps its connection
// private, so the monitor dials a relay socket of ours that forwards to QEMU; when the
// deadline passes the relay closes both sides, which ends the monitor's blocked read.
type qmpClient struct {
	socket string // QEMU's QMP socket
}

// qmpStatus is query-status's answer.
type qmpStatus struct {
	Running bool   `json:"running"`
	Status  string `json:"status"`
}

func (q qmpClient) status(ctx context.Context) (qmpStatus, error) {
	var st qmpStatus
	raw, err := q.call(ctx, "query-status", nil)
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	return st, err
}

func (q qmpClient) powerdown(ctx context.Context) error {
	_, err := q.call(ctx, "system_powerdown", nil)
	return err
}

func (q qmpClient) reset(ctx context.Context) error {
	_, err := q.call(ctx, "system_reset", nil)
	return err
}

// quit asks QEMU to exit. QEMU may close the socket before its reply arrives; the caller
// judges by the process exiting, not by this error.
func (q qmpClient) quit(ctx context.Context) error {
	_, err := q.call(ctx, "quit", nil)
	return err
}

// screendump writes the display as PPM to path (absolute: QEMU resolves it).
func (q qmpClient) screendump(ctx context.Context, path string) error {
	_, err := q.call(ctx, "screendump", map[string]string{"filename": path})
	return err
}

// call runs one command and returns the "return" member of its reply.
func (q qmpClient) call(ctx context.Context, execute string, args any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, qmpTimeout) // or the caller's deadline, if sooner
	defer cancel()
	fail := func(err error) (json.RawMessage, error) {
		return nil, fmt.Errorf("QMP %s on %s: %w", execute, q.socket, err)
	}
	cmd, err := json.Marshal(qmp.Command{Execute: execute, Args: args})
	if err != nil {
		return fail(err)
	}

	var d net.Dialer
	upstream, err := d.DialContext(ctx, "unix", dialablePath(q.socket))
	if err != nil {
		return fail(fmt.Errorf("%w (is QEMU running?)", err))
	}
	r, err := newRelay(upstream)
	if err != nil {
		upstream.Close()
		return fail(err)
	}
	defer r.close()

	type result struct {
		raw []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		mon, err := qmp.NewSocketMonitor("unix", r.path, qmpTimeout)
		if err != nil {
			done <- result{err: err}
			return
		}
		if err := mon.Connect(); err != nil {
			mon.Disconnect()
			done <- result{err: fmt.Errorf("handshake: %w", err)}
			return
		}
		raw, err := mon.Run(cmd)
		mon.Disconnect()
		done <- result{raw, err}
	}()

	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		r.close() // ends the monitor's read; wait for it so nothing outlives the call
		<-done
		return fail(fmt.Errorf("no answer in time: %w", ctx.Err()))
	}
	if res.err != nil {
		return fail(res.err)
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(res.raw, &reply); err != nil {
		return fail(fmt.Errorf("bad reply %q: %w", res.raw, err))
	}
	return reply.Return, nil
}

// relay is a one-connection unix socket in a private temporary folder that forwards to an
// upstream connection.
type relay struct {
	path     string
	dir      string
	ln       net.Listener
	upstream net.Conn
	once     sync.Once
	mu       sync.Mutex
	down     net.Conn
	closed   bool
}

func newRelay(upstream net.Conn) (*relay, error) {
	dir, err := os.MkdirTemp("", "wfplab-qmp-")
	if err != nil {
		return nil, fmt.Errorf("relay folder: %w", err)
	}
	path := filepath.Join(dir, "r.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("relay socket: %w", err)
	}
	r := &relay{path: path, dir: dir, ln: ln, upstream: upstream}
	go r.serve()
	return r, nil
}

func (r *relay) serve() {
	down, err := r.ln.Accept()
	r.ln.Close() // one client only
	if err != nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		down.Close()
		return
	}
	r.down = down
	r.mu.Unlock()
	go func() {
		io.Copy(r.upstream, down)
		r.close()
	}()
	io.Copy(down, r.upstream)
	r.close()
}

func (r *relay) close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		if r.down != nil {
			r.down.Close()
		}
		r.mu.Unlock()
		r.ln.Close()
		r.upstream.Close()
		os.RemoveAll(r.dir)
	})
}

// maxSunPath is what fits in sockaddr_un's sun_path with its terminating NUL.
const maxSunPath = 107

// dialablePath returns a path connect(2) accepts for a socket: the path itself when short,
// else the same file reached through an open descriptor of its folder (/proc/self/fd/N/...),
// since run folders can be deeper than sun_path allows.
func dialablePath(path string) string {
	if len(path) <= maxSunPath {
		return path
	}
	dirFDs.mu.Lock()
	defer dirFDs.mu.Unlock()
	dir := filepath.Dir(path)
	f, ok := dirFDs.open[dir]
	if !ok {
		var err error
		if f, err = os.Open(dir); err != nil {
			return path // dialing will fail and say why
		}
		dirFDs.open[dir] = f
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), filepath.Base(path))
}

// dirFDs keeps the folders of long socket paths open for the process's life (one
// descriptor per VM folder).
var dirFDs = struct {
	mu   sync.Mutex
	open map[string]*os.File
}{open: map[string]*os.File{}}
