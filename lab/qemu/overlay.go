package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// qemuImgTimeout bounds one qemu-img call (info and create touch only metadata).
const qemuImgTimeout = 60 * time.Second

// imageFormat asks qemu-img for the format of a base image ("qcow2", "raw", ...).
func imageFormat(ctx context.Context, qemuImg, image string) (string, error) {
	out, err := runTool(ctx, qemuImg, "info", "--output=json", image)
	if err != nil {
		return "", fmt.Errorf("reading the format of base image %s: %w", image, err)
	}
	var info struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Format == "" {
		return "", fmt.Errorf("reading the format of base image %s: qemu-img info gave no format (%v)", image, err)
	}
	return info.Format, nil
}

// createOverlay makes a qcow2 overlay at path over image, so the VM never writes the base
// image. The backing path is absolute: a relative one would be read relative to the overlay.
func createOverlay(ctx context.Context, qemuImg, image, path string) error {
	abs, err := filepath.Abs(image)
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	format, err := imageFormat(ctx, qemuImg, abs)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("overlay %s already exists; a run folder is used by one run only", path)
	}
	if _, err := runTool(ctx, qemuImg, "create", "-q", "-f", "qcow2", "-b", abs, "-F", format, path); err != nil {
		return fmt.Errorf("creating overlay %s over %s: %w", path, abs, err)
	}
	return nil
}

// createStateDisk makes a blank sparse raw disk of sizeMB; any old one is replaced, since
// every run starts with a blank state disk.
func createStateDisk(path string, sizeMB int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating state disk: %w", err)
	}
	if err := f.Truncate(int64(sizeMB) << 20); err != nil {
		f.Close()
		return fmt.Errorf("sizing state disk %s to %d MB: %w", path, sizeMB, err)
	}
	return f.Close()
}

// runTool runs a helper binary with a deadline and returns its stdout; errors quote stderr.
func runTool(ctx context.Context, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, qemuImgTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: no answer within %s", bin, args[0], qemuImgTimeout)
		}
		if msg != "" {
			return nil, fmt.Errorf("%s %s: %w: %s", bin, args[0], err, msg)
		}
		return nil, fmt.Errorf("%s %s: %w (is qemu-utils installed?)", bin, args[0], err)
	}
	return stdout.Bytes(), nil
}
