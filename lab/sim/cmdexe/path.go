package cmdexe

import (
	"errors"
	"io/fs"
	"strings"
)

// FileInfo describes one entry of the file system a command line runs against.
type FileInfo struct {
	Name string // last path component as created (case preserved)
	Dir  bool
	Size int64
}

// FS is the file system redirections, `if exist` and the built-in commands use. Paths are
// absolute Windows paths as Abs returns them; implementations compare them without case.
// Errors are fs.ErrNotExist (no such file), ErrPathNotFound (a parent folder is missing),
// fs.ErrExist, fs.ErrPermission, or ErrIsDir.
type FS interface {
	Stat(path string) (FileInfo, error)
	ReadFile(path string) ([]byte, error)
	// WriteFile creates the file, or truncates it, or appends to it when appendTo is set.
	WriteFile(path string, data []byte, appendTo bool) error
	// Mkdir makes one folder; its parent must exist.
	Mkdir(path string) error
	// Remove deletes a file (not a folder).
	Remove(path string) error
	// ReadDir lists a folder.
	ReadDir(path string) ([]FileInfo, error)
}

var (
	// ErrPathNotFound is Windows' ERROR_PATH_NOT_FOUND: a folder on the way is missing.
	ErrPathNotFound = errors.New("the system cannot find the path specified")
	// ErrIsDir is returned when a file operation names a folder.
	ErrIsDir = errors.New("is a directory")
)

// Abs turns a path as typed (quotes already removed) into an absolute, cleaned Windows path
// relative to cwd: `/` becomes `\`, `.` and `..` are resolved, trailing dots and spaces of
// each component are dropped (as Win32 does) and the drive letter is upper-cased.
// UNC and device paths are not modelled: they return ErrPathNotFound.
func Abs(cwd, p string) (string, error) {
	p = strings.ReplaceAll(p, "/", `\`)
	if p == "" {
		return "", fs.ErrNotExist
	}
	if strings.HasPrefix(p, `\\`) {
		return "", ErrPathNotFound
	}
	cwd = strings.ReplaceAll(cwd, "/", `\`)
	var drive, rest string
	switch {
	case len(p) >= 2 && p[1] == ':' && isLetter(p[0]):
		drive = strings.ToUpper(p[:1]) + ":"
		rest = p[2:]
		if !strings.HasPrefix(rest, `\`) {
			// Drive-relative: relative to that drive's current folder, which is its root
			// unless it is cwd's drive.
			if len(cwd) >= 2 && strings.EqualFold(cwd[:2], drive) {
				rest = cwd[2:] + `\` + rest
			} else {
				rest = `\` + rest
			}
		}
	case strings.HasPrefix(p, `\`):
		if len(cwd) < 2 || cwd[1] != ':' {
			return "", ErrPathNotFound
		}
		drive = strings.ToUpper(cwd[:1]) + ":"
		rest = p
	default:
		if len(cwd) < 2 || cwd[1] != ':' {
			return "", ErrPathNotFound
		}
		drive = strings.ToUpper(cwd[:1]) + ":"
		rest = cwd[2:] + `\` + p
	}
	var parts []string
	for _, c := range strings.Split(rest, `\`) {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
			continue
		}
		c = strings.TrimRight(c, " .")
		if c == "" {
			continue
		}
		parts = append(parts, c)
	}
	return drive + `\` + strings.Join(parts, `\`), nil
}

// Dir returns the folder holding path (an absolute path from Abs); the root is its own folder.
func Dir(path string) string {
	i := strings.LastIndexByte(path, '\\')
	if i < 0 {
		return path
	}
	if i == 2 { // "C:\x" -> "C:\"
		return path[:3]
	}
	return path[:i]
}

// Base returns the last component of path.
func Base(path string) string {
	i := strings.LastIndexByte(path, '\\')
	return path[i+1:]
}

// Join joins a folder and a name.
func Join(dir, name string) string {
	if strings.HasSuffix(dir, `\`) {
		return dir + name
	}
	return dir + `\` + name
}

// IsDevice reports whether a redirection target names a DOS device (NUL, CON) in any folder.
func IsDevice(p string) (name string, ok bool) {
	b := strings.ToLower(p)
	if i := strings.LastIndexAny(b, `\/:`); i >= 0 {
		b = b[i+1:]
	}
	if j := strings.IndexByte(b, '.'); j >= 0 {
		b = b[:j]
	}
	switch strings.TrimRight(b, " ") {
	case "nul", "con":
		return strings.TrimRight(b, " "), true
	}
	return "", false
}

// HasWildcard reports whether a path's last component has `*` or `?`.
func HasWildcard(p string) bool {
	return strings.ContainsAny(Base(p), "*?")
}

// Match reports whether name matches a Windows wildcard pattern (`*`, `?`), without case.
// `*.*` matches names without a dot too, as cmd's does.
func Match(pattern, name string) bool {
	pattern = strings.ToLower(pattern)
	name = strings.ToLower(name)
	if pattern == "*.*" || pattern == "*" {
		return true
	}
	return match(pattern, name, 0)
}

func match(p, s string, depth int) bool {
	if depth > 64 { // bound the recursion on pathological patterns
		return false
	}
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if match(p, s[i:], depth+1) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
