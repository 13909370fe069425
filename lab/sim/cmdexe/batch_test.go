package cmdexe

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// runBatchFile writes script (LF line ends become CR LF, as on Windows) to
// C:\wfplab\t.cmd and runs `C:\wfplab\t.cmd args` as `cmd /c` would.
func runBatchFile(t *testing.T, in *Interp, m *MemFS, script, args string) result {
	t.Helper()
	m.SetDir(`C:\wfplab`)
	m.SetFile(`C:\wfplab\t.cmd`, []byte(strings.ReplaceAll(script, "\n", "\r\n")))
	return runLine(in, strings.TrimSpace(`C:\wfplab\t.cmd `+args))
}

func batchInterp(t *testing.T) (*Interp, *MemFS) {
	in, m, _ := newInterp(t)
	in.Env["PATHEXT"] = ".COM;.EXE;.BAT;.CMD"
	return in, m
}

// TestBatchSemantics: cmd's own behaviour for batch files, one script per case.
func TestBatchSemantics(t *testing.T) {
	cases := []struct {
		name, script, args string
		want               result
	}{
		{"echo on shows each line with the prompt", "echo hi\n@echo quiet\nrem x", "",
			result{"\r\nC:\\Users\\vagrant>echo hi\r\nhi\r\nquiet\r\n\r\nC:\\Users\\vagrant>rem x\r\n", "", 0}},
		{"echo off, echo state and echo.", "@echo off\necho\necho.\necho on\necho\n@echo off", "",
			result{"ECHO is off.\r\n\r\n\r\nC:\\Users\\vagrant>echo\r\nECHO is on.\r\n", "", 0}},
		{"parameters", "@echo off\necho %0/%1/%~1/%2/%3/%*", `a "b c" d`,
			result{"C:\\wfplab\\t.cmd/a/a/\"b c\"/d/a \"b c\" d\r\n", "", 0}},
		{"path modifiers of %0 and a parameter", "@echo off\necho %~dpn0 %~nx0 %~x1 %~f1", `x\y.txt`,
			result{"C:\\wfplab\\t t.cmd .txt C:\\Users\\vagrant\\x\\y.txt\r\n", "", 0}},
		{"%% and undefined variables", "@echo off\necho 100%% [%NOPE%] 5%", "", result{"100% [] 5\r\n", "", 0}},
		{"a block is expanded once, before it runs", "@echo off\nset X=1\n(\nset X=2\necho %X%\n)\necho %X%", "",
			result{"1\r\n2\r\n", "", 0}},
		{"delayed expansion sees the new value", "@echo off\nsetlocal EnableDelayedExpansion\nset X=1\n(\nset X=2\necho %X% !X!\n)", "",
			result{"1 2\r\n", "", 0}},
		{"if else with blocks", "@echo off\nif \"%~1\"==\"\" (\necho none\n) else (\necho got %~1\n)", `"a b"`,
			result{"got a b\r\n", "", 0}},
		{"if not, quotes compared", "@echo off\nif not \"%~1\"==\"\" echo set\nif \"x\"==x echo same\nif /i A==a echo fold", "1",
			result{"set\r\nfold\r\n", "", 0}},
		{"numeric comparison ops", "@echo off\nset F=0\nif %F% neq 0 echo neq\nif %F% equ 0 echo equ\nif 10 gtr 9 echo gtr\nif 2 lss 10 echo lss", "",
			result{"equ\r\ngtr\r\nlss\r\n", "", 0}},
		{"if's command takes the rest of the line", "@echo off\nif 1==2 echo a & echo b\necho c", "",
			result{"c\r\n", "", 0}},
		{"if errorlevel is at least", "@echo off\ntool >nul\nif errorlevel 7 echo ge7\nif errorlevel 8 echo ge8\nif not errorlevel 8 echo lt8", "",
			result{"ge7\r\nlt8\r\n", "", 7}},
		{"echo leaves errorlevel alone", "@echo off\ntool >nul\necho x\necho %errorlevel%", "",
			result{"x\r\n7\r\n", "", 7}},
		{"errorlevel after call :label is its exit /b", "@echo off\ncall :sub \"a b\" c\necho back %errorlevel% %1\nexit /b 0\n:sub\necho in %0 %~1 %2\nexit /b 3", "top",
			result{"in :sub a b c\r\nback 3 top\r\n", "", 0}},
		{"goto :eof ends the subroutine only", "@echo off\ncall :sub\necho after\ngoto :eof\necho never\n:sub\necho sub\ngoto :eof\necho never", "",
			result{"sub\r\nafter\r\n", "", 0}},
		{"set /a counts a goto loop", "@echo off\nset /a N=0\n:loop\nset /a N+=1\nif %N% lss 3 goto loop\necho %N%", "",
			result{"3\r\n", "", 0}},
		{"goto inside a block leaves it", "@echo off\nif 1==1 (\ngoto next\necho never\n)\n:next\necho next", "",
			result{"next\r\n", "", 0}},
		{"goto to a missing label ends the batch", "@echo off\necho a\ngoto nowhere\necho b", "",
			result{"a\r\n", "The system cannot find the batch label specified - nowhere\r\n", 1}},
		{"a syntax error ends the batch", "@echo off\necho a\nif\necho b", "",
			result{"a\r\n", "The syntax of the command is incorrect.\r\n", 1}},
		{"exit /b code", "@echo off\nexit /b 4\necho no", "", result{"", "", 4}},
		{"exit in a subroutine ends cmd", "@echo off\ncall :s\necho no\n:s\nexit 5", "", result{"", "", 5}},
		{"set /a += in a subroutine", "@echo off\nset FAILED=0\ncall :fail \"one\"\ncall :fail \"two\"\necho %FAILED%\nexit /b 0\n:fail\necho FAILED: %~1 1>&2\nset /a FAILED+=1\nexit /b 0", "",
			result{"2\r\n", "FAILED: one \r\nFAILED: two \r\n", 0}},
		{"carets escape parentheses in a block", "@echo off\nif 1==1 (\n  echo a ^(b^) 1>&2\n)", "",
			result{"", "a (b) \r\n", 0}},
		{"rem swallows operators", "@echo off\nrem a & echo no\n:: label comment\necho yes", "",
			result{"yes\r\n", "", 0}},
		{"setlocal ends with endlocal and with the batch file", "@echo off\nset A=1\nsetlocal\nset A=2\nendlocal\necho %A%\ncall :s\necho %A%\ngoto :eof\n:s\nsetlocal\nset A=3", "",
			result{"1\r\n1\r\n", "", 0}},
		{"for /f tokens of a command's output", "@echo off\nfor /f \"tokens=1,2\" %%a in ('echo x y z') do echo %%b-%%a", "",
			result{"y-x\r\n", "", 0}},
		{"for /f delims, rest and skip", "@echo off\nfor /f \"skip=1 tokens=2* delims=,\" %%a in ('echo h^&echo a,b,c,d') do echo %%a %%b", "",
			result{"b c,d\r\n", "", 0}},
		{"for /f over a string and a block body expanded once", "@echo off\nset L=\nfor /f %%i in (\"one\") do (\nset L=%%i\necho [%L%] %%i\n)\necho [%L%]", "",
			result{"[] one\r\n[one]\r\n", "", 0}},
		{"for /f skips eol lines and blank ones", "@echo off\nfor /f %%i in ('echo ;c^&echo.^&echo d') do echo %%i", "",
			result{"d\r\n", "", 0}},
		{"plain for over items", "@echo off\nfor %%x in (a \"b c\" d) do echo %%~x", "",
			result{"a\r\nb c\r\nd\r\n", "", 0}},
		{"shift", "@echo off\nshift\necho %1 %0", "a b", result{"b a\r\n", "", 0}},
		{"each side of a pipe is its own cmd.exe", "@echo off\nset X=1\necho x | set X=2\necho %X%\ntool | exit 3\necho %errorlevel%", "",
			result{"1\r\n3\r\n", "", 3}},
		{"caret continues a line", "@echo off\necho a ^\nb", "", result{"a b\r\n", "", 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, m := batchInterp(t)
			got := runBatchFile(t, in, m, c.script, c.args)
			if got != c.want {
				t.Errorf("script:\n%s\n got %#v\nwant %#v", c.script, got, c.want)
			}
		})
	}
}

// A batch file started from another without call does not come back; with call it does.
func TestBatchCallReturns(t *testing.T) {
	in, m := batchInterp(t)
	m.SetDir(`C:\wfplab`)
	m.SetFile(`C:\wfplab\other.cmd`, []byte("@echo other %1\r\n@exit /b 2\r\n"))
	got := runBatchFile(t, in, m, "@echo off\ncd C:\\wfplab\nother x\necho not reached", "")
	if want := (result{"other x\r\n", "", 2}); got != want {
		t.Errorf("without call: got %#v want %#v", got, want)
	}
	got = runBatchFile(t, in, m, "@echo off\ncall C:\\wfplab\\other y\necho back %errorlevel%", "")
	if want := (result{"other y\r\nback 2\r\n", "", 2}); got != want {
		t.Errorf("with call: got %#v want %#v", got, want)
	}
	// From the command line a batch file returns to the rest of the line.
	if got := runLine(in, `C:\wfplab\other.cmd z & echo after`); got != (result{"other z\r\nafter\r\n", "", 0}) {
		t.Errorf("cmd /c line: %#v", got)
	}
}

// An endless goto loop stops at the step bound with a message saying why.
func TestBatchGotoLoopIsBounded(t *testing.T) {
	in, m := batchInterp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m.SetDir(`C:\wfplab`)
	m.SetFile(`C:\wfplab\loop.cmd`, []byte("@echo off\r\n:a\r\ngoto a\r\n"))
	var o, e strings.Builder
	code := in.Run(ctx, `C:\wfplab\loop.cmd`, nil, &o, &e)
	if code != 1 || !strings.Contains(e.String(), "loops without end") {
		t.Fatalf("code %d, stderr %q", code, e.String())
	}
	if ctx.Err() != nil {
		t.Fatal("the bound did not stop the loop in time")
	}
	m.SetFile(`C:\wfplab\rec.cmd`, []byte("@call :a\r\n:a\r\n@call :a\r\n"))
	e.Reset()
	if code := in.Run(ctx, `C:\wfplab\rec.cmd`, nil, &o, &e); code != 1 || !strings.Contains(e.String(), "nest 256 deep") {
		t.Fatalf("recursion: code %d, stderr %q", code, e.String())
	}
}

func TestSetArith(t *testing.T) {
	in, _ := batchInterp(t)
	cases := map[string]result{
		`set /a 1+2*3`:                {"7", "", 0},
		`set /a (1+2)*3`:              {"9", "", 0},
		`set /a 0x10 + 010 - -1`:      {"25", "", 0},
		`set /a "X=5, X*=2" & set X`:  {"10X=10\r\n", "", 0},
		`set /a 7/0`:                  {"", "Divide by zero error.\r\n", 1},
		`set /a 1+`:                   {"", "Missing operand.\r\n", 1},
		`set /a (1`:                   {"", "Unbalanced parenthesis.\r\n", 1},
		`set /a 1 2`:                  {"", "Missing operator.\r\n", 1},
		`set /a 08`:                   {"", "Invalid number.  Numeric constants are either decimal (17), hexadecimal (0x11), or octal (021).\r\n", 1},
		`set /a 2147483647+1`:         {"-2147483648", "", 0},
		`set /a "!0 + ~0 + (1<<4|1)"`: {"17", "", 0},
		`set /a 1<<4`:                 {"", "< was unexpected at this time.\r\n", 255},
		`set /a NOPE+1`:               {"1", "", 0},
		`set /a 5 %% 3`:               {"", "Missing operand.\r\n", 1},
		`set /a 5 % 3`:                {"2", "", 0},
	}
	for line, want := range cases {
		if got := runLine(in, line); got != want {
			t.Errorf("%s: got %#v want %#v", line, got, want)
		}
	}
}

// A batch file piping into itself (%0|%0) starts cmd.exe after cmd.exe; the bound ends it.
func TestBatchForkBombIsBounded(t *testing.T) {
	in, m := batchInterp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m.SetDir(`C:\wfplab`)
	m.SetFile(`C:\wfplab\bomb.cmd`, []byte("%0|%0\r\n"))
	var e strings.Builder
	in.Run(ctx, `C:\wfplab\bomb.cmd`, nil, io.Discard, &e)
	if ctx.Err() != nil || !strings.Contains(e.String(), "processes started by one command line") {
		t.Fatalf("ctx %v, stderr %.300q", ctx.Err(), e.String())
	}
}
