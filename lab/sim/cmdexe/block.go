package cmdexe

import (
	"errors"
	"fmt"
	"strings"
)

// cmd's second phase: after %-expansion, a line (or, in a batch file, the lines of an open
// parenthesised block) becomes a tree of commands. Quotes, `^`, `(`, `)`, `&`, `&&`, `||`,
// `|` and redirections are read here; `if` and `for` take their condition, set and command
// apart here too, so a block's %VAR% were expanded once, before any of it runs.

// joinOp says when a pipeline runs, given the exit code of the one before it.
type joinOp int

const (
	joinAlways joinOp = iota // first pipeline, or after `&` (or a line feed inside a block)
	joinAnd                  // after `&&`: only when the previous one succeeded
	joinOr                   // after `||`: only when it failed
)

// list is pipelines run in turn.
type list struct{ items []pipeline }

// pipeline is one or more commands joined by `|`.
type pipeline struct {
	join  joinOp
	stage []command
}

// command is a *simple, *block, *ifCmd or *forCmd.
type command interface{}

// simple is one command: its text with redirections taken out (quotes kept, `^` escapes
// resolved) and the redirections in the order written.
type simple struct {
	text   string
	redirs []redirect
}

// block is `( list )` with the redirections written after the `)`.
type block struct {
	body   *list
	redirs []redirect
}

// ifCmd is `if [/i] [not] condition command [else command]`.
type ifCmd struct {
	fold, not bool
	kind      string // exist, defined, errorlevel, cmdextversion, or "" for a comparison
	a, op, b  string // operands as written (quotes kept); op for a comparison
	then, els command
}

// forCmd is `for [/f ["options"]] %v in (set) do command`.
type forCmd struct {
	f       bool
	options string // /f's options, quotes removed
	v       byte   // the variable's letter
	set     string // text between the parentheses
	body    command
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

// errIncomplete: the text ends inside a block (or after a line-continuing `^`); a batch file
// reads its next line and parses again.
var errIncomplete = errors.New("cmdexe: the command continues on the next line")

func unexpected(tok string) error {
	return &syntaxError{fmt.Sprintf("%s was unexpected at this time.", tok)}
}

// maxNesting bounds blocks and ifs inside each other; cmd's own parser gives up far deeper
// than any script goes, the bound keeps the recursion of this one finite.
const maxNesting = 200

// parser reads one command line. batch: a `^` at the very end asks for the next line.
type parser struct {
	s     string
	i     int
	depth int // open blocks
	nest  int
	batch bool
}

// parse turns expanded text into a command list.
func parse(text string, batch bool) (*list, error) {
	p := &parser{s: strings.ReplaceAll(text, "\r", ""), batch: batch}
	return p.list(true)
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) skipBlanks() {
	for p.i < len(p.s) && isBlank(p.s[p.i]) {
		p.i++
	}
}

// list reads pipelines joined by operators. stopNL: a line feed ends it (a line, or the
// command of an if or for); otherwise, inside a block, a line feed separates commands.
func (p *parser) list(stopNL bool) (*list, error) {
	p.nest++
	defer func() { p.nest-- }()
	if p.nest > maxNesting {
		return nil, errSyntax
	}
	l := &list{}
	join := joinAlways
	pending := "" // an operator that needs a command after it
	for {
		p.skipBlanks()
		if p.eof() {
			break
		}
		c := p.s[p.i]
		if c == ')' && p.depth > 0 {
			break
		}
		if c == '\n' {
			if stopNL || p.depth == 0 {
				break
			}
			p.i++
			if pending == "&&" || pending == "||" {
				continue // the command may follow on the next line of the block
			}
			join, pending = joinAlways, ""
			continue
		}
		pl, err := p.pipeline(join)
		if err != nil {
			return nil, err
		}
		if pl == nil {
			if c := p.peekOp(); c != "" {
				return nil, unexpected(c)
			}
			break
		}
		l.items = append(l.items, *pl)
		pending = ""
		p.skipBlanks()
		switch op := p.peekOp(); op {
		case "&":
			p.i++
			join, pending = joinAlways, "&"
		case "&&":
			p.i += 2
			join, pending = joinAnd, "&&"
		case "||":
			p.i += 2
			join, pending = joinOr, "||"
		}
		if pending == "" {
			// The command ended at a line feed, a `)` or the end; anything else (a word after
			// a block's `)`) is out of place.
			if p.eof() || p.s[p.i] == ')' {
				break
			}
			if p.s[p.i] != '\n' {
				return nil, unexpected(p.token())
			}
			if stopNL {
				break
			}
		}
	}
	if pending == "&&" || pending == "||" {
		if p.eof() && p.batch && p.depth > 0 {
			return nil, errIncomplete
		}
		return nil, errSyntax
	}
	return l, nil
}

// peekOp is the operator at the current position: "&", "&&", "|", "||" or "".
func (p *parser) peekOp() string {
	if p.eof() {
		return ""
	}
	c := p.s[p.i]
	if c != '&' && c != '|' {
		return ""
	}
	if p.i+1 < len(p.s) && p.s[p.i+1] == c {
		return p.s[p.i : p.i+2]
	}
	return p.s[p.i : p.i+1]
}

// pipeline reads commands joined by `|`; nil when there is no command here.
func (p *parser) pipeline(join joinOp) (*pipeline, error) {
	c, err := p.command()
	if err != nil || c == nil {
		return nil, err
	}
	pl := &pipeline{join: join, stage: []command{c}}
	for {
		p.skipBlanks()
		if p.peekOp() != "|" {
			return pl, nil
		}
		p.i++
		p.skipBlanks()
		c, err := p.command()
		if err != nil {
			return nil, err
		}
		if c == nil {
			if p.eof() || p.s[p.i] == '\n' {
				return nil, errSyntax
			}
			return nil, unexpected(p.peekOp())
		}
		pl.stage = append(pl.stage, c)
	}
}

// command reads one command: a block, an if, a for, a rem, or a simple command. nil when
// there is none before an operator, a `)`, a line feed or the end.
func (p *parser) command() (command, error) {
	p.skipBlanks()
	if p.eof() {
		return nil, nil
	}
	if p.s[p.i] == '(' {
		return p.block()
	}
	word := p.peekWord()
	switch strings.ToLower(word) {
	case "if":
		p.i += p.wordEnd()
		return p.ifCommand()
	case "for":
		p.i += p.wordEnd()
		return p.forCommand()
	case "rem":
		// The rest of the line is the remark: no operator or redirection in it counts.
		start := p.i
		for !p.eof() && p.s[p.i] != '\n' {
			p.i++
		}
		return &simple{text: p.s[start:p.i]}, nil
	}
	return p.simple()
}

// peekWord is the command word at the current position ("" if none), without `@`.
func (p *parser) peekWord() string {
	rest := p.s[p.i:]
	rest = strings.TrimLeft(rest, "@ \t")
	end := 0
	for end < len(rest) && !isDelim(rest[end]) && !strings.ContainsRune("()&|<>\n\"", rune(rest[end])) {
		end++
	}
	return rest[:end]
}

// wordEnd is the length from the current position to the end of peekWord's word.
func (p *parser) wordEnd() int {
	i := p.i
	for i < len(p.s) && (p.s[i] == '@' || isBlank(p.s[i])) {
		i++
	}
	return i - p.i + len(p.peekWord())
}

func (p *parser) block() (command, error) {
	p.nest++
	defer func() { p.nest-- }()
	if p.nest > maxNesting {
		return nil, errSyntax
	}
	p.i++ // (
	p.depth++
	body, err := p.list(false)
	if err != nil {
		return nil, err
	}
	if p.eof() {
		if p.batch {
			return nil, errIncomplete
		}
		return nil, errSyntax
	}
	p.i++ // )
	p.depth--
	b := &block{body: body}
	for {
		p.skipBlanks()
		if p.eof() || (p.s[p.i] != '>' && p.s[p.i] != '<' && !p.digitRedirect()) {
			return b, nil
		}
		var text strings.Builder
		if p.digitRedirect() {
			text.WriteByte(' ')
			text.WriteByte(p.s[p.i])
			p.i++
		}
		r, next, err := parseRedirect(p.s, p.i, &text, p.depth > 0)
		if err != nil {
			return nil, err
		}
		b.redirs = append(b.redirs, r)
		p.i = next
	}
}

func (p *parser) digitRedirect() bool {
	return p.i+1 < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' && (p.s[p.i+1] == '>' || p.s[p.i+1] == '<')
}

// simple reads a command's text up to an operator, a line feed, or the `)` of an open block.
func (p *parser) simple() (command, error) {
	var text strings.Builder
	var redirs []redirect
	inQuote := false
loop:
	for !p.eof() {
		c := p.s[p.i]
		if c == '\n' {
			break
		}
		if inQuote {
			text.WriteByte(c)
			if c == '"' {
				inQuote = false
			}
			p.i++
			continue
		}
		switch c {
		case '"':
			inQuote = true
			text.WriteByte(c)
		case '^':
			p.i++
			if p.eof() {
				if p.batch {
					return nil, errIncomplete
				}
				break loop
			}
			if p.s[p.i] == '\n' { // continues on the next line, whose first character is escaped
				p.i++
				if p.eof() {
					break loop
				}
			}
			text.WriteByte(p.s[p.i])
		case '&', '|':
			break loop
		case ')':
			if p.depth > 0 {
				break loop
			}
			text.WriteByte(c)
		case '>', '<':
			r, next, err := parseRedirect(p.s, p.i, &text, p.depth > 0)
			if err != nil {
				return nil, err
			}
			redirs = append(redirs, r)
			p.i = next
			continue
		default:
			text.WriteByte(c)
		}
		p.i++
	}
	if strings.TrimLeft(text.String(), " \t@") == "" && len(redirs) == 0 {
		return nil, nil
	}
	return &simple{text: text.String(), redirs: redirs}, nil
}

// token reads one blank-separated token of an if or for header; quotes keep blanks inside.
// It stops at a line feed and, outside quotes, at `(`, `)`, `&`, `|`, `<` and `>`.
func (p *parser) token() string {
	for !p.eof() && (isBlank(p.s[p.i]) || p.s[p.i] == ',' || p.s[p.i] == ';') {
		p.i++
	}
	start := p.i
	inQuote := false
	for !p.eof() {
		c := p.s[p.i]
		if c == '\n' {
			break
		}
		if c == '"' {
			inQuote = !inQuote
		} else if !inQuote && (isBlank(c) || strings.ContainsRune("()&|<>", rune(c))) {
			break
		}
		p.i++
	}
	return p.s[start:p.i]
}

func (p *parser) ifCommand() (command, error) {
	c := &ifCmd{}
	tok := p.token()
	if strings.EqualFold(tok, "/i") {
		c.fold = true
		tok = p.token()
	}
	if strings.EqualFold(tok, "not") {
		c.not = true
		tok = p.token()
	}
	switch strings.ToLower(tok) {
	case "":
		return nil, errSyntax
	case "exist", "defined", "errorlevel", "cmdextversion":
		c.kind = strings.ToLower(tok)
		c.a = p.token()
		if c.a == "" {
			return nil, errSyntax
		}
	default:
		if l, r, ok := strings.Cut(tok, "=="); ok {
			c.a, c.op, c.b = l, "==", r
			if r == "" {
				c.b = p.token()
			}
		} else {
			c.a = tok
			op := p.token()
			if strings.HasPrefix(op, "==") {
				c.op, c.b = "==", op[2:]
				if c.b == "" {
					c.b = p.token()
				}
			} else {
				c.op, c.b = op, p.token()
				switch strings.ToUpper(op) {
				case "EQU", "NEQ", "LSS", "LEQ", "GTR", "GEQ":
				default:
					if op == "" {
						return nil, errSyntax
					}
					return nil, unexpected(op)
				}
			}
		}
		if c.b == "" {
			return nil, errSyntax
		}
	}
	then, isBlock, err := p.branch()
	if err != nil {
		return nil, err
	}
	c.then = then
	if isBlock {
		save := p.i
		p.skipBlanks()
		if w := p.peekWord(); strings.EqualFold(w, "else") {
			p.i += p.wordEnd()
			if c.els, _, err = p.branch(); err != nil {
				return nil, err
			}
		} else {
			p.i = save
		}
	}
	return c, nil
}

// branch reads the command of an if, an else or a for: a block, or the rest of the line
// (with its `&` and `|`, which belong to it). A missing command is a syntax error.
func (p *parser) branch() (command, bool, error) {
	p.skipBlanks()
	if !p.eof() && p.s[p.i] == '(' {
		b, err := p.block()
		return b, true, err
	}
	l, err := p.list(true)
	if err != nil {
		return nil, false, err
	}
	if len(l.items) == 0 {
		if p.eof() && p.batch && p.depth > 0 {
			return nil, false, errIncomplete
		}
		return nil, false, errSyntax
	}
	return &block{body: l}, false, nil
}

func (p *parser) forCommand() (command, error) {
	c := &forCmd{}
	tok := p.token()
	for strings.HasPrefix(tok, "/") {
		switch strings.ToLower(tok) {
		case "/f":
			c.f = true
		default:
			// for /d, /r and /l are not modelled.
			return nil, &syntaxError{fmt.Sprintf("wfplab simulated guest: for %s is not modelled (for and for /f are).", tok)}
		}
		tok = p.token()
	}
	if c.f && strings.HasPrefix(tok, `"`) {
		c.options = strings.Trim(tok, `"`)
		tok = p.token()
	}
	if len(tok) != 2 || tok[0] != '%' {
		return nil, unexpected(tok)
	}
	c.v = tok[1]
	if in := p.token(); !strings.EqualFold(in, "in") {
		return nil, unexpected(in)
	}
	p.skipBlanks()
	if p.eof() || p.s[p.i] != '(' {
		return nil, unexpected(p.token())
	}
	p.i++
	var set strings.Builder
	inQuote := false
	for {
		if p.eof() || (p.s[p.i] == '\n' && !p.batch) {
			return nil, errSyntax
		}
		ch := p.s[p.i]
		if ch == '"' {
			inQuote = !inQuote
		} else if !inQuote && ch == '^' && p.i+1 < len(p.s) {
			p.i++
			ch = p.s[p.i]
		} else if !inQuote && ch == ')' {
			p.i++
			break
		}
		set.WriteByte(ch)
		p.i++
	}
	c.set = set.String()
	if do := p.token(); !strings.EqualFold(do, "do") {
		if do == "" {
			return nil, errSyntax
		}
		return nil, unexpected(do)
	}
	body, _, err := p.branch()
	if err != nil {
		return nil, err
	}
	c.body = body
	return c, nil
}
