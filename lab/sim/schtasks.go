package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// Task Scheduler's "Last Result" before a task has run and while it runs (docs/windows.md).
const (
	schedHasNotRun = 267011 // 0x41303 SCHED_S_TASK_HAS_NOT_RUN
	schedRunning   = 267009 // 0x41301 SCHED_S_TASK_RUNNING
)

// task is one scheduled task: what schtasks /create registered. The model runs it only on
// /run (its /sc once time never comes), as the account /ru names.
type task struct {
	name, run, user string
	running         bool
	lastResult      int
}

// schtasks is the subset of schtasks.exe the lab's hotfix fallback uses (COMMANDS.md #29):
// /create /tn /tr /ru /sc once /st [/f], /run /tn, /query /tn /fo list /v, /delete /tn /f.
func (g *Machine) schtasks(_ context.Context, b *boot, p *cmdexe.Process) int {
	if len(p.Args) == 0 {
		return schtasksErr(p, "Invalid syntax. Type \"SCHTASKS /?\" for usage.")
	}
	verb := strings.ToLower(p.Args[0])
	opts := map[string]string{}
	for i := 1; i < len(p.Args); i++ {
		k := strings.ToLower(p.Args[i])
		if k == "/f" || k == "/v" {
			opts[k] = ""
			continue
		}
		if !strings.HasPrefix(k, "/") || i+1 == len(p.Args) {
			return schtasksErr(p, fmt.Sprintf("Invalid argument/option - '%s'.\r\nType \"SCHTASKS %s /?\" for usage.", p.Args[i], strings.ToUpper(verb)))
		}
		opts[k] = p.Args[i+1]
		i++
	}
	name := opts["/tn"]
	if name == "" {
		return schtasksErr(p, "Invalid syntax. Mandatory option '/tn' is missing.")
	}
	key := strings.ToLower(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tasks == nil {
		g.tasks = map[string]*task{}
	}
	t := g.tasks[key]
	switch verb {
	case "/create":
		if opts["/tr"] == "" || !strings.EqualFold(opts["/sc"], "once") || opts["/st"] == "" {
			return schtasksErr(p, "Invalid syntax. The model takes /sc once with /st and /tr.")
		}
		if _, force := opts["/f"]; t != nil && !force {
			return schtasksErr(p, "Cannot create a file when that file already exists.")
		}
		g.tasks[key] = &task{name: name, run: opts["/tr"], user: opts["/ru"], lastResult: schedHasNotRun}
		fmt.Fprintf(p.Stdout, "WARNING: Task may not run because /ST is earlier than current time.\r\nSUCCESS: The scheduled task %q has successfully been created.\r\n", name)
		return 0
	case "/run", "/query", "/delete":
		if t == nil {
			return schtasksErr(p, "The system cannot find the file specified.")
		}
	default:
		return schtasksErr(p, fmt.Sprintf("Invalid argument/option - '%s'.", p.Args[0]))
	}
	switch verb {
	case "/run":
		if !t.running {
			t.running, t.lastResult = true, schedRunning
			go g.runTask(b, t)
		}
		fmt.Fprintf(p.Stdout, "SUCCESS: Attempted to run the scheduled task %q.\r\n", name)
	case "/query":
		status := "Ready"
		if t.running {
			status = "Running"
		}
		fmt.Fprintf(p.Stdout, "\r\nFolder: \\\r\nHostName:                             %s\r\nTaskName:                             \\%s\r\n"+
			"Status:                               %s\r\nLast Result:                          %d\r\nTask To Run:                          %s\r\nRun As User:                          %s\r\n",
			g.hostname, name, status, t.lastResult, t.run, t.user)
	case "/delete":
		delete(g.tasks, key)
		fmt.Fprintf(p.Stdout, "SUCCESS: The scheduled task %q was successfully deleted.\r\n", name)
	}
	return 0
}

func schtasksErr(p *cmdexe.Process, msg string) int {
	fmt.Fprintf(p.Stderr, "ERROR: %s\r\n", msg)
	return 1
}

// runTask runs a task's command line in the boot it was started in, as its account (the
// USERNAME programs see), and records its exit code as Last Result.
func (g *Machine) runTask(b *boot, t *task) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-b.down:
			cancel()
		case <-ctx.Done():
		}
	}()
	in := g.interp(b)
	env := make(map[string]string, len(in.Env)+1)
	for k, v := range in.Env {
		env[k] = v
	}
	if t.user != "" {
		env["USERNAME"] = t.user
	}
	in.Env = env
	var out strings.Builder
	code := in.Run(ctx, t.run, strings.NewReader(""), &out, &out)
	g.mu.Lock()
	t.running, t.lastResult = false, code
	g.mu.Unlock()
}
