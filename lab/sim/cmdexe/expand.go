package cmdexe

import (
	"strconv"
	"strings"
)

// Expand replaces %NAME% with its value as `cmd /c` does before it parses a line: names are
// case-insensitive, an undefined name stays as typed, and %NAME:~start,len% (substring) and
// %NAME:old=new% (replace, without case) are understood.
func Expand(line string, lookup func(name string) (string, bool)) string {
	return expandPercent(line, lookup, nil)
}

// expandPercent is Expand; with param (a batch file's line) it also expands what param
// reads at a % (parameters, %%) and drops undefined names and a lone %, as cmd does there.
// param returns the text and the index after what it read, or ok=false.
func expandPercent(line string, lookup func(string) (string, bool), param func(line string, i int) (string, int, bool)) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '%' {
			b.WriteByte(line[i])
			i++
			continue
		}
		if param != nil {
			if v, next, ok := param(line, i); ok {
				b.WriteString(v)
				i = next
				continue
			}
		}
		j := strings.IndexByte(line[i+1:], '%')
		if j < 0 {
			if param == nil {
				b.WriteString(line[i:])
			} else {
				b.WriteString(line[i+1:])
			}
			break
		}
		j += i + 1
		if v, ok := expandOne(line[i+1:j], lookup); ok {
			b.WriteString(v)
			i = j + 1
			continue
		}
		if param != nil {
			i = j + 1
			continue
		}
		// Not a defined variable: keep the '%' and let the closing one start the next try.
		b.WriteByte('%')
		i++
	}
	return b.String()
}

func expandOne(ref string, lookup func(string) (string, bool)) (string, bool) {
	if ref == "" {
		return "", false
	}
	name, mod, hasMod := strings.Cut(ref, ":")
	v, ok := lookup(name)
	if !ok {
		return "", false
	}
	if !hasMod {
		return v, true
	}
	if strings.HasPrefix(mod, "~") {
		return substring(v, mod[1:])
	}
	if old, repl, ok := strings.Cut(mod, "="); ok && old != "" {
		return replaceFold(v, old, repl), true
	}
	return "", false
}

// substring applies "start[,len]" where negative numbers count from the end, as cmd does.
func substring(v, spec string) (string, bool) {
	startS, lenS, hasLen := strings.Cut(spec, ",")
	start, err := strconv.Atoi(strings.TrimSpace(startS))
	if err != nil {
		return "", false
	}
	n := len(v)
	if start < 0 {
		start = max(n+start, 0)
	}
	start = min(start, n)
	end := n
	if hasLen {
		l, err := strconv.Atoi(strings.TrimSpace(lenS))
		if err != nil {
			return "", false
		}
		if l < 0 {
			end = max(n+l, start)
		} else {
			end = min(start+l, n)
		}
	}
	return v[start:end], true
}

func replaceFold(v, old, repl string) string {
	var b strings.Builder
	lv, lo := asciiLower(v), asciiLower(old)
	for {
		i := strings.Index(lv, lo)
		if i < 0 {
			b.WriteString(v)
			return b.String()
		}
		b.WriteString(v[:i])
		b.WriteString(repl)
		v, lv = v[i+len(old):], lv[i+len(old):]
	}
}

// asciiLower lowers ASCII letters only, so byte offsets stay those of the original.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
