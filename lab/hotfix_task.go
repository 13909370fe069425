package lab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Windows Update refuses some remote logons: wusa over WinRM then answers access denied
// (docs/windows.md). The fallback runs wusa as SYSTEM from a one-shot scheduled task and
// reads its exit code as the task's Last Result (COMMANDS.md #29).
const (
	hotfixTask = "wfplab-kb979223"
	// #29 the scheduled task: create (wusa's command line), run, query, delete.
	fmtTaskCreate = `schtasks /create /tn ` + hotfixTask + ` /ru SYSTEM /sc once /st 00:00 /f /tr "%%SystemRoot%%\System32\wusa.exe %s /quiet /norestart"`
	cmdTaskRun    = `schtasks /run /tn ` + hotfixTask
	cmdTaskQuery  = `schtasks /query /tn ` + hotfixTask + ` /fo list /v`
	cmdTaskDelete = `schtasks /delete /tn ` + hotfixTask + ` /f`

	exitAccessDenied     = 5           // ERROR_ACCESS_DENIED
	exitWusaAccessDenied = -2147024891 // 0x80070005 E_ACCESSDENIED
	schedHasNotRun       = 267011      // 0x41303 SCHED_S_TASK_HAS_NOT_RUN
	schedRunning         = 267009      // 0x41301 SCHED_S_TASK_RUNNING
	// hotfixTaskTimeout bounds the task's wusa: an install on these systems takes minutes.
	hotfixTaskTimeout = 30 * time.Minute
)

var (
	taskStatus = regexp.MustCompile(`(?m)^Status:\s*(\S.*?)\s*$`)
	taskResult = regexp.MustCompile(`(?m)^Last Result:\s*(\S+)\s*$`)
)

// wusaRefused tells wusa's answer to a remote logon it may not install from.
func wusaRefused(exit int) bool { return exit == exitAccessDenied || exit == exitWusaAccessDenied }

// wusaAsTask runs wusa on path as SYSTEM from a scheduled task, waits for it (polling every
// RebootPoll, at most hotfixTaskTimeout) and returns its exit code. The task is deleted
// whatever happens.
func (g *Session) wusaAsTask(ctx context.Context, path string) (int, error) {
	if res, err := g.Run(ctx, fmt.Sprintf(fmtTaskCreate, path)); err != nil {
		return 0, err
	} else if res.Exit != 0 {
		return 0, g.errorf("hotfix: wusa is refused over WinRM and creating a scheduled task for it failed (exit %d): %s; install %s on the guest by hand", res.Exit, summary(res), path)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if res, err := g.Run(dctx, cmdTaskDelete); err != nil || res.Exit != 0 {
			g.logf("could not delete scheduled task %s (%v %s); delete it with %q", hotfixTask, err, summary(res), cmdTaskDelete)
		}
	}()
	if res, err := g.Run(ctx, cmdTaskRun); err != nil {
		return 0, err
	} else if res.Exit != 0 {
		return 0, g.errorf("hotfix: starting scheduled task %s failed (exit %d): %s", hotfixTask, res.Exit, summary(res))
	}
	deadline := time.Now().Add(hotfixTaskTimeout)
	for {
		res, err := g.Run(ctx, cmdTaskQuery)
		if err != nil {
			return 0, err
		}
		status, code, err := parseTaskQuery(res.Stdout)
		if err != nil {
			return 0, g.errorf("hotfix: %q: %v: %s", cmdTaskQuery, err, summary(res))
		}
		if !strings.EqualFold(status, "Running") && code != schedRunning && code != schedHasNotRun {
			return code, nil
		}
		if time.Now().After(deadline) {
			return 0, g.errorf("hotfix: wusa in scheduled task %s still runs after %s (status %s); look at the guest's setup event log", hotfixTask, hotfixTaskTimeout, status)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(g.opts.RebootPoll):
		}
	}
}

// parseTaskQuery reads Status and Last Result from `schtasks /query /fo list /v`; the result
// is decimal, or hexadecimal with 0x.
func parseTaskQuery(out string) (status string, result int, err error) {
	s, r := taskStatus.FindStringSubmatch(out), taskResult.FindStringSubmatch(out)
	if s == nil || r == nil {
		return "", 0, fmt.Errorf("no Status or Last Result line")
	}
	n, err := strconv.ParseInt(r[1], 0, 64)
	if err != nil {
		return "", 0, fmt.Errorf("schtasks: the Last Result %q is not a number", r[1])
	}
	return s[1], int(int32(n)), nil
}
