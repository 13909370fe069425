package cmdexe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

type result struct {
	out, err string
	code     int
}

func newInterp(t *testing.T) (*Interp, *MemFS, *[]*Process) {
	t.Helper()
	m := NewMemFS(0)
	m.SetDir(`C:\Users\vagrant`)
	m.SetFile(`C:\Windows\System32\tool.exe`, []byte("x"))
	m.Protect(`C:\Windows`)
	var ran []*Process
	in := &Interp{
		FS:      m,
		Env:     map[string]string{"PATH": `C:\Windows\System32`, "PATHEXT": ".COM;.EXE", "PROCESSOR_ARCHITECTURE": "AMD64", "windir": `C:\Windows`},
		Cwd:     `C:\Users\vagrant`,
		Version: "6.1.7600",
		Exec: func(ctx context.Context, p *Process) int {
			ran = append(ran, p)
			data, _ := io.ReadAll(p.Stdin)
			io.WriteString(p.Stdout, "tool:"+strings.Join(p.Args, "|")+":"+string(data)+"\r\n")
			return 7
		},
	}
	return in, m, &ran
}

func runLine(in *Interp, line string) result {
	var o, e bytes.Buffer
	code := in.Run(context.Background(), line, strings.NewReader(""), &o, &e)
	return result{o.String(), e.String(), code}
}

func TestLines(t *testing.T) {
	in, m, _ := newInterp(t)
	m.SetDir(`C:\wfplab`)
	m.SetFile(`C:\wfplab\a.b64`, []byte("old"))
	cases := []struct {
		line string
		want result
	}{
		{`ver`, result{"\r\nMicrosoft Windows [Version 6.1.7600]\r\n", "", 0}},
		{`VER`, result{"\r\nMicrosoft Windows [Version 6.1.7600]\r\n", "", 0}},
		{`echo %PROCESSOR_ARCHITECTURE%`, result{"AMD64\r\n", "", 0}},
		{`echo %processor_architecture%`, result{"AMD64\r\n", "", 0}},
		{`echo %NOPE%`, result{"%NOPE%\r\n", "", 0}},
		{`echo %windir:~3%`, result{"Windows\r\n", "", 0}},
		{`echo %windir:windows=X%`, result{"C:\\X\r\n", "", 0}},
		{`echo`, result{"ECHO is on.\r\n", "", 0}},
		{`echo.`, result{"\r\n", "", 0}},
		{`echo "a  b" ^& c`, result{"\"a  b\" & c\r\n", "", 0}},
		{`exit 5`, result{"", "", 5}},
		{`exit -2145124329`, result{"", "", -2145124329}},
		{`exit /b 3 & echo no`, result{"", "", 3}},
		{`echo a & echo b`, result{"a \r\nb\r\n", "", 0}},
		{`exit 1 && echo no`, result{"", "", 1}},
		{`foo bar`, result{"", "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 1}},
		{`C:\wfplab\wfplab-agent.exe versions`, result{"", "'C:\\wfplab\\wfplab-agent.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 1}},
		{`C:\nodir\x.exe`, result{"", "The system cannot find the path specified.\r\n", 1}},
		{`foo 2>nul`, result{"", "", 1}},
		{`foo 2>&1`, result{"'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", "", 1}},
		{`echo hi >nul`, result{"", "", 0}},
		{`if not exist C:\wfplab mkdir C:\wfplab`, result{"", "", 0}},
		{`if exist C:\WFPLAB\A.B64 echo yes`, result{"yes\r\n", "", 0}},
		{`if exist C:\wfplab\*.b64 echo wild`, result{"wild\r\n", "", 0}},
		{`if not exist C:\wfplab\none echo missing`, result{"missing\r\n", "", 0}},
		{`if /i "Ab"=="aB" echo same`, result{"same\r\n", "", 0}},
		{`if "Ab"=="aB" echo same`, result{"", "", 0}},
		{`if 10 GTR 9 echo gtr`, result{"gtr\r\n", "", 0}},
		{`if defined windir echo def`, result{"def\r\n", "", 0}},
		{`if exist`, result{"", "The syntax of the command is incorrect.\r\n", 1}},
		{`mkdir C:\wfplab`, result{"", "A subdirectory or file C:\\wfplab already exists.\r\n", 1}},
		{`echo a &&`, result{"", "The syntax of the command is incorrect.\r\n", 1}},
		{`& echo a`, result{"", "& was unexpected at this time.\r\n", 255}},
		{`echo x >`, result{"", "The syntax of the command is incorrect.\r\n", 1}},
		{`tool a "b c" d\"e`, result{"tool:a|b c|d\"e:\r\n", "", 7}},
		{`echo piped| tool`, result{"tool::piped\r\n\r\n", "", 7}},
		{`echo hi | nope | nope`, result{"", strings.Repeat("'nope' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", 2), 1}},
		{`tool || echo failed`, result{"tool::\r\nfailed\r\n", "", 0}},
		{`type C:\wfplab\a.b64`, result{"old", "", 0}},
		{`type C:\wfplab\none`, result{"", "The system cannot find the file specified.\r\n", 1}},
		{`type C:\wfplab`, result{"", "Access is denied.\r\n", 1}},
		{`type C:\wfplab\none C:\wfplab\a.b64`, result{"old", "The system cannot find the file specified.\r\n", 1}},
		{`type`, result{"", "The syntax of the command is incorrect.\r\n", 1}},
		{`mkdir C:\wfplab C:\wfplab\new\deep`, result{"", "A subdirectory or file C:\\wfplab already exists.\r\n", 1}},
		{`if exist C:\wfplab\new\deep echo made`, result{"made\r\n", "", 0}},
		{`echo x > C:\nodir\f`, result{"", "The system cannot find the path specified.\r\n", 1}},
		{`echo x > C:\Windows\f`, result{"", "Access is denied.\r\n", 1}},
		{`set X=1 & echo %X%`, result{"%X%\r\n", "", 0}},
		{`cd`, result{"C:\\Users\\vagrant\r\n", "", 0}},
		{`cd C:\wfplab & cd`, result{"C:\\wfplab\r\n", "", 0}},
	}
	for _, c := range cases {
		got := runLine(in, c.line)
		if got != c.want {
			t.Errorf("%s:\n got %#v\nwant %#v", c.line, got, c.want)
		}
	}
}

func TestEchoAppendKeepsBlankBeforeRedirect(t *testing.T) {
	in, m, _ := newInterp(t)
	m.SetDir(`C:\wfplab`)
	for _, l := range []string{`echo QUJD >> C:\wfplab\x.b64`, `echo REVG>>C:\wfplab\x.b64`, `ECHO R0g= >> c:\WFPLAB\X.B64`} {
		if r := runLine(in, l); r != (result{}) {
			t.Fatalf("%s: %+v", l, r)
		}
	}
	data, err := m.ReadFile(`C:\wfplab\x.b64`)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "QUJD \r\nREVG\r\nR0g= \r\n" {
		t.Fatalf("file = %q", data)
	}
	if r := runLine(in, `echo new > C:\wfplab\x.b64`); r.code != 0 {
		t.Fatal(r)
	}
	data, _ = m.ReadFile(`C:\wfplab\x.b64`)
	if string(data) != "new \r\n" {
		t.Fatalf("after > file = %q", data)
	}
	if r := runLine(in, `if exist C:\wfplab\x.b64 del /f /q C:\wfplab\x.b64`); r != (result{}) {
		t.Fatalf("del: %+v", r)
	}
	if _, err := m.Stat(`C:\wfplab\x.b64`); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file still there: %v", err)
	}
	if r := runLine(in, `del /f /q C:\wfplab\x.b64`); r.code != 0 || r.err != "Could Not Find C:\\wfplab\\x.b64\r\n" {
		t.Fatalf("del missing: %+v", r)
	}
}

func TestDelWildcardAndFolder(t *testing.T) {
	in, m, _ := newInterp(t)
	for _, f := range []string{`a.b64`, `b.B64`, `c.exe`} {
		m.SetFile(`C:\wfplab\`+f, []byte("1"))
	}
	if r := runLine(in, `del /q C:\wfplab\*.b64`); r.code != 0 || r.err != "" {
		t.Fatal(r)
	}
	ents, _ := m.ReadDir(`C:\wfplab`)
	if len(ents) != 1 || ents[0].Name != "c.exe" {
		t.Fatalf("left %+v", ents)
	}
	if r := runLine(in, `del C:\wfplab`); !strings.Contains(r.out, `C:\wfplab\*, Are you sure (Y/N)?`) {
		t.Fatalf("no prompt: %+v", r)
	}
	if ents, _ := m.ReadDir(`C:\wfplab`); len(ents) != 1 {
		t.Fatalf("deleted without a yes: %+v", ents)
	}
	if r := runLine(in, `del /q C:\wfplab`); r.code != 0 {
		t.Fatal(r)
	}
	if ents, _ := m.ReadDir(`C:\wfplab`); len(ents) != 0 {
		t.Fatalf("left %+v", ents)
	}
	if r := runLine(in, `del C:\Windows\System32\tool.exe`); r.err != "Access is denied.\r\n" {
		t.Fatalf("protected: %+v", r)
	}
}

func TestExecResolution(t *testing.T) {
	in, m, ran := newInterp(t)
	m.SetFile(`C:\wfplab\wfplab-agent.exe`, []byte("MZ"))
	for _, l := range []string{`tool`, `TOOL.EXE x`, `C:\Windows\System32\tool y`, `"C:\wfplab\wfplab-agent.exe" versions`, `c:/wfplab/wfplab-agent versions`} {
		if r := runLine(in, l); r.code != 7 {
			t.Fatalf("%s: %+v", l, r)
		}
	}
	want := []string{`C:\Windows\System32\tool.exe`, `C:\Windows\System32\TOOL.EXE`, `C:\Windows\System32\tool.exe`, `C:\wfplab\wfplab-agent.exe`, `C:\wfplab\wfplab-agent.exe`}
	for i, p := range *ran {
		if !strings.EqualFold(p.Path, want[i]) {
			t.Errorf("run %d path %s, want %s", i, p.Path, want[i])
		}
	}
	if got := (*ran)[3].Args; !reflect.DeepEqual(got, []string{"versions"}) {
		t.Errorf("args %q", got)
	}
}

func TestOutputRedirectOfExternalStreamsToFile(t *testing.T) {
	in, m, _ := newInterp(t)
	m.SetDir(`C:\out`)
	if r := runLine(in, `tool a > C:\out\log.txt 2>&1`); r.code != 7 || r.out != "" {
		t.Fatal(r)
	}
	data, _ := m.ReadFile(`C:\out\log.txt`)
	if string(data) != "tool:a:\r\n" {
		t.Fatalf("log %q", data)
	}
}

func TestCancelledContextStopsLine(t *testing.T) {
	in, _, ran := newInterp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in.Run(ctx, `tool & tool`, nil, io.Discard, io.Discard)
	if len(*ran) != 0 {
		t.Fatalf("ran %d commands after cancel", len(*ran))
	}
}

func TestSplitArgs(t *testing.T) {
	cases := map[string][]string{
		`a b  c`:                  {"a", "b", "c"},
		`"a b" c`:                 {"a b", "c"},
		`a\\\"b`:                  {`a\"b`},
		`a\\"b c"`:                {`a\b c`},
		`C:\wfplab\x.sys`:         {`C:\wfplab\x.sys`},
		`"say ""hi"""`:            {`say "hi"`},
		`type= kernel start= x`:   {"type=", "kernel", "start=", "x"},
		``:                        nil,
		`binPath= "C:\a b\c.sys"`: {"binPath=", `C:\a b\c.sys`},
	}
	for in, want := range cases {
		if got := SplitArgs(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitArgs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAbs(t *testing.T) {
	cases := []struct{ cwd, in, want string }{
		{`C:\Users\vagrant`, `C:\wfplab`, `C:\wfplab`},
		{`C:\Users\vagrant`, `c:\wfplab\`, `C:\wfplab`},
		{`C:\Users\vagrant`, `..\..\wfplab\.\x.exe`, `C:\wfplab\x.exe`},
		{`C:\Users\vagrant`, `\wfplab`, `C:\wfplab`},
		{`C:\Users\vagrant`, `x`, `C:\Users\vagrant\x`},
		{`C:\Users\vagrant`, `C:x`, `C:\Users\vagrant\x`},
		{`C:\Users\vagrant`, `D:x`, `D:\x`},
		{`C:\Users\vagrant`, `C:/a/b.`, `C:\a\b`},
		{`C:\Users\vagrant`, `C:\`, `C:\`},
	}
	for _, c := range cases {
		got, err := Abs(c.cwd, c.in)
		if err != nil || got != c.want {
			t.Errorf("Abs(%q,%q) = %q, %v; want %q", c.cwd, c.in, got, err, c.want)
		}
	}
	if _, err := Abs(`C:\`, `\\server\share`); !errors.Is(err, ErrPathNotFound) {
		t.Errorf("UNC: %v", err)
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		p, n string
		want bool
	}{
		{"*.b64", "A.B64", true}, {"*.b64", "a.b641", false}, {"a?c", "abc", true}, {"*.*", "noext", true},
		{"wfplab-*.exe", "wfplab-agent.exe", true}, {"*x*y*", "axbyc", true}, {"*x*y*", "ayxc", false},
	}
	for _, c := range cases {
		if got := Match(c.p, c.n); got != c.want {
			t.Errorf("Match(%q,%q)=%v", c.p, c.n, got)
		}
	}
}

func TestMemFSDiskLimit(t *testing.T) {
	m := NewMemFS(10)
	if err := m.WriteFile(`C:\a`, []byte("12345678"), false); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFile(`C:\a`, []byte("123"), true); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("want disk full, got %v", err)
	}
	if err := m.WriteFile(`C:\a`, []byte("1234567890"), false); err != nil {
		t.Fatalf("rewrite within limit: %v", err)
	}
	if err := m.Remove(`C:\a`); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFile(`C:\b`, []byte("1234567890"), false); err != nil {
		t.Fatalf("space not given back: %v", err)
	}
}

// md makes missing parents, and a path deeper than its bound is refused, not walked
// (the bound once never applied: the loop returned on its first pass).
func TestMkdirParentsAndDepthBound(t *testing.T) {
	in, m, _ := newInterp(t)
	if got := runLine(in, `md C:\a\b\c`); got != (result{"", "", 0}) {
		t.Fatalf("md C:\\a\\b\\c = %+v", got)
	}
	for _, p := range []string{`C:\a`, `C:\a\b`, `C:\a\b\c`} {
		if info, err := m.Stat(p); err != nil || !info.Dir {
			t.Fatalf("%s after md: %+v, %v", p, info, err)
		}
	}
	deep := `C:` + strings.Repeat(`\d`, maxMkdirDepth+1)
	got := runLine(in, `md `+deep)
	if got.code != 1 || !strings.Contains(got.err, "cannot find the path") {
		t.Fatalf("md of %d levels = %+v, want refused", maxMkdirDepth+1, got)
	}
	if _, err := m.Stat(`C:\d`); err == nil {
		t.Fatal("a refused md left folders behind")
	}
}
