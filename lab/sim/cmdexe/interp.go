package cmdexe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Process is an external program the line starts.
type Process struct {
	Path    string   // full path of the program file
	Word    string   // the command word as typed, quotes removed
	Args    []string // arguments after the program name (CommandLineToArgvW rules)
	CmdLine string   // the command line the program gets: word and tail as typed
	Tail    string   // the text after the command word, as typed
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Cwd     string
	Getenv  func(name string) (string, bool)
	Env     map[string]string // the environment the program inherits (a copy)
}

// Interp runs command lines. Its fields are read-only while lines run; each Run starts from
// Env afresh (as each WinRM command is a new cmd.exe).
type Interp struct {
	FS      FS
	Env     map[string]string // initial environment; names are case-insensitive
	Cwd     string            // e.g. C:\Users\vagrant
	Version string            // "6.1.7600": what `ver` prints
	// Exec runs a program file found on the line; it returns the exit code and must return
	// promptly once ctx is cancelled.
	Exec func(ctx context.Context, p *Process) int
	// MaxSteps bounds the commands and batch lines one Run may run (0: 200,000). The fuzz
	// target sets it low, so a looping input ends in milliseconds.
	MaxSteps int64
}

// Run runs one line and returns cmd's exit code: the code of the last command run, or the
// code given to `exit`.
func (in *Interp) Run(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	r := &run{in: in, env: newEnv(in.Env), cwd: in.Cwd, echoOn: true, budget: &budget{},
		stdout: &lockedWriter{w: stdout}, stderr: &lockedWriter{w: stderr}}
	line = Expand(line, r.lookup)
	// A line feed ends the line, as it does for `cmd /c`.
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	code := r.runText(ctx, line, stdin, r.stdout, r.stderr)
	if r.exited {
		return r.exitCode
	}
	return code
}

// run is the state of one cmd.exe process.
type run struct {
	in         *Interp
	env        *env
	cwd        string
	stdout     io.Writer
	stderr     io.Writer
	errorlevel int
	exited     bool
	exitCode   int

	echoOn   bool            // echo on: a batch file's lines are shown before they run
	delayed  bool            // setlocal EnableDelayedExpansion: !VAR! expands as each command runs
	frames   []*frame        // batch files and `call :label`s running, innermost last
	locals   []local         // setlocal's saved environments
	forVars  map[byte]string // the variables of the for commands running
	jump     string          // the label a goto asked for, found once the line has unwound
	frameEnd bool            // exit /b, goto :eof, or a batch file started without call: the innermost frame ends
	abort    bool            // a batch error: every frame ends
	calling  bool            // the next command is call's: a batch file it starts returns to the caller
	budget   *budget         // shared with every cmd.exe this one starts
}

// budget bounds what one command line may run, across the cmd.exe processes it starts (pipe
// stages, for /f commands): a batch file's goto loop, or a batch file piping into itself
// (%0|%0), ends with an error instead of running on.
type budget struct {
	steps atomic.Int64
	procs atomic.Int64
}

const (
	maxSteps = 200000 // commands and batch lines
	maxProcs = 64     // cmd.exe processes started
)

// step counts one command or batch line; false, with the message written, past the bound.
func (r *run) step(stderr io.Writer) bool {
	limit := r.in.MaxSteps
	if limit <= 0 {
		limit = maxSteps
	}
	if r.budget.steps.Add(1) <= limit {
		return true
	}
	fmt.Fprintf(stderr, "wfplab simulated guest: cmd.exe stopped after %d commands: the batch file loops without end (goto or call).\r\n", limit)
	r.exited, r.exitCode = true, 1
	return false
}

// stopped: the line being run must not go on.
func (r *run) stopped() bool { return r.exited || r.frameEnd || r.abort || r.jump != "" }

// fork is a new cmd.exe this one starts for a pipe stage or a for /f command: a copy of the
// environment, no batch file.
func (r *run) fork() *run {
	return &run{in: r.in, env: r.env.clone(), cwd: r.cwd, stdout: r.stdout, stderr: r.stderr,
		errorlevel: r.errorlevel, echoOn: true, budget: r.budget}
}

// startProc counts one cmd.exe started; false, with the message written, past the bound.
func (r *run) startProc(stderr io.Writer) bool {
	if r.budget.procs.Add(1) <= maxProcs {
		return true
	}
	fmt.Fprintf(stderr, "wfplab simulated guest: more than %d cmd.exe processes started by one command line (a batch file piping into itself?).\r\n", maxProcs)
	return false
}

func (r *run) lookup(name string) (string, bool) {
	if v, ok := r.env.get(name); ok {
		return v, true
	}
	switch strings.ToUpper(name) {
	case "ERRORLEVEL":
		return strconv.Itoa(r.errorlevel), true
	case "CD":
		return r.cwd, true
	case "CMDEXTVERSION":
		return "2", true
	}
	return "", false
}

// runText parses and runs an expanded command line.
func (r *run) runText(ctx context.Context, text string, stdin io.Reader, stdout, stderr io.Writer) int {
	l, err := parse(text, false)
	if err != nil {
		fmt.Fprintf(stderr, "%s\r\n", err)
		return syntaxCode(err)
	}
	return r.runList(ctx, l, stdin, stdout, stderr)
}

// syntaxCode is cmd's exit code for a line it could not parse.
func syntaxCode(err error) int {
	if errors.Is(err, errSyntax) {
		return 1
	}
	return 255
}

func (r *run) runList(ctx context.Context, l *list, stdin io.Reader, stdout, stderr io.Writer) int {
	code := 0
	for _, p := range l.items {
		if ctx.Err() != nil || r.stopped() {
			break
		}
		switch p.join {
		case joinAnd:
			if code != 0 {
				continue
			}
		case joinOr:
			if code == 0 {
				continue
			}
		}
		code = r.pipeline(ctx, p, stdin, stdout, stderr)
	}
	return code
}

func (r *run) pipeline(ctx context.Context, p pipeline, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(p.stage) == 1 {
		return r.command(ctx, p.stage[0], stdin, stdout, stderr)
	}
	// Each stage runs in its own cmd.exe, as cmd does for pipes (so `set` in one leaves this
	// one's variables alone); the pipe's code is the last stage's. A stage that ends closes
	// its input, so a writer before it does not block on a reader that left.
	var wg sync.WaitGroup
	in := stdin
	closeIn := func(r io.Reader) {
		if pr, ok := r.(*io.PipeReader); ok {
			pr.Close()
		}
	}
	for _, s := range p.stage[:len(p.stage)-1] {
		pr, pw := io.Pipe()
		child := r.fork()
		child.forVars = r.forVars
		wg.Add(1)
		go func(s command, in io.Reader) {
			defer wg.Done()
			if child.startProc(stderr) {
				child.command(ctx, s, in, pw, stderr)
			}
			closeIn(in)
			pw.Close()
		}(s, in)
		in = pr
	}
	code := 1
	if last := r.fork(); last.startProc(stderr) {
		last.forVars = r.forVars
		code = last.command(ctx, p.stage[len(p.stage)-1], in, stdout, stderr)
		if last.exited {
			code = last.exitCode
		}
	}
	closeIn(in)
	wg.Wait()
	r.errorlevel = code
	return code
}

// command runs one command of a pipeline.
func (r *run) command(ctx context.Context, c command, stdin io.Reader, stdout, stderr io.Writer) int {
	switch c := c.(type) {
	case *simple:
		return r.simple(ctx, c, stdin, stdout, stderr)
	case *block:
		stdin, stdout, stderr, closeAll, code, ok := r.openRedirects(r.lateRedirs(c.redirs), stdin, stdout, stderr)
		defer closeAll()
		if !ok {
			return code
		}
		return r.runList(ctx, c.body, stdin, stdout, stderr)
	case *ifCmd:
		val, err := r.evalIf(c)
		if err != nil {
			fmt.Fprintf(stderr, "%s\r\n", err)
			r.errorlevel = 1
			return 1
		}
		if val {
			return r.command(ctx, c.then, stdin, stdout, stderr)
		}
		if c.els != nil {
			return r.command(ctx, c.els, stdin, stdout, stderr)
		}
		return 0
	case *forCmd:
		return r.runFor(ctx, c, stdin, stdout, stderr)
	}
	return 0
}

// keepsErrorlevel: internal commands that leave ERRORLEVEL as it was when they succeed.
var keepsErrorlevel = map[string]bool{"echo": true, "rem": true, "set": true, "cd": true, "chdir": true,
	"goto": true, "endlocal": true, "shift": true, "cls": true, "call": true}

// simple runs one command with its redirections.
func (r *run) simple(ctx context.Context, s *simple, stdin io.Reader, stdout, stderr io.Writer) int {
	viaCall := r.calling
	r.calling = false
	if !r.step(stderr) {
		return 1
	}
	word, tail := splitWord(r.late(s.text))
	stdin, stdout, stderr, closeAll, code, ok := r.openRedirects(r.lateRedirs(s.redirs), stdin, stdout, stderr)
	defer closeAll()
	if !ok {
		r.errorlevel = code
		return code
	}
	if word == "" {
		return 0
	}
	if b, ok := builtins[strings.ToLower(word)]; ok {
		code := b(r, ctx, &call{word: word, tail: tail, stdin: stdin, stdout: stdout, stderr: stderr})
		if code != 0 || !keepsErrorlevel[strings.ToLower(word)] {
			r.errorlevel = code
		}
		return code
	}
	path, err := r.resolve(word)
	if err != nil {
		r.errorlevel = 1
		if errors.Is(err, ErrPathNotFound) {
			fmt.Fprintf(stderr, "The system cannot find the path specified.\r\n")
		} else {
			fmt.Fprintf(stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", word)
		}
		return 1
	}
	if hasExt(path, []string{".bat", ".cmd"}) {
		return r.batchFile(ctx, path, word, tail, viaCall, stdin, stdout, stderr)
	}
	if r.in.Exec == nil {
		r.errorlevel = 1
		fmt.Fprintf(stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", word)
		return 1
	}
	r.errorlevel = r.in.Exec(ctx, &Process{
		Path: path, Word: word, Args: SplitArgs(tail), CmdLine: strings.TrimLeft(r.late(s.text), " \t@"), Tail: tail,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Cwd: r.cwd, Getenv: r.lookup, Env: r.env.vars(),
	})
	return r.errorlevel
}

// lateRedirs are redirections with for variables and !VAR! expanded.
func (r *run) lateRedirs(rs []redirect) []redirect {
	if len(rs) == 0 || (r.forVars == nil && !r.delayed) {
		return rs
	}
	out := make([]redirect, len(rs))
	for i, rd := range rs {
		rd.target = r.late(rd.target)
		out[i] = rd
	}
	return out
}

// openRedirects applies redirections in order. On failure it has written cmd's message and
// returns ok=false with the exit code.
func (r *run) openRedirects(redirs []redirect, stdin io.Reader, stdout, stderr io.Writer) (io.Reader, io.Writer, io.Writer, func(), int, bool) {
	noop := func() {}
	if len(redirs) == 0 {
		return stdin, stdout, stderr, noop, 0, true
	}
	origErr := stderr
	// setOut points handle 1 or 2 at w; no program of the model writes to a handle above 2.
	setOut := func(fd int, w io.Writer) {
		switch fd {
		case 1:
			stdout = w
		case 2:
			stderr = w
		}
	}
	for _, rd := range redirs {
		if rd.dup >= 0 {
			var w io.Writer
			switch rd.dup {
			case 1:
				w = stdout
			case 2:
				w = stderr
			default:
				fmt.Fprintf(origErr, "The handle could not be duplicated\r\nduring redirection of handle %d.\r\n", rd.fd)
				return nil, nil, nil, noop, 1, false
			}
			setOut(rd.fd, w)
			continue
		}
		if dev, ok := IsDevice(rd.target); ok {
			switch {
			case rd.fd == 0:
				stdin = strings.NewReader("")
			case dev == "nul" && rd.fd == 1:
				stdout = io.Discard
			case dev == "nul" && rd.fd == 2:
				stderr = io.Discard
			}
			continue
		}
		path, err := Abs(r.cwd, rd.target)
		if err == nil && rd.fd == 0 {
			var data []byte
			data, err = r.in.FS.ReadFile(path)
			if err == nil {
				stdin = bytes.NewReader(data)
				continue
			}
		}
		if err == nil && rd.fd != 0 {
			err = r.in.FS.WriteFile(path, nil, rd.appendTo)
			if err == nil {
				setOut(rd.fd, &fileWriter{fs: r.in.FS, path: path})
				continue
			}
		}
		fmt.Fprintf(origErr, "%s\r\n", errMessage(err))
		return nil, nil, nil, noop, 1, false
	}
	return stdin, stdout, stderr, noop, 0, true
}

// resolve finds the program file a command word names: a path when the word has a folder
// or drive in it, else the current folder and then each PATH folder; PATHEXT extensions are
// tried after the name as typed.
func (r *run) resolve(word string) (string, error) {
	exts := []string{".COM", ".EXE", ".BAT", ".CMD"}
	if v, ok := r.lookup("PATHEXT"); ok {
		exts = nil
		for _, e := range strings.Split(v, ";") {
			if e = strings.TrimSpace(e); e != "" {
				exts = append(exts, e)
			}
		}
	}
	try := func(base string) (string, bool) {
		if info, err := r.in.FS.Stat(base); err == nil && !info.Dir && hasExt(base, exts) {
			return base, true
		}
		for _, e := range exts {
			if info, err := r.in.FS.Stat(base + e); err == nil && !info.Dir {
				return base + e, true
			}
		}
		return "", false
	}
	if strings.ContainsAny(word, `\/:`) {
		p, err := Abs(r.cwd, word)
		if err != nil {
			return "", err
		}
		if info, err := r.in.FS.Stat(Dir(p)); err != nil || !info.Dir {
			return "", ErrPathNotFound
		}
		if found, ok := try(p); ok {
			return found, nil
		}
		return "", fs.ErrNotExist
	}
	dirs := []string{r.cwd}
	if v, ok := r.lookup("PATH"); ok {
		dirs = append(dirs, strings.Split(v, ";")...)
	}
	for _, d := range dirs {
		d = strings.Trim(strings.TrimSpace(d), `"`)
		if d == "" {
			continue
		}
		dir, err := Abs(r.cwd, d)
		if err != nil {
			continue
		}
		if found, ok := try(Join(dir, word)); ok {
			return found, nil
		}
	}
	return "", fs.ErrNotExist
}

func hasExt(path string, exts []string) bool {
	for _, e := range exts {
		if len(path) > len(e) && strings.EqualFold(path[len(path)-len(e):], e) {
			return true
		}
	}
	return false
}

// errMessage is the Win32 message cmd prints for a file system error.
func errMessage(err error) string {
	switch {
	case errors.Is(err, ErrPathNotFound):
		return "The system cannot find the path specified."
	case errors.Is(err, fs.ErrNotExist):
		return "The system cannot find the file specified."
	case errors.Is(err, fs.ErrPermission), errors.Is(err, ErrIsDir):
		return "Access is denied."
	case errors.Is(err, fs.ErrExist):
		return "Cannot create a file when that file already exists."
	case errors.Is(err, ErrDiskFull):
		return "There is not enough space on the disk."
	}
	var m cmdMessage
	if errors.As(err, &m) {
		return string(m)
	}
	return "The parameter is incorrect."
}

// cmdMessage is an error cmd words its own way, printed as it is.
type cmdMessage string

func (m cmdMessage) Error() string { return string(m) }

// fileWriter appends every write to a file of the FS, so streaming output lands as it comes.
type fileWriter struct {
	fs   FS
	path string
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if err := w.fs.WriteFile(w.path, p, true); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lockedWriter serialises writes from the stages of a pipe.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// env is a case-insensitive environment that keeps each name's spelling.
type env struct{ m map[string][2]string }

func newEnv(init map[string]string) *env {
	e := &env{m: make(map[string][2]string, len(init))}
	for k, v := range init {
		e.set(k, v)
	}
	return e
}

func (e *env) get(name string) (string, bool) {
	v, ok := e.m[strings.ToUpper(name)]
	return v[1], ok
}

func (e *env) set(name, value string) {
	if value == "" {
		delete(e.m, strings.ToUpper(name))
		return
	}
	e.m[strings.ToUpper(name)] = [2]string{name, value}
}

func (e *env) clone() *env {
	c := &env{m: make(map[string][2]string, len(e.m))}
	for k, v := range e.m {
		c.m[k] = v
	}
	return c
}

// vars is a copy of the variables, each name as it was spelled.
func (e *env) vars() map[string]string {
	out := make(map[string]string, len(e.m))
	for _, v := range e.m {
		out[v[0]] = v[1]
	}
	return out
}

// sorted returns NAME=value lines in cmd's `set` order (by name, without case).
func (e *env) sorted() []string {
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = e.m[k][0] + "=" + e.m[k][1]
	}
	return out
}
