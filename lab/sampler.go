package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/masterzen/winrm"
	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

// Sampler is one running `wfplab-agent.exe sample` in a shell of its own.
type Sampler struct {
	g      *Session
	sh     *shell
	cmd    *winrm.Command
	cancel context.CancelFunc // terminates the command (the library signals terminate)
	header contract.Header
	events chan contract.SampleEvent

	stopping chan struct{} // closed by Stop: from then on events that find no room are dropped
	ended    chan struct{} // closed when the reader is done and events is closed
	dropped  atomic.Uint64
	stderr   capBuffer

	stopOnce sync.Once
	stopErr  error
}

// eventBuffer holds samples a slow consumer has not taken yet (at 100 ms, 25 s worth).
const eventBuffer = 256

// StartSampler runs `wfplab-agent.exe sample --interval-ms N` in its own shell and streams
// parsed samples. It returns once the H1 header arrived (bounded by CommandTimeout). ctx
// bounds the sampler's whole life: cancelling it terminates the command. Call Stop.
func (g *Session) StartSampler(ctx context.Context, interval time.Duration) (*Sampler, error) {
	ms := interval.Milliseconds()
	if ms < 1 {
		return nil, g.errorf("sampler: interval %v is below the agent's 1 ms resolution; use 1ms or more", interval)
	}
	line := fmt.Sprintf(fmtSample, ms)
	sh, err := g.openShell(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	startCtx, startCancel := context.WithTimeout(runCtx, g.opts.CommandTimeout)
	defer startCancel()
	cmd, err := await(startCtx, func() (*winrm.Command, error) { return sh.sh.ExecuteWithContext(runCtx, line) },
		func(c *winrm.Command, _ error) {
			if c != nil {
				drain(c)
			}
		})
	if err != nil {
		cancel()
		sh.close(ctx)
		return nil, g.transportError(fmt.Sprintf("%q could not start", line), err, startCtx)
	}
	s := &Sampler{
		g: g, sh: sh, cmd: cmd, cancel: cancel,
		events:   make(chan contract.SampleEvent, eventBuffer),
		stopping: make(chan struct{}),
		ended:    make(chan struct{}),
	}
	headers := make(chan contract.Header, 1)
	go func() { _, _ = io.Copy(&s.stderr, cmd.Stderr) }()
	go s.read(runCtx, headers)

	select {
	case h := <-headers:
		s.header = h
		g.logf("sampler started (agent %s, every %d ms)", h.Version, h.IntervalMS)
		return s, nil
	case <-s.ended:
		err = g.errorf("sampler: %q ended before its H1 header: %s; is the agent uploaded and working (try %q)?",
			line, s.endReason(), cmdInventory)
	case <-startCtx.Done():
		err = g.errorf("sampler: no H1 header from %q within %v; check the agent on the guest", line, g.opts.CommandTimeout)
	}
	_ = s.Stop(context.WithoutCancel(ctx))
	return nil, err
}

// Header is the H1 line the stream started with.
func (s *Sampler) Header() contract.Header { return s.header }

// Events delivers one event per line; it is closed when the command ends.
func (s *Sampler) Events() <-chan contract.SampleEvent { return s.events }

// Dropped counts events dropped after Stop because nobody took them.
func (s *Sampler) Dropped() uint64 { return s.dropped.Load() }

// read turns stdout lines into events until the stream ends.
func (s *Sampler) read(ctx context.Context, headers chan<- contract.Header) {
	defer close(s.ended)
	defer close(s.events)
	r := bufio.NewReaderSize(s.cmd.Stdout, 16<<10)
	gotHeader := false
	for {
		line, err := readLine(r)
		if line != "" {
			s.handle(line, &gotHeader, headers)
		}
		if err == nil {
			continue
		}
		// The command is over (or the transport broke): wait for the library to finish it.
		_, _ = io.Copy(io.Discard, s.cmd.Stdout)
		s.cmd.Wait()
		if !errors.Is(err, io.EOF) || s.cmd.ExitCode() != 0 {
			if ctx.Err() == nil || !s.isStopping() {
				s.emit(contract.SampleEvent{At: time.Now(), Err: s.g.errorf("sample stream ended: %s", s.endReasonWith(err))})
			}
		}
		return
	}
}

func (s *Sampler) handle(line string, gotHeader *bool, headers chan<- contract.Header) {
	now := time.Now()
	v, err := agentfmt.ParseLine(line)
	if err != nil {
		s.emit(contract.SampleEvent{At: now, Line: line, Err: s.g.errorf("sample stream: %v", err)})
		return
	}
	switch r := v.(type) {
	case *contract.Header:
		if !*gotHeader {
			*gotHeader = true
			headers <- *r
		}
	case *contract.Sample:
		s.emit(contract.SampleEvent{At: now, Line: line, Sample: *r})
	case *agentfmt.AgentError:
		s.emit(contract.SampleEvent{At: now, Line: line, Err: s.g.errorf("sample stream: %v", r)})
	}
}

// emit delivers an event; once stopping, an event that finds no room is dropped so the
// stream can end even when nobody reads.
func (s *Sampler) emit(ev contract.SampleEvent) {
	select {
	case s.events <- ev:
		return
	case <-s.stopping:
	}
	select {
	case s.events <- ev:
	default:
		s.dropped.Add(1)
	}
}

func (s *Sampler) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// readLine reads one line without its ending; a line longer than the format allows is
// consumed whole and returned clipped (the parser then rejects it).
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf) <= agentfmt.MaxLineLen+2 {
			buf = append(buf, chunk[:min(len(chunk), agentfmt.MaxLineLen+3-len(buf))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return string(buf), err
	}
}

// endReason describes how the command ended, after s.ended is closed.
func (s *Sampler) endReason() string { return s.endReasonWith(nil) }

func (s *Sampler) endReasonWith(err error) string {
	msg := fmt.Sprintf("exit code %d", s.cmd.ExitCode())
	if err != nil && !errors.Is(err, io.EOF) {
		msg += fmt.Sprintf(", transport: %v", err)
	}
	if e := s.stderr.String(); e != "" {
		msg += ", stderr: " + summary(Result{Stderr: e})
	}
	return msg
}

// Stop closes stdin (the agent's signal to finish), waits (bounded by ctx and
// CommandTimeout) for the stream to end, then terminates the command and deletes its shell.
// Events still flow to a reader until the channel closes. Stop may be called more than once.
func (s *Sampler) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Sampler) stop(ctx context.Context) error {
	g := s.g
	close(s.stopping)
	wctx, cancel := context.WithTimeout(ctx, g.opts.CommandTimeout)
	defer cancel()
	// Closing stdin sends End="true"; the library's writer takes its own lock.
	_, stdinErr := await(wctx, func() (struct{}, error) { return struct{}{}, s.cmd.Stdin.Close() }, nil)
	var err error
	select {
	case <-s.ended: // checked first: an already-ended stream is no timeout, even with ctx done
	default:
		select {
		case <-s.ended:
		case <-wctx.Done():
			err = g.errorf("sampler: the agent did not end within %v of closing its input; terminated it (stdin close: %v)",
				g.opts.CommandTimeout, stdinErr)
		}
	}
	// Terminate: when the command already ended the library signals it as after any
	// command; otherwise it does so now that its context is cancelled.
	s.cancel()
	select {
	case <-s.ended:
		_, _ = await(wctx, func() (struct{}, error) { return struct{}{}, s.cmd.Close() }, nil)
	case <-time.After(min(maxShellClose, g.opts.CommandTimeout)):
		if err == nil {
			err = g.errorf("sampler: the sample command did not end after terminate; the guest may be unreachable")
		}
	}
	s.sh.close(ctx)
	if err == nil {
		g.logf("sampler stopped")
	}
	return err
}
