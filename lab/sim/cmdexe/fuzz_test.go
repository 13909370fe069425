package cmdexe

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// FuzzRun: no line makes the interpreter panic or hang.
func FuzzRun(f *testing.F) {
	for _, s := range []string{
		`echo %PROCESSOR_ARCHITECTURE%`, `if not exist C:\wfplab mkdir C:\wfplab`, `echo "a>b" ^> c >> C:\x 2>&1`,
		`if /i "%X:~-3,2%"=="İ" (echo a) else echo b`, `a | b || c && d & e`, `del /q C:\*.*`, `%windir:İ=x%`,
		`cd .. & cd \ & type nul`, `exit -99999999999999999999`, `echo ^`, `>`, `2>&3`, `if errorlevel x echo`,
		"echo a\nb", `set "A=1" & set A`, `C:\Windows\System32\tool "unterminated`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		in, m, _ := newInterp(t)
		m.SetDir(`C:\wfplab`)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.Run(ctx, line, strings.NewReader("n\r\n"), io.Discard, io.Discard)
	})
}
