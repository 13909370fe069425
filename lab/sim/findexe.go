package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// find.exe and findstr.exe: the lines of stdin or of files that hold a string (find) or match
// findstr's small regular expressions. Both exit 0 when a line matched, 1 when none did.

// findExe is `find [/v] [/c] [/n] [/i] "string" [files]`.
func (g *Machine) findExe(_ context.Context, _ *boot, p *cmdexe.Process) int {
	var (
		str                     string
		haveStr                 bool
		invert, count, num, ign bool
		files                   []string
	)
	// The string must be quoted on the command line; SplitArgs would hide that, so read the tail.
	for _, tok := range cmdexe.Tokens(p.Tail) {
		switch {
		case strings.HasPrefix(tok, "/"):
			switch strings.ToLower(tok) {
			case "/v":
				invert = true
			case "/c":
				count = true
			case "/n":
				num = true
			case "/i":
				ign = true
			case "/off", "/offline":
			default:
				fmt.Fprintf(p.Stderr, "FIND: Invalid switch\r\n")
				return 2
			}
		case !haveStr && strings.HasPrefix(tok, `"`) && strings.HasSuffix(tok, `"`) && len(tok) >= 2:
			str, haveStr = tok[1:len(tok)-1], true
		case !haveStr:
			fmt.Fprint(p.Stderr, "FIND: Parameter format not correct\r\n")
			return 2
		default:
			files = append(files, strings.Trim(tok, `"`))
		}
	}
	if !haveStr {
		fmt.Fprint(p.Stderr, "FIND: Parameter format not correct\r\n")
		return 2
	}
	match := func(line string) bool {
		if ign {
			return strings.Contains(strings.ToLower(line), strings.ToLower(str)) != invert
		}
		return strings.Contains(line, str) != invert
	}
	found := false
	scan := func(r io.Reader, header string) {
		n, hits := 0, 0
		if header != "" && !count {
			fmt.Fprintf(p.Stdout, "\r\n---------- %s\r\n", header)
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			n++
			line := strings.TrimSuffix(sc.Text(), "\r")
			if !match(line) {
				continue
			}
			hits++
			found = true
			if count {
				continue
			}
			if num {
				fmt.Fprintf(p.Stdout, "[%d]%s\r\n", n, line)
			} else {
				fmt.Fprintf(p.Stdout, "%s\r\n", line)
			}
		}
		if count {
			if header != "" {
				fmt.Fprintf(p.Stdout, "\r\n---------- %s: %d\r\n", header, hits)
			} else {
				fmt.Fprintf(p.Stdout, "%d\r\n", hits)
			}
		}
	}
	if len(files) == 0 {
		scan(p.Stdin, "")
	}
	for _, f := range files {
		data, err := g.readArg(p, f)
		if err != nil {
			fmt.Fprintf(p.Stderr, "File not found - %s\r\n", strings.ToUpper(f))
			continue
		}
		scan(strings.NewReader(string(data)), strings.ToUpper(f))
	}
	if !found {
		return 1
	}
	return 0
}

// findstrRegexp turns a findstr regular expression into Go's: . * ^ $ [class] [^class]
// [x-y] \x (a literal x) \< \> (word ends); every other character is literal.
func findstrRegexp(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch c {
		case '.', '*', '^', '$':
			if c == '*' && i == 0 {
				b.WriteString(`\*`)
				continue
			}
			b.WriteByte(c)
		case '\\':
			if i+1 < len(expr) {
				i++
				switch expr[i] {
				case '<', '>':
					b.WriteString(`\b`)
				default:
					b.WriteString(regexp.QuoteMeta(expr[i : i+1]))
				}
			} else {
				b.WriteString(`\\`)
			}
		case '[':
			end := strings.IndexByte(expr[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := expr[i+1 : i+1+end]
			neg := strings.HasPrefix(class, "^")
			class = strings.TrimPrefix(class, "^")
			b.WriteByte('[')
			if neg {
				b.WriteByte('^')
			}
			for j := 0; j < len(class); j++ {
				if class[j] == '-' && j > 0 && j < len(class)-1 {
					b.WriteByte('-')
					continue
				}
				b.WriteString(regexp.QuoteMeta(class[j : j+1]))
			}
			if class == "" {
				b.WriteString(`\x00`)
			}
			b.WriteByte(']')
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(expr[i : i+1]))
		}
	}
	return b.String()
}

// findstrExe is `findstr [/r|/l] [/i] [/v] [/b] [/e] [/x] [/n] (/c:"string" | "strings") [files]`.
func (g *Machine) findstrExe(_ context.Context, _ *boot, p *cmdexe.Process) int {
	literal, ign, invert, begin, end, whole, num := false, false, false, false, false, false, false
	var strs, files []string
	for _, a := range p.Args {
		low := strings.ToLower(a)
		switch {
		case strings.HasPrefix(low, "/c:"):
			strs = append(strs, a[3:])
		case strings.HasPrefix(a, "/") && len(a) >= 2:
			for _, o := range low[1:] {
				switch o {
				case 'r':
					literal = false
				case 'l':
					literal = true
				case 'i':
					ign = true
				case 'v':
					invert = true
				case 'b':
					begin = true
				case 'e':
					end = true
				case 'x':
					whole = true
				case 'n':
					num = true
				default:
					fmt.Fprintf(p.Stderr, "FINDSTR: /%c ignored\r\n", o)
				}
			}
		case strs == nil:
			strs = strings.Fields(a) // a plain argument is several strings, any of which may match
			if strs == nil {
				strs = []string{}
			}
		default:
			files = append(files, a)
		}
	}
	if len(strs) == 0 {
		fmt.Fprint(p.Stderr, "FINDSTR: Bad command line\r\n")
		return 2
	}
	var res []*regexp.Regexp
	for _, s := range strs {
		expr := regexp.QuoteMeta(s)
		if !literal {
			expr = findstrRegexp(s)
		}
		if begin || whole {
			expr = "^(?:" + expr + ")"
		}
		if end || whole {
			expr = "(?:" + expr + ")$"
		}
		if ign {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			fmt.Fprintf(p.Stderr, "FINDSTR: Bad command line\r\n")
			return 2
		}
		res = append(res, re)
	}
	found := false
	scan := func(r io.Reader, prefix string) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSuffix(sc.Text(), "\r")
			hit := false
			for _, re := range res {
				hit = hit || re.MatchString(line)
			}
			if hit == invert {
				continue
			}
			found = true
			if num {
				fmt.Fprintf(p.Stdout, "%s%d:%s\r\n", prefix, n, line)
			} else {
				fmt.Fprintf(p.Stdout, "%s%s\r\n", prefix, line)
			}
		}
	}
	if len(files) == 0 {
		scan(p.Stdin, "")
	}
	for _, f := range files {
		data, err := g.readArg(p, f)
		if err != nil {
			fmt.Fprintf(p.Stderr, "FINDSTR: Cannot open %s\r\n", f)
			continue
		}
		prefix := ""
		if len(files) > 1 {
			prefix = f + ":"
		}
		scan(strings.NewReader(string(data)), prefix)
	}
	if !found {
		return 1
	}
	return 0
}
