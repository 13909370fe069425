package wsman

import (
	"context"
	"io"
)

// Command is one command a client started in a shell.
type Command struct {
	// Line is the command line as cmd.exe receives it: the rsp:Command text, then each
	// rsp:Arguments element, joined by single spaces.
	Line string
	// Stdin yields what the client sends; io.EOF once it sent End="true".
	Stdin io.Reader
	// Stdout and Stderr stream to the client's Receive calls as they are written.
	Stdout io.Writer
	Stderr io.Writer
	// ShellID and CommandID identify the command, for logs.
	ShellID   string
	CommandID string
}

// Host runs commands. Run returns the exit code when the command ends. ctx is cancelled
// when the client signals terminate (or ctrl_c), deletes the shell, or the server shuts
// down; Run must then return promptly (its exit code is ignored).
type Host interface {
	Run(ctx context.Context, cmd Command) int
}

// HostFunc adapts a function to Host.
type HostFunc func(ctx context.Context, cmd Command) int

// Run calls f.
func (f HostFunc) Run(ctx context.Context, cmd Command) int { return f(ctx, cmd) }
