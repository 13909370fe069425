package cmdexe

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Batch files (.bat, .cmd) run inside the cmd.exe that starts them, line by line as cmd reads
// them: each line is %-expanded when read (a block's lines all at once, before any of it
// runs), then parsed and run; labels are skipped; goto searches forward from the line after
// it and then from the top. A command line echoes (prompt and text) while echo is on.

// maxCallDepth bounds batch files and `call :label`s inside each other (cmd aborts a batch at
// a similar depth with "BATCH RECURSION exceeds STACK limits").
const maxCallDepth = 256

// frame is one batch file or `call :label` running: its lines and its parameters.
type frame struct {
	path       string // the batch file's full path (what %~f0 gives)
	lines      []string
	arg0       string   // %0 as typed
	args       []string // %1, %2, ... as typed, quotes kept
	argText    string   // %*
	shift      int
	localDepth int // setlocals made before this frame began
}

// arg is %n after shifts ("" when there is none).
func (f *frame) arg(n int) string {
	n += f.shift
	if n == 0 {
		return f.arg0
	}
	if n-1 < len(f.args) {
		return f.args[n-1]
	}
	return ""
}

// local is what setlocal saved.
type local struct {
	env     *env
	cwd     string
	delayed bool
}

func (r *run) frame() *frame {
	if len(r.frames) == 0 {
		return nil
	}
	return r.frames[len(r.frames)-1]
}

// batchFile runs the batch file a command named. Started from a batch file without call, it
// replaces that file: control does not come back to it.
func (r *run) batchFile(ctx context.Context, path, word, tail string, viaCall bool, stdin io.Reader, stdout, stderr io.Writer) int {
	data, err := r.in.FS.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s\r\n", errMessage(err))
		r.errorlevel = 1
		return 1
	}
	inBatch := len(r.frames) > 0
	argText := strings.TrimLeft(tail, " \t,;=")
	f := &frame{path: path, lines: splitLines(data), arg0: word, args: splitBatchArgs(argText), argText: argText}
	code := r.runFrame(ctx, f, 0, stdin, stdout, stderr)
	if inBatch && !viaCall {
		r.frameEnd = true
	}
	return code
}

// splitLines splits a batch file into lines, without their CR LF.
func splitLines(data []byte) []string {
	s := strings.ReplaceAll(string(data), "\r", "")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// splitBatchArgs splits a batch file's arguments as cmd does for %1..%9: blanks, commas,
// semicolons and equals signs separate them outside double quotes, which stay.
func splitBatchArgs(s string) []string { return splitQuoted(s, isDelim) }

// Tokens splits a command tail on blanks outside double quotes, keeping the quotes: what a
// program that reads its own command line (find) sees as its words.
func Tokens(s string) []string { return splitQuoted(s, isBlank) }

func splitQuoted(s string, sep func(byte) bool) []string {
	var args []string
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQuote = !inQuote
		}
		if !inQuote && sep(c) {
			if b.Len() > 0 {
				args = append(args, b.String())
				b.Reset()
			}
			continue
		}
		b.WriteByte(c)
	}
	if b.Len() > 0 {
		args = append(args, b.String())
	}
	return args
}

// runFrame runs a frame's lines from line start until the end of the file, exit /b or
// goto :eof, and returns ERRORLEVEL then.
func (r *run) runFrame(ctx context.Context, f *frame, start int, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(r.frames) >= maxCallDepth {
		fmt.Fprintf(stderr, "wfplab simulated guest: batch files and call :label nest %d deep: batch processing is aborted.\r\n", maxCallDepth)
		r.abort = true
		r.errorlevel = 1
		return 1
	}
	f.localDepth = len(r.locals)
	r.frames = append(r.frames, f)
	defer func() {
		for len(r.locals) > f.localDepth {
			r.endLocal()
		}
		r.frames = r.frames[:len(r.frames)-1]
		if len(r.frames) == 0 {
			r.abort = false
		}
	}()
	for pos := start; pos < len(f.lines); {
		if ctx.Err() != nil || r.exited || r.abort {
			break
		}
		if !r.step(stderr) {
			break
		}
		line := f.lines[pos]
		pos++
		if _, ok := labelOf(line); ok {
			continue
		}
		text := r.expandBatch(line, f)
		l, err := parse(text, true)
		for err == errIncomplete && pos < len(f.lines) {
			text += "\n" + r.expandBatch(f.lines[pos], f)
			pos++
			l, err = parse(text, true)
		}
		if err == errIncomplete {
			err = errSyntax
		}
		if err != nil {
			// A line cmd cannot parse ends every batch file running.
			fmt.Fprintf(stderr, "%s\r\n", err)
			r.abort = true
			r.errorlevel = syntaxCode(err)
			break
		}
		if shown := strings.TrimLeft(text, " \t"); r.echoOn && shown != "" && shown[0] != '@' {
			fmt.Fprintf(stdout, "\r\n%s>%s\r\n", r.cwd, strings.TrimRight(shown, " \t"))
		}
		r.runList(ctx, l, stdin, stdout, stderr)
		if r.jump != "" {
			label := r.jump
			r.jump = ""
			i := findLabel(f.lines, label, pos)
			if i < 0 {
				fmt.Fprintf(stderr, "The system cannot find the batch label specified - %s\r\n", label)
				r.abort = true
				r.errorlevel = 1
				break
			}
			pos = i + 1
			continue
		}
		if r.frameEnd {
			r.frameEnd = false
			break
		}
	}
	return r.errorlevel
}

// labelOf reads a label line (`:name`, after leading blanks): its name, up to a delimiter.
func labelOf(line string) (string, bool) {
	s := strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(s, ":") {
		return "", false
	}
	s = s[1:]
	end := strings.IndexAny(s, " \t,;=+:")
	if end >= 0 {
		s = s[:end]
	}
	return s, true
}

// findLabel finds the line of :label, searching from line from to the end and then from the
// top, as goto and call do; -1 when there is none.
func findLabel(lines []string, label string, from int) int {
	from = min(from, len(lines))
	for _, rng := range [][2]int{{from, len(lines)}, {0, from}} {
		for i := rng[0]; i < rng[1]; i++ {
			if name, ok := labelOf(lines[i]); ok && strings.EqualFold(name, label) {
				return i
			}
		}
	}
	return -1
}

// expandBatch is cmd's %-expansion of a batch file's line: %% is %, %0..%9 and %* the
// parameters, %~[fdpnx]n a parameter without quotes or a part of its full path, %NAME% a
// variable (nothing when undefined), and a % that starts nothing is dropped.
func (r *run) expandBatch(line string, f *frame) string {
	return expandPercent(line, r.lookup, func(line string, i int) (string, int, bool) {
		if i+1 >= len(line) {
			return "", len(line), true
		}
		switch n := line[i+1]; {
		case n == '%':
			return "%", i + 2, true
		case n >= '0' && n <= '9':
			return f.arg(int(n - '0')), i + 2, true
		case n == '*':
			return f.argText, i + 2, true
		case n == '~':
			j := i + 2
			for j < len(line) && strings.IndexByte("fdpnxsaztFDPNXSAZT", line[j]) >= 0 {
				j++
			}
			if j < len(line) && line[j] >= '0' && line[j] <= '9' {
				d := int(line[j] - '0')
				full := ""
				if d+f.shift == 0 {
					full = f.path
				}
				return r.pathMods(f.arg(d), line[i+2:j], full), j + 1, true
			}
		}
		return "", i, false
	})
}

// pathMods applies %~ modifiers to a parameter or for variable: the value without quotes,
// or the parts d (drive), p (folder), n (name), x (extension) of its full path, f the whole;
// s, a, t and z are accepted and not modelled. full, when set, is the full path to use
// (%~f0 is the batch file's own path however it was started).
func (r *run) pathMods(v, mods, full string) string {
	v = strings.Trim(v, `"`)
	mods = strings.ToLower(mods)
	if !strings.ContainsAny(mods, "fdpnx") || v == "" {
		return v
	}
	if full == "" {
		p, err := Abs(r.cwd, v)
		if err != nil {
			return v
		}
		full = p
	}
	if strings.Contains(mods, "f") && !strings.ContainsAny(mods, "dpnx") {
		return full
	}
	dir, base := Dir(full), Base(full)
	name, ext := base, ""
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		name, ext = base[:i], base[i:]
	}
	var b strings.Builder
	if strings.Contains(mods, "d") {
		b.WriteString(full[:2])
	}
	if strings.Contains(mods, "p") {
		b.WriteString(strings.TrimSuffix(dir[2:], `\`) + `\`)
	}
	if strings.Contains(mods, "n") {
		b.WriteString(name)
	}
	if strings.Contains(mods, "x") {
		b.WriteString(ext)
	}
	return b.String()
}

// late is what cmd expands as a command runs, after parsing: for variables (%i, %~ni) and,
// with delayed expansion on, !NAME!.
func (r *run) late(s string) string {
	if len(r.forVars) > 0 && strings.IndexByte(s, '%') >= 0 {
		s = r.substFor(s)
	}
	if r.delayed && strings.IndexByte(s, '!') >= 0 {
		s = r.expandDelayed(s)
	}
	return s
}

func (r *run) substFor(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		if s[j] == '~' {
			k := j + 1
			for k < len(s) && strings.IndexByte("fdpnxsaztFDPNXSAZT", s[k]) >= 0 {
				k++
			}
			// The last modifier letter may be the variable itself (%~n with variable n).
			if k < len(s) {
				if v, ok := r.forVars[s[k]]; ok {
					b.WriteString(r.pathMods(v, s[j+1:k], ""))
					i = k
					continue
				}
			}
			if k > j+1 {
				if v, ok := r.forVars[s[k-1]]; ok {
					b.WriteString(r.pathMods(v, s[j+1:k-1], ""))
					i = k - 1
					continue
				}
			}
		}
		if v, ok := r.forVars[s[j]]; ok {
			b.WriteString(v)
			i = j
			continue
		}
		b.WriteByte('%')
	}
	return b.String()
}

// expandDelayed expands !NAME! (nothing when undefined); a lone ! is dropped and ^ escapes
// the next character, as cmd does in text that holds a !.
func (r *run) expandDelayed(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '^':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '!':
			j := strings.IndexByte(s[i+1:], '!')
			if j < 0 {
				continue
			}
			if v, ok := expandOne(s[i+1:i+1+j], r.lookup); ok {
				b.WriteString(v)
			}
			i += j + 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
