package lab

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// guestPathRE is what the lab writes into command lines unquoted: a drive, then folders
// and a file name without spaces or cmd metacharacters.
var guestPathRE = regexp.MustCompile(`^[A-Za-z]:(\\[A-Za-z0-9_.\-]+)+$`)

// Upload writes data to remotePath (a Windows path) in base64 chunks with echo >>, decodes
// with certutil -decode, removes the .b64, and checks the SHA-1 with certutil -hashfile.
// It makes the parent folder when missing. All commands share one shell.
func (g *Session) Upload(ctx context.Context, data []byte, remotePath string) error {
	if !guestPathRE.MatchString(remotePath) {
		return g.errorf("upload: %q is not a path the lab can put on a cmd line (drive, folders and a name of letters, digits, _ . -)", remotePath)
	}
	if len(data) == 0 {
		return g.errorf("upload to %s: nothing to upload (0 bytes); check the file the caller read", remotePath)
	}
	sum := sha1.Sum(data)
	want := hex.EncodeToString(sum[:])
	b64Path := remotePath + ".b64"
	chunks := chunkBase64(base64.StdEncoding.EncodeToString(data), chunkSize(b64Path))
	parent := remotePath[:strings.LastIndexByte(remotePath, '\\')]

	g.logf("uploading %s (%d bytes, %d chunks)", remotePath, len(data), len(chunks))
	return g.withShell(ctx, func(sh *shell) error {
		if strings.Contains(parent, `\`) { // not the drive root
			if _, err := sh.must(ctx, fmt.Sprintf(fmtMkdir, parent, parent)); err != nil {
				return err
			}
		}
		if _, err := sh.must(ctx, fmt.Sprintf(fmtClearStale, b64Path, b64Path)); err != nil {
			return err
		}
		for i, c := range chunks {
			if err := ctx.Err(); err != nil {
				return g.errorf("upload of %s stopped after %d of %d chunks: %w", remotePath, i, len(chunks), err)
			}
			if _, err := sh.must(ctx, fmt.Sprintf(fmtAppendChunk, c, b64Path)); err != nil {
				return g.errorf("upload of %s, chunk %d of %d: %w", remotePath, i+1, len(chunks), err)
			}
		}
		if _, err := sh.must(ctx, fmt.Sprintf(fmtDecode, b64Path, remotePath)); err != nil {
			return g.errorf("upload of %s: certutil could not decode what was sent: %w; retry the upload", remotePath, err)
		}
		if _, err := sh.must(ctx, fmt.Sprintf(fmtDelete, b64Path)); err != nil {
			return err
		}
		res, err := sh.must(ctx, fmt.Sprintf(fmtHashFile, remotePath))
		if err != nil {
			return err
		}
		got, err := parseHashFile(res.Stdout)
		if err != nil {
			return g.errorf("upload of %s: %v; the lab reads certutil's English output: use an English (en-US) guest", remotePath, err)
		}
		if got != want {
			return g.errorf("upload of %s: SHA-1 on the guest is %s, want %s: the file arrived damaged; retry the upload", remotePath, got, want)
		}
		return nil
	})
}

// chunkSize is the longest base64 run (a multiple of 4, at most maxChunk) whose echo line
// stays within cmd.exe's limit for this .b64 path.
func chunkSize(b64Path string) int {
	overhead := len(fmt.Sprintf(fmtAppendChunk, "", b64Path))
	n := min(maxChunk, maxCommandLine-overhead)
	return n / 4 * 4
}

// chunkBase64 splits s into runs of at most n characters; only the last can hold padding.
func chunkBase64(s string, n int) []string {
	out := make([]string, 0, len(s)/n+1)
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
