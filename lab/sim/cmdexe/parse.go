package cmdexe

import (
	"fmt"
	"strings"
)

// joinOp says when a pipeline runs, given the exit code of the one before it.
type joinOp int

const (
	joinAlways joinOp = iota // first pipeline, or after `&`
	joinAnd                  // after `&&`: only when the previous one succeeded
	joinOr                   // after `||`: only when it failed
)

// pipeline is one or more simple commands joined by `|`.
type pipeline struct {
	join  joinOp
	stage []*simple
}

// simple is one command: its text with redirections taken out (quotes kept, `^` escapes
// resolved) and the redirections in the order written.
type simple struct {
	text   string
	redirs []redirect
}

// redirect is `[n]>file`, `[n]>>file`, `<file` or `[n]>&m`.
type redirect struct {
	fd       int // 0 stdin, 1 stdout, 2 stderr
	appendTo bool
	target   string // file name as typed, quotes removed; "" when dup is set
	dup      int    // handle to duplicate, or -1
}

// syntaxError is what cmd prints when it cannot parse a line.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

var errSyntax = &syntaxError{"The syntax of the command is incorrect."}

func unexpected(tok string) error {
	return &syntaxError{fmt.Sprintf("%s was unexpected at this time.", tok)}
}

// parseLine splits an expanded line into pipelines joined by `&`, `&&`, `||`, and each into
// simple commands joined by `|`, honouring double quotes and `^` escapes. A line feed ends
// the line, as it does for `cmd /c`.
func parseLine(line string) ([]pipeline, error) {
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = strings.ReplaceAll(line, "\r", "")
	p := lineParser{cur: pipeline{join: joinAlways}}
	inQuote := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if inQuote {
			p.text.WriteByte(c)
			if c == '"' {
				inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote = true
			p.text.WriteByte(c)
		case '^':
			if i+1 < len(line) {
				i++
				p.text.WriteByte(line[i])
			}
		case '&', '|':
			op := line[i : i+1]
			if i+1 < len(line) && line[i+1] == c {
				op = line[i : i+2]
				i++
			}
			if err := p.operator(op); err != nil {
				return nil, err
			}
		case '>', '<':
			r, next, err := parseRedirect(line, i, &p.text)
			if err != nil {
				return nil, err
			}
			p.redirs = append(p.redirs, r)
			i = next - 1
		default:
			p.text.WriteByte(c)
		}
	}
	return p.finish()
}

// lineParser is parseLine's state between operators: the pipelines so far, the one being
// built and the simple command being read.
type lineParser struct {
	out     []pipeline
	cur     pipeline
	text    strings.Builder
	redirs  []redirect
	pending string // operator that needs a command after it
}

// operator ends the simple command before op (`&`, `&&`, `|` or `||`) and, unless op is a
// pipe, the pipeline too.
func (p *lineParser) operator(op string) error {
	if err := p.endSimple(op); err != nil {
		return err
	}
	switch op {
	case "&":
		p.endPipeline(joinAlways)
	case "&&":
		p.endPipeline(joinAnd)
	case "||":
		p.endPipeline(joinOr)
	}
	return nil
}

// endSimple ends the simple command read so far, op being what follows it ("" at the end of
// the line). An empty one is an error where cmd says so: before an operator, after `|`,
// `&&` or `||`.
func (p *lineParser) endSimple(op string) error {
	s := &simple{text: p.text.String(), redirs: p.redirs}
	p.text.Reset()
	p.redirs = nil
	if strings.TrimSpace(s.text) == "" && len(s.redirs) == 0 {
		if op != "" {
			return unexpected(op)
		}
		if p.pending != "" && p.pending != "&" {
			return errSyntax
		}
		if len(p.cur.stage) > 0 { // "a |" with nothing after
			return errSyntax
		}
		return nil
	}
	p.cur.stage = append(p.cur.stage, s)
	p.pending = op
	return nil
}

// endPipeline keeps the pipeline being built, if it has a command, and starts the next one.
func (p *lineParser) endPipeline(next joinOp) {
	if len(p.cur.stage) > 0 {
		p.out = append(p.out, p.cur)
	}
	p.cur = pipeline{join: next}
}

// finish ends the line: its last simple command and pipeline.
func (p *lineParser) finish() ([]pipeline, error) {
	if err := p.endSimple(""); err != nil {
		return nil, err
	}
	if p.pending != "" && p.pending != "&" && len(p.cur.stage) == 0 {
		return nil, errSyntax
	}
	p.endPipeline(joinAlways)
	return p.out, nil
}

// parseRedirect reads the redirection starting at line[i] ('>' or '<'). A digit written just
// before it, itself after a blank or at the start, names the handle and is taken out of text.
// It returns the index after the redirection.
func parseRedirect(line string, i int, text *strings.Builder) (redirect, int, error) {
	r := redirect{fd: 1, dup: -1}
	if line[i] == '<' {
		r.fd = 0
	}
	t := text.String()
	if n := len(t); n > 0 && t[n-1] >= '0' && t[n-1] <= '9' && (n == 1 || isBlank(t[n-2])) {
		r.fd = int(t[n-1] - '0')
		text.Reset()
		text.WriteString(t[:n-1])
	}
	i++
	if line[i-1] == '>' && i < len(line) && line[i] == '>' {
		r.appendTo = true
		i++
	}
	if i+1 < len(line) && line[i] == '&' && line[i+1] >= '0' && line[i+1] <= '9' {
		r.dup = int(line[i+1] - '0')
		return r, i + 2, nil
	}
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	var target strings.Builder
	if i < len(line) && line[i] == '"' {
		end := strings.IndexByte(line[i+1:], '"')
		if end < 0 {
			target.WriteString(line[i+1:])
			i = len(line)
		} else {
			target.WriteString(line[i+1 : i+1+end])
			i += end + 2
		}
	} else {
		for i < len(line) && !isBlank(line[i]) && !strings.ContainsRune("<>&|", rune(line[i])) {
			if line[i] == '^' && i+1 < len(line) {
				i++
			}
			target.WriteByte(line[i])
			i++
		}
	}
	if target.Len() == 0 {
		if i < len(line) {
			return r, i, unexpected(string(line[i]))
		}
		return r, i, errSyntax
	}
	r.target = target.String()
	return r, i, nil
}

// isBlank is cmd's token delimiter set for the command word and redirections.
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isDelim also counts the separators cmd accepts between a command and its arguments.
func isDelim(c byte) bool { return c == ' ' || c == '\t' || c == ',' || c == ';' || c == '=' }

// splitWord takes the command word off a simple command's text. Leading delimiters and an
// `@` are skipped. The word may be quoted; quotes are removed from it. tail is everything
// after the word, starting with the delimiter that ended it.
func splitWord(text string) (word, tail string) {
	i := 0
	for i < len(text) && (isDelim(text[i]) || text[i] == '@') {
		i++
	}
	var b strings.Builder
	inQuote := false
	j := i
	for ; j < len(text); j++ {
		c := text[j]
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if !inQuote && (isBlank(c) || c == ',' || c == ';') {
			break
		}
		b.WriteByte(c)
	}
	word, tail = b.String(), text[j:]
	// "echo." "echo/" "cd.." "cd\": internal commands end at these characters too.
	for _, name := range []string{"echo", "cd", "chdir", "md", "mkdir", "type", "dir"} {
		if len(word) > len(name) && strings.EqualFold(word[:len(name)], name) &&
			strings.ContainsRune(`./\:(+[]`, rune(word[len(name)])) && !strings.Contains(text[i:j], `"`) {
			return word[:len(name)], text[i+len(name):]
		}
	}
	return word, tail
}
