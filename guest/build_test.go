package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTools are what `make -C guest` runs; a missing one is a hard failure with the
// command that installs it, never a skip.
var buildTools = []string{
	"make", "i686-w64-mingw32-gcc", "x86_64-w64-mingw32-gcc",
	"i686-w64-mingw32-dlltool", "x86_64-w64-mingw32-dlltool", "osslsigncode", "openssl",
}

var (
	buildOnce sync.Once
	buildErr  error
)

// guestDir is this package's folder (tests run in it).
func guestDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("guest dir: %v", err)
	}
	return dir
}

// requireTools fails the test with install instructions when a build tool is missing.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing %s: run guest/install-deps.sh (as root) to install mingw-w64, osslsigncode and openssl",
			strings.Join(missing, ", "))
	}
}

// requireBuild runs `make -C guest` once per test binary; make rebuilds what is stale
// or missing and does nothing otherwise.
func requireBuild(t testing.TB) string {
	t.Helper()
	requireTools(t, buildTools...)
	dir := guestDir(t)
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "-j"+strconv.Itoa(runtime.NumCPU()), "-C", dir, "all")
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("make -C %s failed: %v\n%s", dir, err, lastLines(out.String(), 40))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(dir, "build")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run executes a command with a deadline and returns its combined output.
func run(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: no answer within %v", name, strings.Join(args, " "), timeout)
	}
	return string(out), err
}
