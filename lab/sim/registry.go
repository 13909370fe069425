package sim

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// Registry value types reg.exe knows.
const (
	regSZ       = "REG_SZ"
	regExpandSZ = "REG_EXPAND_SZ"
	regMultiSZ  = "REG_MULTI_SZ"
	regDWORD    = "REG_DWORD"
	regQWORD    = "REG_QWORD"
	regBinary   = "REG_BINARY"
	regNone     = "REG_NONE"
)

const servicesKey = `HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services`

// regValue holds its data as text for string types, a number for DWORD/QWORD, hex for binary.
type regValue struct {
	name  string // "" is the default value
	typ   string
	str   string
	num   uint64
	bin   []byte
	multi []string
}

type regKey struct {
	path   string // canonical spelling, root in long form
	values map[string]*regValue
	order  []string // lower-case value names in creation order
}

// registry is the guest's registry: keys by lower-case canonical path. It persists across
// reboots, as a hive does.
type registry struct {
	mu   sync.Mutex
	keys map[string]*regKey
}

func newRegistry() *registry { return &registry{keys: map[string]*regKey{}} }

var regRoots = map[string]string{
	"HKLM": "HKEY_LOCAL_MACHINE", "HKEY_LOCAL_MACHINE": "HKEY_LOCAL_MACHINE",
	"HKCU": "HKEY_CURRENT_USER", "HKEY_CURRENT_USER": "HKEY_CURRENT_USER",
	"HKCR": "HKEY_CLASSES_ROOT", "HKEY_CLASSES_ROOT": "HKEY_CLASSES_ROOT",
	"HKU": "HKEY_USERS", "HKEY_USERS": "HKEY_USERS",
	"HKCC": "HKEY_CURRENT_CONFIG", "HKEY_CURRENT_CONFIG": "HKEY_CURRENT_CONFIG",
}

// canonKey turns `HKLM\a\b` into `HKEY_LOCAL_MACHINE\a\b`; ok is false for a bad root or a
// remote key.
func canonKey(k string) (string, bool) {
	k = strings.Trim(k, `\`)
	root, rest, _ := strings.Cut(k, `\`)
	long, ok := regRoots[strings.ToUpper(root)]
	if !ok || strings.HasPrefix(k, `\\`) {
		return "", false
	}
	var parts []string
	for _, p := range strings.Split(rest, `\`) {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return long, true
	}
	return long + `\` + strings.Join(parts, `\`), true
}

func (r *registry) ensureKey(path string) *regKey {
	c, ok := canonKey(path)
	if !ok {
		c = path
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ensureLocked(c)
}

func (r *registry) ensureLocked(c string) *regKey {
	if k, ok := r.keys[strings.ToLower(c)]; ok {
		return k
	}
	if i := strings.LastIndexByte(c, '\\'); i > 0 {
		r.ensureLocked(c[:i])
	}
	k := &regKey{path: c, values: map[string]*regValue{}}
	r.keys[strings.ToLower(c)] = k
	return k
}

// set writes a string or DWORD value (for the guest's own keys).
func (r *registry) set(path, name, typ string, data any) {
	c, _ := canonKey(path)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.ensureLocked(c)
	v := &regValue{name: name, typ: typ}
	switch d := data.(type) {
	case string:
		v.str = d
	case uint32:
		v.num = uint64(d)
	case uint64:
		v.num = d
	}
	k.put(v)
}

func (k *regKey) put(v *regValue) {
	ln := strings.ToLower(v.name)
	if _, ok := k.values[ln]; !ok {
		k.order = append(k.order, ln)
	}
	k.values[ln] = v
}

// dword reads a REG_DWORD value; ok is false when it is missing or of another type.
func (r *registry) dword(path, name string) (uint32, bool) {
	v, ok := r.value(path, name)
	if !ok || v.typ != regDWORD {
		return 0, false
	}
	return uint32(v.num), true
}

// text reads a REG_SZ or REG_EXPAND_SZ value.
func (r *registry) text(path, name string) (string, bool) {
	v, ok := r.value(path, name)
	if !ok || (v.typ != regSZ && v.typ != regExpandSZ) {
		return "", false
	}
	return v.str, true
}

func (r *registry) value(path, name string) (regValue, bool) {
	c, ok := canonKey(path)
	if !ok {
		return regValue{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[strings.ToLower(c)]
	if !ok {
		return regValue{}, false
	}
	v, ok := k.values[strings.ToLower(name)]
	if !ok {
		return regValue{}, false
	}
	return *v, true
}

// deleteTree removes a key and every key under it.
func (r *registry) deleteTree(path string) bool {
	c, ok := canonKey(path)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := strings.ToLower(c)
	if _, ok := r.keys[lc]; !ok {
		return false
	}
	for k := range r.keys {
		if k == lc || strings.HasPrefix(k, lc+`\`) {
			delete(r.keys, k)
		}
	}
	return true
}

// display is how reg query prints a value's data.
func (v *regValue) display() string {
	switch v.typ {
	case regDWORD, regQWORD:
		return "0x" + strconv.FormatUint(v.num, 16)
	case regBinary, regNone:
		return strings.ToUpper(hex.EncodeToString(v.bin))
	case regMultiSZ:
		return strings.Join(v.multi, `\0`)
	}
	return v.str
}

// regExe models reg.exe add, query and delete.
func (g *Machine) regExe(_ context.Context, _ *boot, p *cmdexe.Process) int {
	if len(p.Args) == 0 {
		fmt.Fprint(p.Stderr, "ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n")
		return 1
	}
	op := strings.ToUpper(p.Args[0])
	args := p.Args[1:]
	switch op {
	case "ADD":
		return g.regAdd(p, args)
	case "QUERY":
		return g.regQuery(p, args)
	case "DELETE":
		return g.regDelete(p, args)
	}
	fmt.Fprintf(p.Stderr, "ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n")
	return 1
}

type regArgs struct {
	key     string
	name    string
	hasName bool // /v or /ve
	all     bool // /va
	typ     string
	data    string
	hasData bool
	sep     string
	force   bool
	recurse bool
}

func parseRegArgs(op string, args []string) (regArgs, string) {
	usage := fmt.Sprintf("ERROR: Invalid syntax.\r\nType \"REG %s /?\" for usage.\r\n", op)
	var a regArgs
	if len(args) == 0 || strings.HasPrefix(args[0], "/") {
		return a, usage
	}
	a.key = args[0]
	for i := 1; i < len(args); i++ {
		next := func() (string, bool) {
			if i+1 >= len(args) {
				return "", false
			}
			i++
			return args[i], true
		}
		var ok = true
		switch strings.ToLower(args[i]) {
		case "/v":
			a.name, ok = next()
			a.hasName = true
		case "/ve":
			a.name, a.hasName = "", true
		case "/va":
			a.all = true
		case "/t":
			a.typ, ok = next()
			a.typ = strings.ToUpper(a.typ)
		case "/d":
			a.data, ok = next()
			a.hasData = true
		case "/s":
			if op == "ADD" {
				a.sep, ok = next()
			} else {
				a.recurse = true
			}
		case "/f":
			a.force = true
		case "/reg:32", "/reg:64":
		default:
			return a, usage
		}
		if !ok {
			return a, usage
		}
	}
	return a, ""
}

func (g *Machine) regAdd(p *cmdexe.Process, args []string) int {
	a, bad := parseRegArgs("ADD", args)
	if bad != "" {
		fmt.Fprint(p.Stderr, bad)
		return 1
	}
	key, ok := canonKey(a.key)
	if !ok || !strings.Contains(key, `\`) {
		fmt.Fprint(p.Stderr, "ERROR: Invalid key name.\r\nType \"REG ADD /?\" for usage.\r\n")
		return 1
	}
	if g.regDenied(p, key) {
		return 1
	}
	if a.typ == "" {
		a.typ = regSZ
	}
	v := &regValue{name: a.name, typ: a.typ}
	switch a.typ {
	case regSZ, regExpandSZ:
		v.str = a.data
	case regMultiSZ:
		sep := `\0`
		if a.sep != "" {
			sep = a.sep
		}
		if a.data != "" {
			v.multi = strings.Split(a.data, sep)
		}
	case regDWORD, regQWORD:
		bits := 32
		if a.typ == regQWORD {
			bits = 64
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(a.data), "0x"), base(a.data), bits)
		if a.hasData && err != nil {
			fmt.Fprint(p.Stderr, "ERROR: Invalid syntax. Specify valid numeric value for '/d'.\r\nType \"REG ADD /?\" for usage.\r\n")
			return 1
		}
		v.num = n
	case regBinary, regNone:
		b, err := hex.DecodeString(a.data)
		if err != nil {
			fmt.Fprint(p.Stderr, "ERROR: Invalid syntax. Specify valid hexadecimal value for '/d'.\r\nType \"REG ADD /?\" for usage.\r\n")
			return 1
		}
		v.bin = b
	default:
		fmt.Fprint(p.Stderr, "ERROR: Invalid syntax.\r\nType \"REG ADD /?\" for usage.\r\n")
		return 1
	}
	g.reg.mu.Lock()
	k := g.reg.ensureLocked(key)
	_, exists := k.values[strings.ToLower(a.name)]
	g.reg.mu.Unlock()
	if exists && a.hasName && !a.force {
		name := a.name
		if name == "" {
			name = "(Default)"
		}
		fmt.Fprintf(p.Stdout, "Value %s exists, overwrite(Yes/No)? ", name)
		if !confirm(p) {
			fmt.Fprint(p.Stdout, "The operation was canceled by the user.\r\n")
			return 0
		}
	}
	if a.hasName {
		g.reg.mu.Lock()
		g.reg.ensureLocked(key).put(v)
		g.reg.mu.Unlock()
	}
	fmt.Fprint(p.Stdout, "The operation completed successfully.\r\n\r\n")
	return 0
}

// regDenied: without an elevated token, HKEY_LOCAL_MACHINE cannot be written.
func (g *Machine) regDenied(p *cmdexe.Process, key string) bool {
	if g.elevated() || !strings.HasPrefix(strings.ToUpper(key), "HKEY_LOCAL_MACHINE") {
		return false
	}
	fmt.Fprint(p.Stderr, "ERROR: Access is denied.\r\n")
	return true
}

func base(s string) int {
	if strings.HasPrefix(strings.ToLower(s), "0x") {
		return 16
	}
	return 10
}

// confirm reads a Yes/No answer from stdin; end of input is No.
func confirm(p *cmdexe.Process) bool {
	line, _ := bufio.NewReader(p.Stdin).ReadString('\n')
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y")
}

func (g *Machine) regQuery(p *cmdexe.Process, args []string) int {
	a, bad := parseRegArgs("QUERY", args)
	if bad != "" {
		fmt.Fprint(p.Stderr, bad)
		return 1
	}
	key, ok := canonKey(a.key)
	if !ok {
		fmt.Fprint(p.Stderr, "ERROR: Invalid key name.\r\nType \"REG QUERY /?\" for usage.\r\n")
		return 1
	}
	g.reg.mu.Lock()
	defer g.reg.mu.Unlock()
	k, ok := g.reg.keys[strings.ToLower(key)]
	notFound := func() int {
		fmt.Fprint(p.Stderr, "ERROR: The system was unable to find the specified registry key or value.\r\n")
		return 1
	}
	if !ok {
		return notFound()
	}
	if a.hasName {
		v, ok := k.values[strings.ToLower(a.name)]
		if !ok {
			return notFound()
		}
		fmt.Fprintf(p.Stdout, "\r\n%s\r\n", k.path)
		fmt.Fprintf(p.Stdout, "    %s    %s    %s\r\n\r\n", valueName(v.name), v.typ, v.display())
		return 0
	}
	fmt.Fprintf(p.Stdout, "\r\n%s\r\n", k.path)
	for _, n := range k.order {
		v := k.values[n]
		fmt.Fprintf(p.Stdout, "    %s    %s    %s\r\n", valueName(v.name), v.typ, v.display())
	}
	fmt.Fprint(p.Stdout, "\r\n")
	var subs []string
	prefix := strings.ToLower(k.path) + `\`
	for lk, sk := range g.reg.keys {
		if strings.HasPrefix(lk, prefix) && !strings.Contains(lk[len(prefix):], `\`) {
			subs = append(subs, sk.path)
		}
	}
	sort.Slice(subs, func(i, j int) bool { return strings.ToLower(subs[i]) < strings.ToLower(subs[j]) })
	for _, s := range subs {
		fmt.Fprintf(p.Stdout, "%s\r\n", s)
	}
	return 0
}

func valueName(n string) string {
	if n == "" {
		return "(Default)"
	}
	return n
}

func (g *Machine) regDelete(p *cmdexe.Process, args []string) int {
	a, bad := parseRegArgs("DELETE", args)
	if bad != "" {
		fmt.Fprint(p.Stderr, bad)
		return 1
	}
	key, ok := canonKey(a.key)
	if !ok || !strings.Contains(key, `\`) {
		fmt.Fprint(p.Stderr, "ERROR: Invalid key name.\r\nType \"REG DELETE /?\" for usage.\r\n")
		return 1
	}
	if g.regDenied(p, key) {
		return 1
	}
	if !a.force {
		switch {
		case a.hasName:
			fmt.Fprintf(p.Stdout, "Delete the registry value %s (Yes/No)? ", valueName(a.name))
		case a.all:
			fmt.Fprintf(p.Stdout, "Delete all values under the registry key %s (Yes/No)? ", a.key)
		default:
			fmt.Fprintf(p.Stdout, "Permanently delete the registry key %s (Yes/No)? ", a.key)
		}
		if !confirm(p) {
			fmt.Fprint(p.Stdout, "The operation was canceled by the user.\r\n")
			return 0
		}
	}
	notFound := func() int {
		fmt.Fprint(p.Stderr, "ERROR: The system was unable to find the specified registry key or value.\r\n")
		return 1
	}
	if !a.hasName && !a.all {
		if !g.reg.deleteTree(key) {
			return notFound()
		}
		fmt.Fprint(p.Stdout, "The operation completed successfully.\r\n")
		return 0
	}
	g.reg.mu.Lock()
	k, ok := g.reg.keys[strings.ToLower(key)]
	if ok && a.all {
		k.values, k.order = map[string]*regValue{}, nil
	} else if ok {
		ln := strings.ToLower(a.name)
		if _, has := k.values[ln]; !has {
			ok = false
		} else {
			delete(k.values, ln)
			for i, n := range k.order {
				if n == ln {
					k.order = append(k.order[:i], k.order[i+1:]...)
					break
				}
			}
		}
	}
	g.reg.mu.Unlock()
	if !ok {
		return notFound()
	}
	fmt.Fprint(p.Stdout, "The operation completed successfully.\r\n")
	return 0
}
