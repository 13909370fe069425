package appliance

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes the cpio "newc" format (magic 070701), the format the Linux kernel
// unpacks an initramfs from: a 110-byte ASCII header per entry, the NUL-terminated name and
// the data, each padded to 4 bytes, ended by the entry "TRAILER!!!".
type cpioWriter struct {
	w     io.Writer
	ino   uint32
	err   error
	names map[string]bool
}

// Mode bits of the newc header (as in stat(2)).
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
	cpioLink = 0o120000
)

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, names: map[string]bool{}}
}

func (c *cpioWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || c.names[name] {
		c.err = fmt.Errorf("initramfs: entry %q is empty or written twice", name)
		return
	}
	c.names[name] = true
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	// ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
	// namesize (with the NUL), check. mtime 0 keeps the archive reproducible.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad(len(hdr) + len(name) + 1)
}

func (c *cpioWriter) write(p []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(p)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir adds a folder (perm e.g. 0o755).
func (c *cpioWriter) Dir(name string, perm uint32) {
	c.header(name, cpioDir|perm, 0, 0, 0)
}

// File adds a regular file.
func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	c.header(name, cpioReg|perm, len(data), 0, 0)
	c.write(data)
	c.pad(len(data))
}

// FileFrom adds a regular file of size bytes read from r.
func (c *cpioWriter) FileFrom(name string, perm uint32, size int64, r io.Reader) {
	c.header(name, cpioReg|perm, int(size), 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("initramfs: %s: copied %d of %d bytes: %w", name, n, size, err)
		return
	}
	c.pad(int(size))
}

// Symlink adds a symbolic link to target.
func (c *cpioWriter) Symlink(name, target string) {
	c.header(name, cpioLink|0o777, len(target), 0, 0)
	c.write([]byte(target))
	c.pad(len(target))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) {
	c.header(name, cpioChar|perm, 0, major, minor)
}

// Close writes the trailer; it does not close the underlying writer.
func (c *cpioWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	delete(c.names, "TRAILER!!!")
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.err
}
