package cmdexe

import (
	"context"
	"fmt"
	"strings"
)

// call, goto, setlocal, endlocal and shift: the internal commands that move between a batch
// file's lines and frames.

// call runs a batch file and comes back (a batch file started without call does not), or
// runs `:label` of the batch file running as a subroutine with its own %0..%9, until its end,
// exit /b or goto :eof. The text after call is %-expanded a second time, as cmd does.
func (r *run) call(ctx context.Context, c *call) int {
	arg := strings.TrimLeft(c.tail, " \t,;=")
	if arg == "" {
		return 0
	}
	f := r.frame()
	if arg[0] == ':' {
		if f == nil {
			fmt.Fprint(c.stderr, "Invalid attempt to call batch label outside of batch script.\r\n")
			return 1
		}
		label := arg[1:]
		rest := ""
		if i := strings.IndexAny(label, " \t,;=+:"); i >= 0 {
			label, rest = label[:i], label[i:]
		}
		start := findLabel(f.lines, label, 0)
		if start < 0 {
			fmt.Fprintf(c.stderr, "The system cannot find the batch label specified - %s\r\n", label)
			return 1
		}
		rest = strings.TrimLeft(rest, " \t,;=")
		sub := &frame{path: f.path, lines: f.lines, arg0: ":" + label, args: splitBatchArgs(rest), argText: rest}
		return r.runFrame(ctx, sub, start+1, c.stdin, c.stdout, c.stderr)
	}
	if f != nil {
		arg = r.expandBatch(arg, f)
	} else {
		arg = Expand(arg, r.lookup)
	}
	l, err := parse(arg, false)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s\r\n", err)
		return syntaxCode(err)
	}
	r.calling = true
	code := r.runList(ctx, l, c.stdin, c.stdout, c.stderr)
	r.calling = false
	return code
}

// gotoLabel is goto: the line stops and the batch file goes on after :label; goto :eof ends
// the batch file or subroutine.
func (r *run) gotoLabel(_ context.Context, c *call) int {
	label := strings.TrimLeft(c.tail, " \t,;=")
	label = strings.TrimPrefix(label, ":")
	if i := strings.IndexAny(label, " \t,;=+:"); i >= 0 {
		label = label[:i]
	}
	if label == "" {
		fmt.Fprint(c.stderr, "No batch label specified to GOTO command.\r\n")
		return 1
	}
	if r.frame() == nil {
		fmt.Fprintf(c.stderr, "The system cannot find the batch label specified - %s\r\n", label)
		return 1
	}
	if strings.EqualFold(label, "eof") {
		r.frameEnd = true
		return 0
	}
	r.jump = label
	return 0
}

// setlocal saves the environment, the folder and delayed expansion until endlocal or the end
// of the batch file; outside a batch file it does nothing. Command extensions are always on
// in the model, so DisableExtensions is refused rather than ignored.
func (r *run) setlocal(_ context.Context, c *call) int {
	if r.frame() == nil {
		return 0
	}
	delayed := r.delayed
	for _, a := range strings.Fields(c.tail) {
		switch strings.ToLower(a) {
		case "enableextensions":
		case "enabledelayedexpansion":
			delayed = true
		case "disabledelayedexpansion":
			delayed = false
		case "disableextensions":
			fmt.Fprint(c.stderr, "wfplab simulated guest: setlocal DisableExtensions is not modelled (extensions are always on).\r\n")
			return 1
		default:
			fmt.Fprint(c.stderr, "Invalid parameter to SETLOCAL command\r\n")
			return 1
		}
	}
	r.locals = append(r.locals, local{env: r.env.clone(), cwd: r.cwd, delayed: r.delayed})
	r.delayed = delayed
	return 0
}

// endlocal restores what the last setlocal of this batch file saved.
func (r *run) endlocal(_ context.Context, _ *call) int {
	if f := r.frame(); f != nil && len(r.locals) > f.localDepth {
		r.endLocal()
	}
	return 0
}

func (r *run) endLocal() {
	l := r.locals[len(r.locals)-1]
	r.locals = r.locals[:len(r.locals)-1]
	r.env, r.cwd, r.delayed = l.env, l.cwd, l.delayed
}

// shift moves %1..%9 down by one (shift /n is not modelled).
func (r *run) shift(_ context.Context, c *call) int {
	f := r.frame()
	if f == nil {
		return 0
	}
	if strings.TrimSpace(c.tail) != "" {
		fmt.Fprint(c.stderr, "wfplab simulated guest: shift /n is not modelled.\r\n")
		return 1
	}
	f.shift++
	return 0
}
