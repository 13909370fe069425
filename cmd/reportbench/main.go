// Command reportbench measures `wfplab report` on a large store: it writes a synthetic run
// of --samples pool samples (once; reused when --store already holds one), then runs
// `wfplab report` on it --runs times as a child process and prints each run's wall time and
// peak resident memory. Exit 1 when a run is over --max-seconds or --max-mb, 2 on errors.
//
//	go run ./cmd/reportbench --samples 1000000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/internal/synthrun"
	"github.com/wfplab/wfplab/scenarios"
)

func main() {
	samples := flag.Int("samples", 1_000_000, "pool samples in the store")
	dir := flag.String("store", "", "run folder to write the store in, or reuse (default: a temporary folder, removed after)")
	runs := flag.Int("runs", 3, "times to run wfplab report")
	maxSec := flag.Float64("max-seconds", 5, "limit on one report's wall time")
	maxMB := flag.Float64("max-mb", 500, "limit on one report's peak resident memory, MiB")
	timeout := flag.Duration("timeout", 2*time.Minute, "deadline of one report")
	flag.Parse()
	code, err := run(*samples, *dir, *runs, *maxSec, *maxMB, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reportbench:", err)
	}
	os.Exit(code)
}

func run(samples int, dir string, runs int, maxSec, maxMB float64, timeout time.Duration) (int, error) {
	if samples < 1 || runs < 1 {
		return 2, fmt.Errorf("--samples and --runs must be 1 or more")
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "reportbench-")
		if err != nil {
			return 2, err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "run")
	}
	if _, err := os.Stat(filepath.Join(dir, bench.StoreFile)); err != nil {
		sc, err := scenarios.Builtin("kb979223")
		if err != nil {
			return 2, err
		}
		windows := len(sc.Targets) * len(sc.Phases) * len(sc.Profiles)
		start := time.Now()
		spec := synthrun.Spec{Seed: 1, Samples: (samples + windows - 1) / windows, Outputs: synthrun.StoreOnly}
		if err := synthrun.Write(dir, spec); err != nil {
			return 2, fmt.Errorf("writing the store: %w", err)
		}
		fmt.Printf("store: %s, %d samples, written in %.1f s\n", dir, spec.Samples*windows, time.Since(start).Seconds())
	}
	bin := filepath.Join(filepath.Dir(dir), "wfplab-reportbench")
	build := exec.Command("go", "build", "-o", bin, "github.com/wfplab/wfplab/cmd/wfplab")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 2, fmt.Errorf("building wfplab: %w", err)
	}
	defer os.Remove(bin)
	over := false
	for i := 1; i <= runs; i++ {
		if timeout <= 0 {
			timeout = 2 * time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		cmd := exec.CommandContext(ctx, bin, "report", dir)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start).Seconds()
		cancel()
		// Exit 1 is "expectations not met", which synthetic figures may well be; the report was written.
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
			return 2, fmt.Errorf("wfplab report %s: %v\n%s", dir, err, out)
		}
		ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		mb := 0.0
		if ru != nil {
			mb = float64(ru.Maxrss) / 1024 // Linux reports KiB
		}
		fmt.Printf("report %d: %.2f s wall, %.0f MiB peak resident\n", i, wall, mb)
		over = over || wall > maxSec || mb > maxMB
	}
	if over {
		fmt.Printf("over the limits (%.1f s, %.0f MiB)\n", maxSec, maxMB)
		return 1, nil
	}
	return 0, nil
}
