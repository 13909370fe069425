package cmdexe

import (
	"errors"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// ErrDiskFull is ERROR_DISK_FULL: the in-memory disk's size limit was reached.
var ErrDiskFull = errors.New("there is not enough space on the disk")

// MemFS is an in-memory Windows file system with drive C: only. Paths compare without case
// and keep the case they were created with. Folders under a protected prefix cannot be
// written to or deleted from (Access is denied), standing in for ACLs on C:\Windows.
// Safe for concurrent use.
type MemFS struct {
	mu        sync.RWMutex
	nodes     map[string]*memNode // key: lower-case absolute path
	protected []string            // lower-case folder prefixes
	used      int64
	limit     int64
}

type memNode struct {
	name string
	dir  bool
	data []byte
}

// NewMemFS returns a file system holding only C:\, limited to limit bytes of file data
// (0 means 1 GiB).
func NewMemFS(limit int64) *MemFS {
	if limit <= 0 {
		limit = 1 << 30
	}
	return &MemFS{nodes: map[string]*memNode{`c:\`: {name: `C:\`, dir: true}}, limit: limit}
}

func key(p string) string { return strings.ToLower(p) }

// Protect denies writes, creations and deletions at or under the folder p.
func (m *MemFS) Protect(p string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.protected = append(m.protected, strings.TrimSuffix(key(p), `\`)+`\`)
}

func (m *MemFS) isProtected(k string) bool {
	for _, p := range m.protected {
		if strings.HasPrefix(k+`\`, p) {
			return true
		}
	}
	return false
}

// parentDir checks that the folder holding k exists.
func (m *MemFS) parentDir(k string) error {
	parent := key(Dir(k))
	if parent == k {
		return ErrPathNotFound
	}
	n, ok := m.nodes[parent]
	if !ok || !n.dir {
		return ErrPathNotFound
	}
	return nil
}

// lookup finds the node at k; a missing one is ErrPathNotFound when its folder is missing
// too, as Windows tells the two apart, and fs.ErrNotExist otherwise. Callers hold mu.
func (m *MemFS) lookup(k string) (*memNode, error) {
	if n, ok := m.nodes[k]; ok {
		return n, nil
	}
	if err := m.parentDir(k); err != nil {
		return nil, err
	}
	return nil, fs.ErrNotExist
}

// Stat implements FS.
func (m *MemFS) Stat(p string) (FileInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(key(p))
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: n.name, Dir: n.dir, Size: int64(len(n.data))}, nil
}

// ReadFile implements FS. The slice must not be modified.
func (m *MemFS) ReadFile(p string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(key(p))
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, ErrIsDir
	}
	return n.data[:len(n.data):len(n.data)], nil
}

// WriteFile implements FS.
func (m *MemFS) WriteFile(p string, data []byte, appendTo bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key(p)
	n, ok := m.nodes[k]
	if ok && n.dir {
		return ErrIsDir
	}
	if !ok {
		if err := m.parentDir(k); err != nil {
			return err
		}
	}
	if m.isProtected(k) {
		return fs.ErrPermission
	}
	grow := int64(len(data))
	if ok && !appendTo {
		grow -= int64(len(n.data))
	}
	if m.used+grow > m.limit {
		return ErrDiskFull
	}
	m.used += grow
	if !ok {
		n = &memNode{name: Base(p)}
		m.nodes[k] = n
	}
	if appendTo {
		n.data = append(n.data, data...)
	} else {
		n.data = append([]byte(nil), data...)
	}
	return nil
}

// Mkdir implements FS.
func (m *MemFS) Mkdir(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key(p)
	if _, ok := m.nodes[k]; ok {
		return fs.ErrExist
	}
	if err := m.parentDir(k); err != nil {
		return err
	}
	if m.isProtected(k) {
		return fs.ErrPermission
	}
	m.nodes[k] = &memNode{name: Base(p), dir: true}
	return nil
}

// Remove implements FS.
func (m *MemFS) Remove(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key(p)
	n, err := m.lookup(k)
	if err != nil {
		return err
	}
	if n.dir {
		return ErrIsDir
	}
	if m.isProtected(k) {
		return fs.ErrPermission
	}
	m.used -= int64(len(n.data))
	delete(m.nodes, k)
	return nil
}

// ReadDir implements FS; entries are sorted by name without case.
func (m *MemFS) ReadDir(p string) ([]FileInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k := key(p)
	n, err := m.lookup(k)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, ErrPathNotFound
	}
	prefix := strings.TrimSuffix(k, `\`) + `\`
	var out []FileInfo
	for ck, c := range m.nodes {
		if ck == k || !strings.HasPrefix(ck, prefix) || strings.Contains(ck[len(prefix):], `\`) {
			continue
		}
		out = append(out, FileInfo{Name: c.name, Dir: c.dir, Size: int64(len(c.data))})
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i].Name) < key(out[j].Name) })
	return out, nil
}

// SetFile creates or replaces a file and the folders above it, ignoring protection: how the
// guest lays down its own system files.
func (m *MemFS) SetFile(p string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mkdirAllLocked(Dir(p))
	k := key(p)
	if old, ok := m.nodes[k]; ok {
		m.used -= int64(len(old.data))
	}
	m.used += int64(len(data))
	m.nodes[k] = &memNode{name: Base(p), data: append([]byte(nil), data...)}
}

// SetDir creates a folder and the folders above it, ignoring protection.
func (m *MemFS) SetDir(p string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mkdirAllLocked(p)
}

func (m *MemFS) mkdirAllLocked(p string) {
	for depth := 0; depth < 256; depth++ {
		k := key(p)
		if _, ok := m.nodes[k]; ok {
			return
		}
		m.nodes[k] = &memNode{name: Base(p), dir: true}
		parent := Dir(p)
		if parent == p {
			return
		}
		p = parent
	}
}

// MemEntry is one file or folder of a MemFS, as saved to a simulated machine's state disk.
type MemEntry struct {
	Key  string // lower-case absolute path
	Name string // the name as created
	Dir  bool
	Data []byte
}

// Entries lists every file and folder, sorted by key; the data is copied.
func (m *MemFS) Entries() []MemEntry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]MemEntry, 0, len(m.nodes))
	for k, n := range m.nodes {
		out = append(out, MemEntry{Key: k, Name: n.name, Dir: n.dir, Data: append([]byte(nil), n.data...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Load replaces the content with entries (from Entries), keeping the protection and the size
// limit. It fails, changing nothing, when the data exceeds the limit.
func (m *MemFS) Load(entries []MemEntry) error {
	nodes := map[string]*memNode{`c:\`: {name: `C:\`, dir: true}}
	var used int64
	for _, e := range entries {
		nodes[key(e.Key)] = &memNode{name: e.Name, dir: e.Dir, data: append([]byte(nil), e.Data...)}
		used += int64(len(e.Data))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if used > m.limit {
		return ErrDiskFull
	}
	m.nodes, m.used = nodes, used
	return nil
}

// Free is how many more bytes of file data the disk takes.
func (m *MemFS) Free() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.limit - m.used
}
