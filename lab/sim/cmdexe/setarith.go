package cmdexe

import (
	"fmt"
	"strconv"
	"strings"
)

// set /a: 32-bit integer arithmetic over variables, as cmd computes it. Operators by
// precedence: ( ); ! ~ - (unary); * / %; + -; << >>; &; ^; |; = *= /= %= += -= &= ^= |= <<=
// >>=; the comma. Variable names stand for their values (0 when undefined or not a number);
// numbers are decimal, 0x hexadecimal or 0 octal. Quotes are ignored.

type arithError string

func (e arithError) Error() string { return string(e) }

const (
	errMissingOperand  = arithError("Missing operand.")
	errMissingOperator = arithError("Missing operator.")
	errDivideByZero    = arithError("Divide by zero error.")
	errUnbalanced      = arithError("Unbalanced parenthesis.")
	errInvalidNumber   = arithError("Invalid number.  Numeric constants are either decimal (17), hexadecimal (0x11), or octal (021).")
	errNumberTooLarge  = arithError("Invalid number.  Numbers are limited to 32-bits of precision.")
)

// setArith runs set /a EXPR; on the command line (not in a batch file) it prints the value.
// Its errors exit 1 here; cmd's own exit codes for them are larger, and every one passes
// `if errorlevel 1`.
func (r *run) setArith(c *call, expr string) int {
	a := &arith{s: strings.ReplaceAll(expr, `"`, " "), r: r}
	v, err := a.comma()
	if err == nil {
		a.blanks()
		if a.i < len(a.s) {
			if a.s[a.i] == ')' {
				err = errUnbalanced
			} else {
				err = errMissingOperator
			}
		}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "%s\r\n", err)
		return 1
	}
	if r.frame() == nil {
		fmt.Fprintf(c.stdout, "%d", v)
	}
	return 0
}

type arith struct {
	s     string
	i     int
	r     *run
	depth int
}

func (a *arith) blanks() {
	for a.i < len(a.s) && (a.s[a.i] == ' ' || a.s[a.i] == '\t') {
		a.i++
	}
}

func (a *arith) comma() (int32, error) {
	v, err := a.assign()
	for err == nil {
		a.blanks()
		if a.i >= len(a.s) || a.s[a.i] != ',' {
			break
		}
		a.i++
		v, err = a.assign()
	}
	return v, err
}

var assignOps = []string{"<<=", ">>=", "*=", "/=", "%=", "+=", "-=", "&=", "^=", "|=", "="}

func (a *arith) assign() (int32, error) {
	a.blanks()
	save := a.i
	if name := a.name(); name != "" {
		a.blanks()
		for _, op := range assignOps {
			if !strings.HasPrefix(a.s[a.i:], op) {
				continue
			}
			a.i += len(op)
			rhs, err := a.assign()
			if err != nil {
				return 0, err
			}
			v := rhs
			if op != "=" {
				if v, err = apply(op[:len(op)-1], a.value(name), rhs); err != nil {
					return 0, err
				}
			}
			a.r.env.set(name, strconv.Itoa(int(v)))
			return v, nil
		}
	}
	a.i = save
	return a.binary(0)
}

// binLevels are the binary operators from the loosest to the tightest.
var binLevels = [][]string{{"|"}, {"^"}, {"&"}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "%"}}

func (a *arith) binary(level int) (int32, error) {
	if level == len(binLevels) {
		return a.unary()
	}
	v, err := a.binary(level + 1)
	for err == nil {
		a.blanks()
		op := ""
		for _, o := range binLevels[level] {
			rest := a.s[a.i:]
			// "+=" and "<<=" are assignments, "<<" is not "<".
			if strings.HasPrefix(rest, o) && !strings.HasPrefix(rest[len(o):], "=") {
				op = o
			}
		}
		if op == "" {
			break
		}
		a.i += len(op)
		var rhs int32
		if rhs, err = a.binary(level + 1); err != nil {
			break
		}
		v, err = apply(op, v, rhs)
	}
	return v, err
}

func apply(op string, x, y int32) (int32, error) {
	switch op {
	case "*":
		return x * y, nil
	case "/", "%":
		if y == 0 {
			return 0, errDivideByZero
		}
		if x == -1<<31 && y == -1 { // the one quotient that does not fit
			if op == "/" {
				return x, nil
			}
			return 0, nil
		}
		if op == "/" {
			return x / y, nil
		}
		return x % y, nil
	case "+":
		return x + y, nil
	case "-":
		return x - y, nil
	case "<<":
		return x << (uint32(y) & 31), nil
	case ">>":
		return x >> (uint32(y) & 31), nil
	case "&":
		return x & y, nil
	case "^":
		return x ^ y, nil
	case "|":
		return x | y, nil
	}
	return 0, errMissingOperator
}

func (a *arith) unary() (int32, error) {
	a.blanks()
	if a.i >= len(a.s) {
		return 0, errMissingOperand
	}
	switch c := a.s[a.i]; c {
	case '!', '~', '-', '+':
		a.i++
		a.depth++
		defer func() { a.depth-- }()
		if a.depth > maxNesting {
			return 0, errMissingOperand
		}
		v, err := a.unary()
		switch c {
		case '!':
			if v == 0 {
				return 1, err
			}
			return 0, err
		case '~':
			return ^v, err
		case '-':
			return -v, err
		}
		return v, err
	case '(':
		a.i++
		a.depth++
		defer func() { a.depth-- }()
		if a.depth > maxNesting {
			return 0, errUnbalanced
		}
		v, err := a.comma()
		if err != nil {
			return 0, err
		}
		a.blanks()
		if a.i >= len(a.s) || a.s[a.i] != ')' {
			return 0, errUnbalanced
		}
		a.i++
		return v, nil
	}
	if c := a.s[a.i]; c >= '0' && c <= '9' {
		start := a.i
		for a.i < len(a.s) && isWordChar(a.s[a.i]) {
			a.i++
		}
		return parseArithNumber(a.s[start:a.i])
	}
	name := a.name()
	if name == "" {
		return 0, errMissingOperand
	}
	return a.value(name), nil
}

// name reads a variable name: anything up to a blank or an operator.
func (a *arith) name() string {
	start := a.i
	for a.i < len(a.s) && !strings.ContainsRune(" \t()!~-+*/%<>&^|=,", rune(a.s[a.i])) {
		a.i++
	}
	if start < a.i && a.s[start] >= '0' && a.s[start] <= '9' {
		a.i = start
		return ""
	}
	return a.s[start:a.i]
}

func isWordChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// value is a variable as a number: 0 when undefined or not a number.
func (a *arith) value(name string) int32 {
	v, ok := a.r.lookup(name)
	if !ok {
		return 0
	}
	v = strings.TrimSpace(v)
	neg := strings.HasPrefix(v, "-")
	v = strings.TrimLeft(v, "+-")
	end := 0
	for end < len(v) && isWordChar(v[end]) {
		end++
	}
	n, err := parseArithNumber(v[:end])
	if err != nil {
		return 0
	}
	if neg {
		return -n
	}
	return n
}

func parseArithNumber(s string) (int32, error) {
	base, digits := 10, s
	switch {
	case strings.HasPrefix(strings.ToLower(s), "0x"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	n, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, errNumberTooLarge
		}
		return 0, errInvalidNumber
	}
	if n > 0xffffffff || (base == 10 && n > 1<<31) {
		return 0, errNumberTooLarge
	}
	return int32(uint32(n)), nil
}
