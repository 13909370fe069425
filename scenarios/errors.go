package scenarios

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// FieldError is one problem in a scenario: where it is and what to do about it.
type FieldError struct {
	File  string // file path, or the name given to Parse
	Line  int    // 1-based; 0 when the scenario was not read from text
	Field string // path of the field, e.g. "profiles[1].rate"; "" for the file as a whole
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one scenario, in file order.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As reach each FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxErrors bounds the report for a badly broken file; the first ones are what the user fixes first.
const maxErrors = 50

// errorList collects field errors while a scenario is decoded or validated.
type errorList struct {
	file  string
	lines map[string]int // field path -> line, filled while decoding
	errs  Errors
}

// at records an error on a field whose line is known.
func (l *errorList) at(line int, field, format string, args ...any) {
	if len(l.errs) >= maxErrors {
		return
	}
	l.errs = append(l.errs, &FieldError{File: l.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// field records an error on a field by path; the line is the field's own, or its
// nearest parent's when the field is missing from the file.
// Validation runs after decoding even when decoding failed, so that one pass reports
// everything; a field (or a parent of it) that already has an error is not reported
// again, which keeps a broken mapping from cascading into "missing" errors.
func (l *errorList) field(field, format string, args ...any) {
	for _, e := range l.errs {
		if e.Field == field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[") {
			return
		}
	}
	l.at(l.lineOf(field), field, format, args...)
}

func (l *errorList) lineOf(field string) int {
	for p := field; p != ""; p = parentPath(p) {
		if n, ok := l.lines[p]; ok {
			return n
		}
	}
	return l.lines[""]
}

// err returns the collected errors sorted by line, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
	return l.errs
}

// parentPath strips the last ".key" or "[i]" of a field path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// suggest returns the candidate closest to got when it is close enough to be a likely typo.
func suggest(got string, candidates []string) string {
	best, bestDist := "", 1<<30
	low := strings.ToLower(got)
	for _, c := range candidates {
		cl := strings.ToLower(c)
		if cl == low {
			return c
		}
		d := editDistance(low, cl)
		// On a tie, a candidate with the same letters (a transposition) is the likelier typo.
		if d < bestDist || (d == bestDist && sameLetters(low, cl) && !sameLetters(low, strings.ToLower(best))) {
			best, bestDist = c, d
		}
	}
	limit := 2
	if len(got) <= 3 {
		limit = 1
	}
	if bestDist <= limit {
		return best
	}
	// A prefix that leaves a word out ("threshold" for "threshold_bps").
	for _, c := range candidates {
		cl := strings.ToLower(c)
		if len(low) >= 4 && (strings.HasPrefix(cl, low) || strings.HasPrefix(low, cl)) {
			return c
		}
	}
	return ""
}

// didYouMean renders a suggestion as a sentence tail, or "" when there is none.
func didYouMean(got string, candidates []string) string {
	if s := suggest(got, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

func sameLetters(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	slices.Sort(ra)
	slices.Sort(rb)
	return slices.Equal(ra, rb)
}

// editDistance is the optimal-string-alignment distance (Levenshtein plus adjacent
// transpositions), bounded in cost by the short strings it sees.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// Problem is a FieldError at the field's line (or its nearest parent's), for checks made
// outside this package, such as the preflight reading the files a scenario names.
func (s *Scenario) Problem(field, format string, args ...any) *FieldError {
	l := &errorList{file: s.Source, lines: s.lines}
	return &FieldError{File: s.Source, Line: l.lineOf(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}
