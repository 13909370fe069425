package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/wfplab/wfplab/bench"
)

// progress shows each target's phase, step and elapsed time: live bars on a terminal,
// one line per step change elsewhere (CI logs).
type progress struct {
	out   io.Writer
	quiet bool
	bars  *mpb.Progress
	// closed is set once the bars are gone: later lines go to out.
	closed bool

	mu    sync.Mutex
	state map[string]*targetState
	order []string
}

type targetState struct {
	bar  *mpb.Bar
	last bench.Progress
}

func newProgress(out io.Writer, quiet bool) *progress {
	p := &progress{out: out, quiet: quiet, state: map[string]*targetState{}}
	if f, ok := out.(*os.File); ok && !quiet && isatty.IsTerminal(f.Fd()) {
		p.bars = mpb.New(mpb.WithOutput(out), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
	}
	return p
}

func (p *progress) update(u bench.Progress) {
	if p.quiet {
		return
	}
	if u.Step == bench.StepFailed && errors.Is(u.Err, context.Canceled) {
		// The run was interrupted; the run says so once, not each target.
		u.Step, u.Err = "stopped", nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.state[u.Target]
	if !ok {
		st = &targetState{}
		p.state[u.Target] = st
		p.order = append(p.order, u.Target)
		if p.bars != nil {
			st.bar = p.addBar(st)
		}
	}
	changed := st.last.Phase != u.Phase || st.last.Step != u.Step
	st.last = u
	if st.bar != nil {
		p.drawBar(st, u, changed)
		return
	}
	if changed {
		p.printLine(u)
	}
}

func (p *progress) addBar(st *targetState) *mpb.Bar {
	name := func(decor.Statistics) string {
		p.mu.Lock()
		defer p.mu.Unlock()
		l := st.last
		phase := l.Phase
		if phase == "" {
			phase = "-"
		}
		return fmt.Sprintf("%-14s %-7s %-17s", l.Target, phase, l.Step)
	}
	clock := func(decor.Statistics) string {
		p.mu.Lock()
		defer p.mu.Unlock()
		l := st.last
		if l.Length > 0 {
			return fmt.Sprintf("%5.1fs / %4.1fs", l.Elapsed.Seconds(), l.Length.Seconds())
		}
		return fmt.Sprintf("%5.1fs", l.Elapsed.Seconds())
	}
	return p.bars.AddBar(1000,
		mpb.PrependDecorators(decor.Any(name)),
		mpb.AppendDecorators(decor.Any(clock)))
}

func (p *progress) drawBar(st *targetState, u bench.Progress, changed bool) {
	switch {
	case u.Step == bench.StepDone || u.Step == bench.StepFailed:
		st.bar.SetTotal(-1, true)
	case u.Length > 0:
		if changed {
			st.bar.SetCurrent(0)
		}
		st.bar.SetCurrent(int64(1000 * u.Elapsed / u.Length))
	default:
		st.bar.SetCurrent(0)
	}
}

// logf prints a guest operation's progress line (reboots, hotfix), above the bars when
// they are drawn. Lines come from several targets' goroutines at once.
func (p *progress) logf(format string, args ...any) {
	if p.quiet {
		return
	}
	line := fmt.Sprintf("  "+format+"\n", args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bars != nil && !p.closed {
		fmt.Fprint(p.bars, line)
		return
	}
	fmt.Fprint(p.out, line)
}

func (p *progress) printLine(u bench.Progress) {
	phase := u.Phase
	if phase == "" {
		phase = "-"
	}
	line := fmt.Sprintf("  %-14s %-7s %s", u.Target, phase, u.Step)
	if u.Length > 0 {
		line += fmt.Sprintf(" (%s)", u.Length)
	}
	if u.Err != nil {
		line += ": " + u.Err.Error()
	}
	fmt.Fprintln(p.out, line)
}

func (p *progress) close() {
	p.mu.Lock()
	if p.bars == nil || p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, name := range p.order {
		if st := p.state[name]; st.bar != nil && !st.bar.Completed() {
			st.bar.Abort(false)
		}
	}
	p.mu.Unlock()
	p.bars.Wait()
}
