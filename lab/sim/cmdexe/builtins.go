package cmdexe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// call is one internal command: its word, the text after it, and its handles.
type call struct {
	word, tail     string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// syntaxError prints cmd's answer to a command it cannot use, and fails it.
func (c *call) syntaxError() int {
	fmt.Fprintf(c.stderr, "%s\r\n", errSyntax.msg)
	return 1
}

type builtin func(r *run, ctx context.Context, c *call) int

var builtins map[string]builtin

func init() {
	builtins = map[string]builtin{
		"echo":     (*run).echo,
		"exit":     (*run).exit,
		"ver":      (*run).ver,
		"set":      (*run).set,
		"mkdir":    (*run).mkdir,
		"md":       (*run).mkdir,
		"del":      (*run).del,
		"erase":    (*run).del,
		"type":     (*run).typ,
		"cd":       (*run).cd,
		"chdir":    (*run).cd,
		"rem":      func(*run, context.Context, *call) int { return 0 },
		"call":     (*run).call,
		"goto":     (*run).gotoLabel,
		"setlocal": (*run).setlocal,
		"endlocal": (*run).endlocal,
		"shift":    (*run).shift,
		"cls":      func(*run, context.Context, *call) int { return 0 },
	}
}

// echo prints its text as typed after the one delimiter that follows the word: the blank
// before a redirection stays part of the text, as in cmd.
func (r *run) echo(_ context.Context, c *call) int {
	text := c.tail
	if strings.TrimSpace(text) == "" {
		if text == "" || isBlank(text[0]) {
			if r.echoOn {
				fmt.Fprint(c.stdout, "ECHO is on.\r\n")
			} else {
				fmt.Fprint(c.stdout, "ECHO is off.\r\n")
			}
			return 0
		}
		// "echo." and friends print an empty line.
	}
	if text != "" {
		text = text[1:]
	}
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "on", "off":
		if c.tail != "" && isBlank(c.tail[0]) {
			r.echoOn = strings.EqualFold(strings.TrimSpace(text), "on")
			return 0
		}
	}
	fmt.Fprintf(c.stdout, "%s\r\n", text)
	return 0
}

// exit [/b] [code]: ends cmd.exe with code (default: the current errorlevel); in a batch
// file, exit /b ends only the batch file or the `call :label` running.
func (r *run) exit(_ context.Context, c *call) int {
	f := strings.Fields(c.tail)
	b := false
	if len(f) > 0 && strings.EqualFold(f[0], "/b") {
		f, b = f[1:], true
	}
	code := r.errorlevel
	if len(f) > 0 {
		code = atoiPrefix(f[0])
	}
	r.errorlevel = code
	if b && len(r.frames) > 0 {
		r.frameEnd = true
		return code
	}
	r.exited, r.exitCode = true, code
	return code
}

// atoiPrefix reads a leading signed decimal number, as cmd's exit does ("exit 3x" is 3,
// "exit x" is 0), wrapping to 32 bits like a Windows exit code.
func atoiPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' && j-i < 18 {
		j++
	}
	n, err := strconv.ParseInt(s[:j], 10, 64)
	if err != nil {
		return 0
	}
	return int(int32(n))
}

func (r *run) ver(_ context.Context, c *call) int {
	fmt.Fprintf(c.stdout, "\r\nMicrosoft Windows [Version %s]\r\n", r.in.Version)
	return 0
}

// set shows, sets or clears variables of this cmd.exe, or computes (/a); /p is not modelled.
func (r *run) set(_ context.Context, c *call) int {
	arg := strings.TrimLeft(c.tail, " \t")
	if arg == "" {
		for _, l := range r.env.sorted() {
			fmt.Fprintf(c.stdout, "%s\r\n", l)
		}
		return 0
	}
	if strings.HasPrefix(strings.ToLower(arg), "/a") {
		return r.setArith(c, arg[2:])
	}
	if strings.HasPrefix(strings.ToLower(arg), "/p") {
		return c.syntaxError()
	}
	if strings.HasPrefix(arg, `"`) {
		if end := strings.LastIndexByte(arg, '"'); end > 0 {
			arg = arg[1:end]
		}
	}
	name, value, hasEq := strings.Cut(arg, "=")
	if !hasEq {
		name = strings.TrimRight(name, " \t")
		found := false
		for _, l := range r.env.sorted() {
			if len(l) >= len(name) && strings.EqualFold(l[:len(name)], name) {
				fmt.Fprintf(c.stdout, "%s\r\n", l)
				found = true
			}
		}
		if !found {
			fmt.Fprintf(c.stdout, "Environment variable %s not defined\r\n", name)
			return 1
		}
		return 0
	}
	if name == "" {
		return c.syntaxError()
	}
	r.env.set(name, value)
	return 0
}

// mkdir makes each folder named, with the folders above it (command extensions are on).
func (r *run) mkdir(_ context.Context, c *call) int {
	return r.forEachPath(c, func(arg, p string) error {
		if _, err := r.in.FS.Stat(p); err == nil {
			return cmdMessage(fmt.Sprintf("A subdirectory or file %s already exists.", arg))
		}
		return r.mkdirAll(p)
	})
}

// forEachPath calls do with each argument and its absolute path; no argument is a syntax
// error. An error, from the path or from do, is printed as cmd words it and makes the exit
// code 1; the other arguments still run.
func (r *run) forEachPath(c *call, do func(arg, path string) error) int {
	args := SplitArgs(c.tail)
	if len(args) == 0 {
		return c.syntaxError()
	}
	code := 0
	for _, a := range args {
		p, err := Abs(r.cwd, a)
		if err == nil {
			err = do(a, p)
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "%s\r\n", errMessage(err))
			code = 1
		}
	}
	return code
}

// maxMkdirDepth bounds md's walk up to an existing folder; cmd's paths are short
// (MAX_PATH, 260 characters), so a deeper one is refused rather than walked.
const maxMkdirDepth = 256

// mkdirAll makes p and its missing parents, as md does with command extensions on.
func (r *run) mkdirAll(p string) error {
	var missing []string
	for cur := p; ; cur = Dir(cur) {
		if len(missing) >= maxMkdirDepth {
			return ErrPathNotFound
		}
		info, err := r.in.FS.Stat(cur)
		if err == nil {
			if !info.Dir {
				return ErrPathNotFound
			}
			break
		}
		if Dir(cur) == cur {
			return ErrPathNotFound // the drive root itself is missing
		}
		missing = append(missing, cur)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := r.in.FS.Mkdir(missing[i]); err != nil {
			return err
		}
	}
	return nil
}

// del deletes files: names, wildcards, or every file of a named folder. /q skips the
// confirmation a folder or `*.*` asks for; /f and /a are accepted (the model has no
// read-only attribute). A missing file prints "Could Not Find" and still exits 0, as cmd.
func (r *run) del(_ context.Context, c *call) int {
	var names []string
	quiet := false
	for _, a := range SplitArgs(c.tail) {
		if strings.HasPrefix(a, "/") {
			switch strings.ToLower(a) {
			case "/q":
				quiet = true
			case "/f", "/s", "/p":
			default:
				if !strings.HasPrefix(strings.ToLower(a), "/a") {
					fmt.Fprintf(c.stderr, "Invalid switch - %s\r\n", strings.TrimPrefix(a, "/"))
					return 1
				}
			}
			continue
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		return c.syntaxError()
	}
	in := bufio.NewReader(c.stdin)
	for _, n := range names {
		p, err := Abs(r.cwd, n)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s\r\n", errMessage(err))
			continue
		}
		dir, pattern := Dir(p), Base(p)
		info, statErr := r.in.FS.Stat(p)
		switch {
		case statErr == nil && info.Dir:
			dir, pattern = p, "*"
		case statErr == nil:
			if err := r.in.FS.Remove(p); err != nil {
				fmt.Fprintf(c.stderr, "%s\r\n", errMessage(err))
			}
			continue
		case !HasWildcard(p):
			if errors.Is(statErr, ErrPathNotFound) {
				fmt.Fprintf(c.stderr, "The system cannot find the path specified.\r\n")
			} else {
				fmt.Fprintf(c.stderr, "Could Not Find %s\r\n", p)
			}
			continue
		}
		if !quiet && (pattern == "*" || pattern == "*.*") {
			fmt.Fprintf(c.stdout, "%s, Are you sure (Y/N)? ", Join(dir, "*"))
			ans, _ := in.ReadString('\n')
			fmt.Fprint(c.stdout, "\r\n")
			if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ans)), "y") {
				continue
			}
		}
		entries, err := r.in.FS.ReadDir(dir)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s\r\n", errMessage(err))
			continue
		}
		found := false
		for _, e := range entries {
			if e.Dir || !Match(pattern, e.Name) {
				continue
			}
			found = true
			if err := r.in.FS.Remove(Join(dir, e.Name)); err != nil {
				fmt.Fprintf(c.stderr, "%s\r\n", errMessage(err))
			}
		}
		if !found && pattern != "*" {
			fmt.Fprintf(c.stderr, "Could Not Find %s\r\n", p)
		}
	}
	return 0
}

// typ prints files.
func (r *run) typ(_ context.Context, c *call) int {
	return r.forEachPath(c, func(_, p string) error {
		data, err := r.in.FS.ReadFile(p)
		if errors.Is(err, ErrIsDir) {
			return fs.ErrPermission
		}
		if err != nil {
			return err
		}
		c.stdout.Write(data)
		return nil
	})
}

// cd prints or changes the current folder of this cmd.exe.
func (r *run) cd(_ context.Context, c *call) int {
	arg := strings.TrimSpace(c.tail)
	if strings.HasPrefix(strings.ToLower(arg), "/d") {
		arg = strings.TrimSpace(arg[2:])
	}
	arg = strings.Trim(arg, `"`)
	if arg == "" {
		fmt.Fprintf(c.stdout, "%s\r\n", r.cwd)
		return 0
	}
	p, err := Abs(r.cwd, arg)
	if err == nil {
		var info FileInfo
		info, err = r.in.FS.Stat(p)
		if err == nil && !info.Dir {
			err = fmt.Errorf("not a folder: %w", fs.ErrInvalid)
		}
	}
	if err != nil {
		fmt.Fprint(c.stderr, "The system cannot find the path specified.\r\n")
		return 1
	}
	r.cwd = p
	return 0
}

// evalIf is an if command's condition, its operands expanded as the command runs.
func (r *run) evalIf(c *ifCmd) (bool, error) {
	a := r.late(c.a)
	var val bool
	switch c.kind {
	case "exist":
		val = r.exists(unquote(a))
	case "defined":
		_, val = r.lookup(a)
	case "errorlevel", "cmdextversion":
		n, err := strconv.Atoi(a)
		if err != nil {
			return false, unexpected(a)
		}
		have := r.errorlevel
		if c.kind == "cmdextversion" {
			have = 2
		}
		val = have >= n
	default:
		var err error
		// Quotes are part of what is compared: "a"==a is false in cmd.
		val, err = compare(a, c.op, r.late(c.b), c.fold)
		if err != nil {
			return false, err
		}
	}
	return val != c.not, nil
}

func compare(a, op, b string, fold bool) (bool, error) {
	if fold {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	if op == "==" {
		return a == b, nil
	}
	cmp := strings.Compare(a, b)
	if x, err1 := strconv.Atoi(a); err1 == nil {
		if y, err2 := strconv.Atoi(b); err2 == nil {
			cmp = 0
			if x < y {
				cmp = -1
			} else if x > y {
				cmp = 1
			}
		}
	}
	switch strings.ToUpper(op) {
	case "EQU":
		return cmp == 0, nil
	case "NEQ":
		return cmp != 0, nil
	case "LSS":
		return cmp < 0, nil
	case "LEQ":
		return cmp <= 0, nil
	case "GTR":
		return cmp > 0, nil
	case "GEQ":
		return cmp >= 0, nil
	}
	return false, unexpected(op)
}

// exists is `if exist`: a file or folder, or any match of a wildcard; NUL always exists.
func (r *run) exists(p string) bool {
	if _, ok := IsDevice(p); ok {
		return true
	}
	abs, err := Abs(r.cwd, p)
	if err != nil {
		return false
	}
	if !HasWildcard(abs) {
		_, err := r.in.FS.Stat(abs)
		return err == nil
	}
	entries, err := r.in.FS.ReadDir(Dir(abs))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if Match(Base(abs), e.Name) {
			return true
		}
	}
	return false
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return strings.Trim(s, `"`)
}
