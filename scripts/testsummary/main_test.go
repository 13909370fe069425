package main

import (
	"strings"
	"testing"
)

// A stream as test2json writes it: two parallel tests interleaved, one failing, one
// skipped, and a package that panicked without a failed test.
const stream = `{"Action":"run","Package":"p/a","Test":"TestOK"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"p/a","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"    a_test.go:5: noise from the passing test\n"}
{"Action":"output","Package":"p/a","Test":"TestBad","Output":"    a_test.go:9: want 3, got 4\n"}
{"Action":"pass","Package":"p/a","Test":"TestOK","Elapsed":0.1}
{"Action":"output","Package":"p/a","Test":"TestBad","Output":"--- FAIL: TestBad (0.20s)\n"}
{"Action":"fail","Package":"p/a","Test":"TestBad","Elapsed":0.2}
{"Action":"output","Package":"p/a","Test":"TestSkip","Output":"    a_test.go:12: SKIP: no qemu here\n"}
{"Action":"output","Package":"p/a","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"p/a","Test":"TestSkip"}
{"Action":"fail","Package":"p/a","Elapsed":1.5}
{"Action":"output","Package":"p/b","Output":"panic: boom\n"}
{"Action":"fail","Package":"p/b","Elapsed":0.3}
{"Action":"pass","Package":"p/c","Elapsed":0.3}
`

func TestSummaryShowsEachFailureWithItsOwnOutput(t *testing.T) {
	var out strings.Builder
	if code := summarize(strings.NewReader(stream), &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	got := out.String()
	for _, want := range []string{
		"FAIL p/a 1.5s", "PASS p/c 0.3s",
		"-- FAILED p/a TestBad:\n=== RUN   TestBad\n    a_test.go:9: want 3, got 4\n--- FAIL",
		"-- FAILED package p/b:\npanic: boom",
		"p/a TestSkip: a_test.go:12: SKIP: no qemu here",
		"go test: 1 passed, 1 failed, 1 skipped",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "noise from the passing test") {
		t.Errorf("a passing test's output was printed:\n%s", got)
	}
}

func TestSummaryOfAGreenRunExitsZero(t *testing.T) {
	var out strings.Builder
	in := `{"Action":"pass","Package":"p/a","Test":"TestOK"}` + "\n" + `{"Action":"pass","Package":"p/a"}` + "\nnot json: a build line\n"
	if code := summarize(strings.NewReader(in), &out); code != 0 {
		t.Errorf("exit %d, want 0:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "not json: a build line") || !strings.Contains(out.String(), "go test: 1 passed, 0 failed, 0 skipped") {
		t.Errorf("summary:\n%s", out.String())
	}
}
