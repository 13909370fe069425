package cmdexe

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzRun: no line, and no batch file, makes the interpreter panic or hang. Each input runs
// as a `cmd /c` line and then as the text of a batch file.
func FuzzRun(f *testing.F) {
	for _, s := range []string{
		`echo %PROCESSOR_ARCHITECTURE%`, `if not exist C:\wfplab mkdir C:\wfplab`, `echo "a>b" ^> c >> C:\x 2>&1`,
		`if /i "%X:~-3,2%"=="İ" (echo a) else echo b`, `a | b || c && d & e`, `del /q C:\*.*`, `%windir:İ=x%`,
		`cd .. & cd \ & type nul`, `exit -99999999999999999999`, `echo ^`, `>`, `2>&3`, `if errorlevel x echo`,
		"echo a\nb", `set "A=1" & set A`, `C:\Windows\System32\tool "unterminated`,
		"@echo off\r\n:a\r\nset /a N+=1\r\nif %N% lss 5 goto a\r\ncall :s %~1 & exit /b %N%\r\n:s\r\necho %~dpnx0 %*\r\n",
		"(\r\nfor /f \"tokens=1,2* delims=,\" %%i in ('echo a,b^|tool') do (\r\nset X=%%~ni\r\necho !X! %%j)) >nul",
		"setlocal EnableDelayedExpansion\r\nif \"%~1\"==\"\" (echo ^(x^)) else (call :f \"%1\")\r\n:f\r\nshift\r\nendlocal & goto :eof",
		"for %%x in (C:\\wfplab\\*.cmd \"a b\") do @echo %%~nxx\r\nset /a \"1/0, (2\", X=0x7fffffff*2",
	} {
		f.Add(s)
	}
	if script, err := os.ReadFile("../../../vagrant/prepare-guest.cmd"); err == nil {
		f.Add(string(script))
	}
	f.Fuzz(func(t *testing.T, text string) {
		in, m, _ := newInterp(t)
		in.Env["PATHEXT"] = ".COM;.EXE;.BAT;.CMD"
		// A looping input ends fast: slow inputs stall the fuzzer, whose -fuzztime can then
		// end inside one and fail the run with "context deadline exceeded".
		in.MaxSteps = 2000
		m.SetDir(`C:\wfplab`)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.Run(ctx, text, strings.NewReader("n\r\n"), io.Discard, io.Discard)
		m.SetFile(`C:\wfplab\f.cmd`, []byte(text))
		in.Run(ctx, `C:\wfplab\f.cmd a "b c"`, strings.NewReader("n\r\n"), io.Discard, io.Discard)
	})
}
