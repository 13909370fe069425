package cmdexe

import (
	"strings"
)

// parseRedirect reads the redirection starting at line[i] ('>' or '<'). A digit written just
// before it, itself after a blank or at the start, names the handle and is taken out of text.
// It returns the index after the redirection.
func parseRedirect(line string, i int, text *strings.Builder, inBlock bool) (redirect, int, error) {
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
		for i < len(line) && !isBlank(line[i]) && !strings.ContainsRune("<>&|\n", rune(line[i])) && !(inBlock && line[i] == ')') {
			if line[i] == '^' && i+1 < len(line) {
				i++
			}
			target.WriteByte(line[i])
			i++
		}
	}
	if target.Len() == 0 {
		if i < len(line) && line[i] != '\n' {
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
