package wsman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ExitCodeInterrupted is the exit code reported for a command stopped by a signal (terminate or
// ctrl_c), by deleting its shell or by shutdown: STATUS_CONTROL_C_EXIT (0xC000013A), what
// cmd.exe reports when interrupted. The Host's own exit code is ignored then.
const ExitCodeInterrupted = -1073741510

// maxFinishedPerShell bounds how many ended commands a shell remembers for late Send/Signal/Receive
// requests (clients signal terminate after each command; those that don't must not grow memory).
const maxFinishedPerShell = 64

// errBootStopped means the server was closed (a simulated reboot) while the request was in flight.
var errBootStopped = errors.New("wsman: server closed")

// boot is one lifetime of the server state. Close ends it; the next use starts a fresh one with no
// shells, as a rebooted Windows host has none.
type boot struct {
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	stopped bool
	shells  map[string]*shell // key: upper-cased id (Windows compares GUIDs case-insensitively)
	runs    sync.WaitGroup    // Host.Run goroutines
	running atomic.Int64
	polling atomic.Int64 // Receive requests waiting for output (long polls in progress)
}

func newBoot() *boot {
	ctx, cancel := context.WithCancel(context.Background())
	return &boot{ctx: ctx, cancel: cancel, shells: make(map[string]*shell)}
}

// addShell registers sh unless the boot is stopped or the quota (limit > 0) is reached.
func (b *boot) addShell(sh *shell, limit int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return errBootStopped
	}
	if limit > 0 && len(b.shells) >= limit {
		return errQuota
	}
	b.shells[strings.ToUpper(sh.id)] = sh
	return nil
}

var errQuota = errors.New("shell quota reached")

func (b *boot) shell(id string) *shell {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shells[strings.ToUpper(id)]
}

func (b *boot) removeShell(id string) *shell {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := strings.ToUpper(id)
	sh := b.shells[key]
	delete(b.shells, key)
	return sh
}

func (b *boot) shellCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.shells)
}

// stop cancels every command (their ctx derive from b.ctx) and forgets every shell.
func (b *boot) stop() {
	b.mu.Lock()
	b.stopped = true
	b.shells = make(map[string]*shell)
	b.mu.Unlock()
	b.cancel()
}

// startRun runs fn in a goroutine counted by the boot, unless the boot is stopped. Add happens
// under b.mu so it never races with the Wait in wait.
func (b *boot) startRun(fn func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return errBootStopped
	}
	b.runs.Add(1)
	b.running.Add(1)
	go func() {
		defer b.runs.Done()
		defer b.running.Add(-1)
		fn()
	}()
	return nil
}

// wait blocks until every Host.Run of this boot returned, or ctx ends.
func (b *boot) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.runs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wsman: %d command(s) still running after their context was cancelled (%w): Host.Run must return promptly when ctx is done",
			b.running.Load(), ctx.Err())
	}
}

// shell is one remote shell (a cmd.exe session on Windows).
type shell struct {
	id            string
	ctx           context.Context
	cancel        context.CancelFunc
	inputStreams  []string
	outputStreams []string
	codepage      string
	noProfile     bool
	created       time.Time

	mu       sync.Mutex
	commands map[string]*command // key: upper-cased id
	finished []string            // ended commands, oldest first
}

func newShell(parent context.Context, id string, in, out []string) *shell {
	ctx, cancel := context.WithCancel(parent)
	return &shell{id: id, ctx: ctx, cancel: cancel, inputStreams: in, outputStreams: out,
		created: time.Now(), commands: make(map[string]*command)}
}

func (sh *shell) has(streams []string, name string) bool {
	for _, s := range streams {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

var errDuplicateCommand = errors.New("a command with this CommandId already exists in the shell")

func (sh *shell) add(c *command) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	key := strings.ToUpper(c.id)
	if _, dup := sh.commands[key]; dup {
		return errDuplicateCommand
	}
	sh.commands[key] = c
	return nil
}

func (sh *shell) get(id string) *command {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.commands[strings.ToUpper(id)]
}

// only returns the shell's single command, for a Receive that names none.
func (sh *shell) only() *command {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.commands) != 1 {
		return nil
	}
	for _, c := range sh.commands {
		return c
	}
	return nil
}

func (sh *shell) remove(id string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	key := strings.ToUpper(id)
	if c := sh.commands[key]; c != nil {
		delete(sh.commands, key)
		c.release()
	}
}

// noteFinished remembers that a command ended, forgetting the oldest ended ones past the bound.
func (sh *shell) noteFinished(id string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.finished = append(sh.finished, strings.ToUpper(id))
	for len(sh.finished) > maxFinishedPerShell {
		if old := sh.commands[sh.finished[0]]; old != nil {
			delete(sh.commands, sh.finished[0])
			old.release()
		}
		sh.finished = sh.finished[1:]
	}
}

// Output stream indexes.
const (
	streamStdout = iota
	streamStderr
)

var streamNames = [2]string{"stdout", "stderr"}

type outStream struct {
	enabled bool // named in the shell's OutputStreams
	buf     bytes.Buffer
}

// command is the server side of one running command: bounded output buffers that block the Host
// when full (backpressure), a bounded stdin buffer, and the exit state.
type command struct {
	id      string
	shellID string
	line    string
	ctx     context.Context
	cancel  context.CancelFunc
	limit   int // bytes buffered per direction (stdout+stderr together; stdin)

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced on every state change
	out          [2]outStream
	stdin        bytes.Buffer
	stdinEOF     bool
	exited       bool
	exitCode     int
	interrupted  bool // ctx was cancelled before Run returned
	terminated   bool // signal terminate: report Done at once, whatever Run does
	stopAfterCtx func() bool
}

func newCommand(parent context.Context, id, shellID, line string, stdinOpen bool, outputs []string, limit int) *command {
	ctx, cancel := context.WithCancel(parent)
	c := &command{id: id, shellID: shellID, line: line, ctx: ctx, cancel: cancel, limit: limit,
		changed: make(chan struct{}), stdinEOF: !stdinOpen}
	for i, name := range streamNames {
		for _, o := range outputs {
			if strings.EqualFold(o, name) {
				c.out[i].enabled = true
			}
		}
	}
	// Cancellation from any source (signal, shell delete, shutdown) wakes blocked writers,
	// readers and receivers.
	c.stopAfterCtx = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		if !c.exited {
			c.interrupted = true
		}
		c.notifyLocked()
		c.mu.Unlock()
	})
	return c
}

func (c *command) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// write appends p to an output stream, blocking while the buffer is full until a Receive drains
// it or the command is cancelled.
func (c *command) write(which int, p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c.mu.Lock()
		if c.exited || c.terminated || c.ctx.Err() != nil {
			c.mu.Unlock()
			return n, io.ErrClosedPipe
		}
		if !c.out[which].enabled {
			// The client did not ask for this stream at Create: Windows drops it.
			c.mu.Unlock()
			return n + len(p), nil
		}
		space := c.limit - c.out[streamStdout].buf.Len() - c.out[streamStderr].buf.Len()
		if space > 0 {
			k := min(space, len(p))
			c.out[which].buf.Write(p[:k])
			p = p[k:]
			n += k
			c.notifyLocked()
			c.mu.Unlock()
			continue
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.ctx.Done():
		}
	}
	return n, nil
}

type streamWriter struct {
	c     *command
	which int
}

func (w streamWriter) Write(p []byte) (int, error) { return w.c.write(w.which, p) }

type stdinReader struct{ c *command }

// Read yields stdin the client sent; io.EOF after End="true"; io.ErrClosedPipe once cancelled.
func (r stdinReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := r.c
	for {
		c.mu.Lock()
		if c.stdin.Len() > 0 {
			n, _ := c.stdin.Read(p)
			c.notifyLocked()
			c.mu.Unlock()
			return n, nil
		}
		if c.stdinEOF {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.ctx.Err() != nil {
			c.mu.Unlock()
			return 0, io.ErrClosedPipe
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.ctx.Done():
		}
	}
}

var errSendTimeout = errors.New("stdin buffer stayed full for the whole OperationTimeout")

// sendStdin appends client input. A chunk always fits into an empty buffer; otherwise it waits
// for the Host to read, up to the deadline. Input for a command that ended is dropped.
func (c *command) sendStdin(ctx context.Context, data []byte, eof bool, deadline <-chan time.Time) error {
	for {
		c.mu.Lock()
		if c.exited || c.terminated || c.ctx.Err() != nil || c.stdinEOF {
			c.mu.Unlock()
			return nil
		}
		if c.stdin.Len() == 0 || c.stdin.Len()+len(data) <= c.limit {
			c.stdin.Write(data)
			if eof {
				c.stdinEOF = true
			}
			c.notifyLocked()
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errSendTimeout
		}
	}
}

// finish records the end of Host.Run.
func (c *command) finish(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exited = true
	c.exitCode = code
	if c.ctx.Err() != nil {
		c.interrupted = true
	}
	c.stdin.Reset()
	c.notifyLocked()
}

// interrupt cancels the command (ctrl_c): it ends when Run returns.
func (c *command) interrupt() {
	c.mu.Lock()
	if !c.exited {
		c.interrupted = true
	}
	c.mu.Unlock()
	c.cancel()
}

// terminate cancels the command and ends it at once.
func (c *command) terminate() {
	c.mu.Lock()
	if !c.exited {
		c.interrupted = true
	}
	c.terminated = true
	c.notifyLocked()
	c.mu.Unlock()
	c.cancel()
}

// release frees the context resources once nobody will use the command again.
func (c *command) release() {
	c.stopAfterCtx()
	c.cancel()
}

type chunk struct {
	stream string
	data   []byte
	end    bool
}

type receiveResult struct {
	chunks   []chunk
	done     bool
	exitCode int
}

// collect takes up to budget bytes of the wanted streams. ready is false when there is nothing
// to report yet; then changed is closed at the next state change.
func (c *command) collect(want [2]bool, budget int) (res receiveResult, ready bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	freed := false
	for i := range c.out {
		want[i] = want[i] && c.out[i].enabled
		if !want[i] && c.out[i].buf.Len() > 0 {
			// Nobody asked for it: drop it rather than let the Host block forever.
			c.out[i].buf.Reset()
			freed = true
		}
	}
	ended := c.exited || c.terminated
	have := c.out[streamStdout].buf.Len() + c.out[streamStderr].buf.Len()
	if have == 0 && !ended {
		if freed {
			c.notifyLocked()
		}
		return res, false, c.changed
	}
	takeOut, takeErr := split(c.out[streamStdout].buf.Len(), c.out[streamStderr].buf.Len(), budget)
	for i, n := range [2]int{takeOut, takeErr} {
		if n > 0 {
			data := make([]byte, n)
			copy(data, c.out[i].buf.Next(n))
			res.chunks = append(res.chunks, chunk{stream: streamNames[i], data: data})
			freed = true
		}
	}
	if ended && c.out[streamStdout].buf.Len() == 0 && c.out[streamStderr].buf.Len() == 0 {
		for i := range c.out {
			if !want[i] {
				continue
			}
			marked := false
			for j := range res.chunks {
				if res.chunks[j].stream == streamNames[i] {
					res.chunks[j].end = true
					marked = true
				}
			}
			if !marked {
				res.chunks = append(res.chunks, chunk{stream: streamNames[i], end: true})
			}
		}
		res.done = true
		res.exitCode = c.exitCode
		if c.interrupted {
			res.exitCode = ExitCodeInterrupted
		}
	}
	if freed {
		c.notifyLocked()
	}
	return res, true, c.changed
}

// split shares budget between stdout and stderr so neither starves the other.
func split(out, errLen, budget int) (int, int) {
	if out+errLen <= budget {
		return out, errLen
	}
	takeErr := min(errLen, max(budget/2, budget-out))
	takeOut := min(out, budget-takeErr)
	return takeOut, takeErr
}
