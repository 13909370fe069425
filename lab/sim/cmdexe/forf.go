package cmdexe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// for %v in (set) do command, and for /f: the command runs once per item or per line of a
// command's output, a string or files, with %v (and the letters after it) bound.

// forOpts are for /f's options.
type forOpts struct {
	eol     byte // 0: none
	skip    int
	delims  string
	tokens  []int // ascending
	rest    bool  // `*`: the rest of the line goes to the next variable
	backq   bool
	tokSpec bool
}

// parseForOptions reads "eol=c skip=n delims=xxx tokens=x,y,m-n* usebackq".
func parseForOptions(s string) (forOpts, error) {
	o := forOpts{eol: ';', delims: " \t", tokens: []int{1}}
	keys := []string{"eol=", "skip=", "delims=", "tokens=", "usebackq"}
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		lower := strings.ToLower(s)
		key := ""
		for _, k := range keys {
			if strings.HasPrefix(lower, k) {
				key = k
			}
		}
		if key == "" {
			return o, unexpected(strings.Fields(s)[0])
		}
		s = s[len(key):]
		// A value ends at the blank before the next option; delims= may hold blanks itself,
		// so it ends only where another option starts.
		end := strings.IndexByte(s, ' ')
		if key == "delims=" {
			end = -1
			for i := 0; i < len(s); i++ {
				if s[i] != ' ' {
					continue
				}
				for _, k := range keys {
					if strings.HasPrefix(strings.ToLower(s[i+1:]), k) {
						end = i
						break
					}
				}
				if end >= 0 {
					break
				}
			}
		}
		if end < 0 {
			end = len(s)
		}
		val := s[:end]
		s = s[end:]
		switch key {
		case "eol=":
			o.eol = 0
			if val != "" {
				o.eol = val[0]
			}
		case "skip=":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return o, unexpected(key + val)
			}
			o.skip = n
		case "delims=":
			o.delims = val
		case "usebackq":
			o.backq = true
		case "tokens=":
			t, rest, ok := parseTokens(val)
			if !ok {
				return o, unexpected(key + val)
			}
			o.tokens, o.rest, o.tokSpec = t, rest, true
		}
	}
	return o, nil
}

// parseTokens reads "1,3", "2-4", "1*" or "*": token numbers from 1 to 31.
func parseTokens(v string) ([]int, bool, bool) {
	rest := strings.HasSuffix(v, "*")
	v = strings.TrimSuffix(v, "*")
	seen := map[int]bool{}
	if v != "" {
		for _, part := range strings.Split(v, ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(lo)
			if err != nil || a < 1 || a > 31 {
				return nil, false, false
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil || b < a || b > 31 {
					return nil, false, false
				}
			}
			for n := a; n <= b; n++ {
				seen[n] = true
			}
		}
	}
	var out []int
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out, rest, len(out) > 0 || rest
}

func (r *run) runFor(ctx context.Context, c *forCmd, stdin io.Reader, stdout, stderr io.Writer) int {
	set := r.late(c.set)
	if !c.f {
		code := 0
		for _, item := range r.forItems(set) {
			if ctx.Err() != nil || r.stopped() {
				break
			}
			code = r.withForVars(map[byte]string{c.v: item}, func() int { return r.command(ctx, c.body, stdin, stdout, stderr) })
		}
		return code
	}
	o, err := parseForOptions(r.late(c.options))
	if err != nil {
		fmt.Fprintf(stderr, "%s\r\n", err)
		return 1
	}
	text, ok := r.forSource(ctx, strings.TrimSpace(set), o, stderr)
	if !ok {
		return 1
	}
	code := 0
	skipped := 0
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n") {
		if ctx.Err() != nil || r.stopped() {
			break
		}
		if line == "" {
			continue
		}
		if skipped < o.skip {
			skipped++
			continue
		}
		vars, ok := o.split(line, c.v)
		if !ok {
			continue
		}
		code = r.withForVars(vars, func() int { return r.command(ctx, c.body, stdin, stdout, stderr) })
	}
	return code
}

// forSource is the text for /f reads: a command's output ('cmd', or `cmd` with usebackq),
// a string ("text", or 'text' with usebackq), or files.
func (r *run) forSource(ctx context.Context, set string, o forOpts, stderr io.Writer) (string, bool) {
	cmdQ, strQ := byte('\''), byte('"')
	if o.backq {
		cmdQ, strQ = '`', '\''
	}
	if len(set) >= 2 && set[0] == cmdQ && set[len(set)-1] == cmdQ {
		// The command runs in a new cmd.exe (cmd /c), which expands %VAR% again.
		var out bytes.Buffer
		child := r.fork()
		if !child.startProc(stderr) {
			return "", false
		}
		line := Expand(set[1:len(set)-1], child.lookup)
		child.runText(ctx, line, strings.NewReader(""), &lockedWriter{w: &out}, stderr)
		return out.String(), true
	}
	if len(set) >= 2 && set[0] == strQ && set[len(set)-1] == strQ {
		return set[1 : len(set)-1], true
	}
	var b strings.Builder
	for _, name := range splitBatchArgs(set) {
		name = strings.Trim(name, `"`)
		p, err := Abs(r.cwd, name)
		var data []byte
		if err == nil {
			data, err = r.in.FS.ReadFile(p)
		}
		if err != nil {
			fmt.Fprintf(stderr, "The system cannot find the file %s.\r\n", name)
			return "", false
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String(), true
}

// split cuts a line into the tokens asked for, bound to v and the letters after it; ok is
// false for a line for /f skips (end-of-line character, or no token at all).
func (o forOpts) split(line string, v byte) (map[byte]string, bool) {
	type field struct{ start, end int }
	var fields []field
	for i := 0; i < len(line); {
		for i < len(line) && strings.IndexByte(o.delims, line[i]) >= 0 {
			i++
		}
		if i >= len(line) {
			break
		}
		j := i
		for j < len(line) && strings.IndexByte(o.delims, line[j]) < 0 {
			j++
		}
		fields = append(fields, field{i, j})
		i = j
	}
	if len(fields) == 0 || (o.eol != 0 && line[fields[0].start] == o.eol) {
		return nil, false
	}
	vars := map[byte]string{}
	letter := v
	any := false
	last := 0
	for _, t := range o.tokens {
		val := ""
		if t <= len(fields) {
			val, any = line[fields[t-1].start:fields[t-1].end], true
		}
		vars[letter] = val
		letter++
		last = t
	}
	if o.rest {
		val := ""
		if last < len(fields) {
			val, any = line[fields[last].start:], true
		}
		vars[letter] = val
	}
	return vars, any
}

// forItems splits a plain for's set into items; an item with * or ? stands for the files it
// matches.
func (r *run) forItems(set string) []string {
	var out []string
	for _, item := range splitBatchArgs(set) {
		if !HasWildcard(item) {
			out = append(out, item)
			continue
		}
		p, err := Abs(r.cwd, strings.Trim(item, `"`))
		if err != nil {
			continue
		}
		entries, err := r.in.FS.ReadDir(Dir(p))
		if err != nil {
			continue
		}
		prefix := ""
		if i := strings.LastIndexAny(item, `\:`); i >= 0 {
			prefix = item[:i+1]
		}
		for _, e := range entries {
			if !e.Dir && Match(Base(p), e.Name) {
				out = append(out, prefix+e.Name)
			}
		}
	}
	return out
}

// withForVars runs fn with more for variables bound.
func (r *run) withForVars(vars map[byte]string, fn func() int) int {
	saved := r.forVars
	m := make(map[byte]string, len(saved)+len(vars))
	for k, v := range saved {
		m[k] = v
	}
	for k, v := range vars {
		m[k] = v
	}
	r.forVars = m
	defer func() { r.forVars = saved }()
	return fn()
}
