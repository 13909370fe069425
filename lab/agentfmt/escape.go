package agentfmt

import (
	"fmt"
	"strings"
)

// mustEscape reports whether FORMAT.md requires b to be written as %XX.
func mustEscape(b byte) bool {
	return b < '!' || b > '~' || b == '%' || b == '=' || b == '/' || b == ','
}

// Escape writes s as FORMAT.md's escaping rule says: a byte outside `!`..`~`, or one of
// `%`, `=`, `/`, `,`, becomes %XX with two upper-case hex digits.
func Escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Unescape reverses Escape. It rejects what no conforming writer produces: a byte that
// must have been escaped, or a % not followed by two upper-case hex digits.
func Unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return "", fmt.Errorf("%q: %% at offset %d is not followed by two hex digits", s, i)
			}
			hi, ok1 := upperHex(s[i+1])
			lo, ok2 := upperHex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%q: %%%s at offset %d is not two upper-case hex digits", s, s[i+1:i+3], i)
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
			continue
		}
		if mustEscape(c) {
			return "", fmt.Errorf("%q: byte 0x%02X at offset %d must be escaped as %%%02X", s, c, i, c)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func upperHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
