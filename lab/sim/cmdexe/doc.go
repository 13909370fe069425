// Package cmdexe is a model of cmd.exe running one command line (`cmd /c LINE`), as WinRM's
// cmd shell does, and the batch files (.bat, .cmd) that line starts: %VAR% expansion, `&`
// `&&` `||` `|`, double quotes and `^`, redirections (`>`, `>>`, `<`, `2>nul`, `2>&1`),
// parenthesised blocks expanded once when read, `if [/i] [not] exist|defined|errorlevel|==|
// EQU..GEQ` with else, `for` and `for /f`, and in batch files %0-%9, %~1, %*, labels, goto,
// `call :label`, exit /b, setlocal/endlocal with delayed expansion (!VAR!), set /a and echo
// on/off; the internal commands the lab, its scripts and a person at the prompt use (echo,
// exit, ver, set, mkdir, del, type, cd, rem, call, goto, setlocal, endlocal, shift), and
// PATH/PATHEXT lookup of external programs, which the caller runs. Commands, variables and
// paths are case-insensitive. Files: parse.go and block.go read lines into commands,
// interp.go runs them, batch.go and calls.go run batch files, forf.go is for, setarith.go
// is set /a.
package cmdexe
