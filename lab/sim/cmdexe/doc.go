// Package cmdexe is a model of cmd.exe running one command line (`cmd /c LINE`), as WinRM's
// cmd shell does: %VAR% expansion, `&` `&&` `||` `|`, double quotes and `^`, redirections
// (`>`, `>>`, `<`, `2>nul`, `2>&1`), `if [/i] [not] exist|defined|errorlevel|==`, the
// internal commands the lab and a person at the prompt use (echo, exit, ver, set, mkdir,
// del, type, cd, rem), and PATH/PATHEXT lookup of external programs, which the caller runs.
// Commands, variables and paths are case-insensitive.
package cmdexe
