package cmdexe

import "strings"

// SplitArgs splits a command line into arguments the way the Microsoft C runtime
// (CommandLineToArgvW) does: blanks separate arguments outside double quotes; 2n
// backslashes before a quote give n backslashes and the quote toggles quoting; 2n+1 give
// n backslashes and a literal quote; `""` inside quotes is a literal quote; other
// backslashes are literal.
func SplitArgs(s string) []string {
	var (
		args    []string
		b       strings.Builder
		inArg   bool
		inQuote bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			if i < len(s) && s[i] == '"' {
				b.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					b.WriteByte('"')
				} else {
					inQuote = !inQuote
				}
			} else {
				b.WriteString(strings.Repeat(`\`, n))
				i--
			}
			inArg = true
		case c == '"':
			if inQuote && i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
			} else {
				inQuote = !inQuote
			}
			inArg = true
		case (c == ' ' || c == '\t') && !inQuote:
			if inArg {
				args = append(args, b.String())
				b.Reset()
				inArg = false
			}
		default:
			b.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, b.String())
	}
	return args
}
