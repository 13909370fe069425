package agentfmt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wfplab/wfplab/lab/contract"
)

// MaxLineLen is the longest line FORMAT.md allows, without its line ending.
const MaxLineLen = 8192

// Counters is a C1 line: the driver's state and per-layer counters (`counters`, `reset`,
// `mode`).
type Counters struct {
	Driver contract.Driver
	// Mode is the driver's mode after `mode block|permit`: ModeBlock or ModePermit; "" from
	// `counters` and `reset`.
	Mode string
}

// The driver's modes (`mode`): block is the bug's case, permit counts without blocking.
const (
	ModeBlock  = "block"
	ModePermit = "permit"
)

// ErrNotAgentLine marks a line that is not a record at all (no `XN` kind first).
var ErrNotAgentLine = errors.New("not an agent record")

// field is one key=value of a line.
type field struct{ key, value string }

// record is a line split into its kind and fields, keys checked for duplicates.
type record struct {
	kind   string
	fields []field
}

// splitLine checks the framing rules every line follows and returns its kind and the
// rest. A blank line gives kind "". Fields are split only for kinds this parser knows
// (splitFields): a later version may frame its fields differently.
func splitLine(line string) (kind, rest string, err error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if len(line) > MaxLineLen {
		return "", "", fmt.Errorf("line of %d bytes is longer than the format's %d", len(line), MaxLineLen)
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' || c > '~' {
			return "", "", fmt.Errorf("byte 0x%02X at offset %d: lines are printable ASCII", c, i)
		}
	}
	if line == "" {
		return "", "", nil
	}
	kind, rest, _ = strings.Cut(line, " ")
	if !isKind(kind) {
		return "", "", fmt.Errorf("%w: first field %q is not a record kind like S1", ErrNotAgentLine, clip(kind))
	}
	return kind, rest, nil
}

// splitFields splits the key=value fields after the kind; a key may appear once.
func splitFields(kind, rest string) (record, error) {
	rec := record{kind: kind}
	if rest == "" {
		return rec, nil
	}
	parts := strings.Split(rest, " ")
	rec.fields = make([]field, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		if p == "" {
			return record{}, fmt.Errorf("%s: empty field %d (fields are separated by single spaces)", kind, i+1)
		}
		eq := strings.IndexByte(p, '=')
		if eq <= 0 {
			return record{}, fmt.Errorf("%s: field %q is not key=value", kind, clip(p))
		}
		k := p[:eq]
		if seen[k] {
			return record{}, fmt.Errorf("%s: key %q appears twice", kind, clip(k))
		}
		seen[k] = true
		rec.fields = append(rec.fields, field{key: k, value: p[eq+1:]})
	}
	return rec, nil
}

// readRecord frames a line and, when its kind is one this parser knows, splits its fields.
// Blank lines and unknown kinds come back with ok false and no error.
func readRecord(line string) (rec record, ok bool, err error) {
	kind, rest, err := splitLine(line)
	if err != nil || kind == "" {
		return record{kind: kind}, false, err
	}
	switch kind {
	case "H1", "S1", "V1", "C1", "E1":
	default:
		return record{kind: kind}, false, nil
	}
	rec, err = splitFields(kind, rest)
	return rec, err == nil, err
}

// isKind matches upper-case letters then digits: S1, V1, X12.
func isKind(s string) bool {
	i := 0
	for i < len(s) && s[i] >= 'A' && s[i] <= 'Z' {
		i++
	}
	if i == 0 || i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip keeps error texts short when a line is long garbage.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ParseLine parses one line of any kind: *contract.Header, *contract.Sample, *contract.Inventory, *Counters or
// *AgentError; nil and no error for a blank line or a record kind this parser does not know.
func ParseLine(line string) (any, error) {
	rec, ok, err := readRecord(line)
	if err != nil || !ok {
		return nil, err
	}
	switch rec.kind {
	case "H1":
		return pointer(parseHeader(rec))
	case "S1":
		return pointer(parseSample(rec))
	case "V1":
		return pointer(parseInventory(rec))
	case "C1":
		return pointer(parseCounters(rec))
	case "E1":
		return pointer(parseAgentError(rec))
	}
	return nil, nil
}

// pointer gives ParseLine's callers one pointer type per kind to switch on.
func pointer[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// ParseSample parses a line that must be an S1 record.
func ParseSample(line string) (contract.Sample, error) { return parseAs(line, "S1", parseSample) }

// ParseInventory parses a line that must be a V1 record.
func ParseInventory(line string) (contract.Inventory, error) {
	return parseAs(line, "V1", parseInventory)
}

// ParseHeader parses a line that must be an H1 record.
func ParseHeader(line string) (contract.Header, error) { return parseAs(line, "H1", parseHeader) }

// ParseCounters parses a line that must be a C1 record.
func ParseCounters(line string) (Counters, error) { return parseAs(line, "C1", parseCounters) }

// parseAs frames line, insists on one kind and parses its fields: the rule every typed
// parser shares, so a blank line or another kind is refused the same way by each.
func parseAs[T any](line, kind string, parse func(record) (T, error)) (T, error) {
	var zero T
	rec, _, err := readRecord(line)
	if err != nil {
		return zero, err
	}
	if rec.kind != kind {
		return zero, fmt.Errorf("expected %s, got %s", describeKind(kind), describeKind(rec.kind))
	}
	return parse(rec)
}

func describeKind(kind string) string {
	if kind == "" {
		return "a blank line"
	}
	if strings.ContainsRune("AEFHILMNORSX", rune(kind[0])) {
		return "an " + kind + " line" // said "an ess one", "an aitch one"
	}
	return "a " + kind + " line"
}

// keyed parses the fields of one record: known keys go to their setter, unknown ones are
// skipped, and required keys must all be present.
type keyed struct {
	kind     string
	setters  map[string]func(string) error
	required []string
	// prefixed handles keys like L.stream or T.Nnbl; it reports whether it knew the key.
	prefixed func(key, value string) (bool, error)
}

func (k keyed) apply(rec record) error {
	present := make(map[string]bool, len(rec.fields))
	for _, f := range rec.fields {
		if set, ok := k.setters[f.key]; ok {
			if err := set(f.value); err != nil {
				return fmt.Errorf("%s: %s=%s: %w", k.kind, f.key, clip(f.value), err)
			}
			present[f.key] = true
			continue
		}
		if k.prefixed != nil {
			if _, err := k.prefixed(f.key, f.value); err != nil {
				return fmt.Errorf("%s: %s=%s: %w", k.kind, clip(f.key), clip(f.value), err)
			}
		}
	}
	var missing []string
	for _, r := range k.required {
		if !present[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: missing key(s) %s", k.kind, strings.Join(missing, ", "))
	}
	return nil
}

func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not an unsigned decimal number", clip(s))
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q does not fit in 64 bits", clip(s))
	}
	return n, nil
}

func setUint(dst *uint64) func(string) error {
	return func(v string) error {
		n, err := parseUint(v)
		if err != nil {
			return err
		}
		*dst = n
		return nil
	}
}

func setText(dst *string) func(string) error {
	return func(v string) error {
		s, err := Unescape(v)
		if err != nil {
			return err
		}
		*dst = s
		return nil
	}
}

func setOneOf(dst *string, allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				*dst = v
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", clip(v), strings.Join(allowed, ", "))
	}
}

// numberList parses n comma-separated unsigned numbers.
func numberList(v string, n int) ([]uint64, error) {
	parts := strings.Split(v, ",")
	if len(parts) != n {
		return nil, fmt.Errorf("want %d comma-separated numbers, got %d", n, len(parts))
	}
	out := make([]uint64, n)
	for i, p := range parts {
		x, err := parseUint(p)
		if err != nil {
			return nil, fmt.Errorf("number %d: %w", i+1, err)
		}
		out[i] = x
	}
	return out, nil
}

func parseDriverState(v string) (string, error) {
	switch v {
	case "running", "absent":
		return v, nil
	}
	if code, ok := strings.CutPrefix(v, "error:"); ok {
		if _, err := parseUint(code); err != nil {
			return "", fmt.Errorf("driver error code: %w", err)
		}
		return v, nil
	}
	return "", fmt.Errorf("%q is not running, absent or error:N", clip(v))
}

func knownLayer(name string) (contract.Layer, bool) {
	for _, l := range contract.Layers {
		if string(l) == name {
			return l, true
		}
	}
	return "", false
}

// driverFields parses drv, L.<layer> and L.<layer>.multi_blocked (shared by S1 and C1).
type driverFields struct {
	drv          contract.Driver
	layers       map[contract.Layer]contract.LayerCounters
	multiBlocked map[contract.Layer]uint64
}

func (d *driverFields) setState(v string) error {
	s, err := parseDriverState(v)
	if err != nil {
		return err
	}
	d.drv.State = s
	return nil
}

func (d *driverFields) layer(key, value string) (bool, error) {
	name, ok := strings.CutPrefix(key, "L.")
	if !ok {
		return false, nil
	}
	if layerName, ok := strings.CutSuffix(name, ".multi_blocked"); ok {
		l, ok := knownLayer(layerName)
		if !ok {
			return false, nil
		}
		n, err := parseUint(value)
		if err != nil {
			return true, err
		}
		if d.multiBlocked == nil {
			d.multiBlocked = make(map[contract.Layer]uint64, len(contract.Layers))
		}
		d.multiBlocked[l] = n
		return true, nil
	}
	l, ok := knownLayer(name)
	if !ok {
		return false, nil // a layer a newer driver counts
	}
	nums, err := numberList(value, 10)
	if err != nil {
		return true, err
	}
	lc := contract.LayerCounters{Classify: nums[0], Blocked: nums[1], NBLs: nums[2], MultiChain: nums[3]}
	copy(lc.Hist[:], nums[4:])
	if d.layers == nil {
		d.layers = make(map[contract.Layer]contract.LayerCounters, len(contract.Layers))
	}
	d.layers[l] = lc
	return true, nil
}

func (d *driverFields) finish(kind string) (contract.Driver, error) {
	if d.drv.State != "running" {
		if len(d.layers) > 0 || len(d.multiBlocked) > 0 {
			return contract.Driver{}, fmt.Errorf("%s: L.* counters with drv=%s (they come only with drv=running)", kind, d.drv.State)
		}
		return d.drv, nil
	}
	for l, n := range d.multiBlocked {
		lc, ok := d.layers[l]
		if !ok {
			return contract.Driver{}, fmt.Errorf("%s: L.%s.multi_blocked without L.%s", kind, l, l)
		}
		lc.MultiBlocked, lc.HasMultiBlocked = n, true
		d.layers[l] = lc
	}
	d.drv.Layers = d.layers
	if d.drv.Layers == nil {
		d.drv.Layers = map[contract.Layer]contract.LayerCounters{}
	}
	return d.drv, nil
}

func parseHeader(rec record) (contract.Header, error) {
	var h contract.Header
	k := keyed{
		kind: "H1",
		setters: map[string]func(string) error{
			"agent": func(v string) error {
				if v != "wfplab-agent" {
					return fmt.Errorf("agent is %q, want wfplab-agent", clip(v))
				}
				h.Agent = v
				return nil
			},
			"ver":         setText(&h.Version),
			"interval_ms": setUint(&h.IntervalMS),
			"arch":        setOneOf(&h.Arch, "x86", "x64"),
			"pid":         setUint(&h.PID),
		},
		required: []string{"agent", "ver", "interval_ms", "arch", "pid"},
	}
	if err := k.apply(rec); err != nil {
		return contract.Header{}, err
	}
	return h, nil
}

func parseSample(rec record) (contract.Sample, error) {
	s := contract.Sample{ChangedTags: map[string]contract.TagUsage{}}
	var d driverFields
	k := keyed{
		kind: "S1",
		setters: map[string]func(string) error{
			"seq":           setUint(&s.Seq),
			"t_us":          setUint(&s.TimeUS),
			"np_bytes":      setUint(&s.NPBytes),
			"np_allocs":     setUint(&s.NPAllocs),
			"np_frees":      setUint(&s.NPFrees),
			"cpu_kernel_ms": setUint(&s.CPUKernelMS),
			"cpu_user_ms":   setUint(&s.CPUUserMS),
			"cpu_idle_ms":   setUint(&s.CPUIdleMS),
			"tags_deferred": setUint(&s.TagsDeferred),
			"drv":           d.setState,
		},
		required: []string{"seq", "t_us", "np_bytes", "np_allocs", "np_frees",
			"cpu_kernel_ms", "cpu_user_ms", "cpu_idle_ms", "drv"},
		prefixed: func(key, value string) (bool, error) {
			if ok, err := d.layer(key, value); ok || err != nil {
				return ok, err
			}
			escTag, ok := strings.CutPrefix(key, "T.")
			if !ok {
				return false, nil
			}
			tag, err := Unescape(escTag)
			if err != nil {
				return true, fmt.Errorf("tag: %w", err)
			}
			if len(tag) != 4 {
				return true, fmt.Errorf("tag %q is %d bytes, pool tags are 4", tag, len(tag))
			}
			if _, dup := s.ChangedTags[tag]; dup {
				return true, fmt.Errorf("tag %q appears twice", tag)
			}
			nums, err := numberList(value, 3)
			if err != nil {
				return true, err
			}
			s.ChangedTags[tag] = contract.TagUsage{Allocs: nums[0], Frees: nums[1], Bytes: nums[2]}
			return true, nil
		},
	}
	if err := k.apply(rec); err != nil {
		return contract.Sample{}, err
	}
	drv, err := d.finish("S1")
	if err != nil {
		return contract.Sample{}, err
	}
	s.Driver = drv
	return s, nil
}

func parseCounters(rec record) (Counters, error) {
	var d driverFields
	var mode string
	k := keyed{
		kind: "C1",
		setters: map[string]func(string) error{"drv": d.setState, "mode": func(v string) error {
			if v != ModeBlock && v != ModePermit {
				return fmt.Errorf("%q is not %s or %s", clip(v), ModeBlock, ModePermit)
			}
			mode = v
			return nil
		}},
		required: []string{"drv"},
		prefixed: d.layer,
	}
	if err := k.apply(rec); err != nil {
		return Counters{}, err
	}
	drv, err := d.finish("C1")
	if err != nil {
		return Counters{}, err
	}
	if mode != "" && drv.State != "running" {
		return Counters{}, fmt.Errorf("C1: mode=%s with drv=%s: a mode is only reported by a running driver", mode, drv.State)
	}
	return Counters{Driver: drv, Mode: mode}, nil
}

// dotted checks n dot-separated unsigned numbers, like 6.1 or 6.1.7600.16385.
func dotted(n int) func(v string) error {
	return func(v string) error {
		parts := strings.Split(v, ".")
		if len(parts) != n {
			return fmt.Errorf("%q is not %d dot-separated numbers", clip(v), n)
		}
		for _, p := range parts {
			if _, err := parseUint(p); err != nil {
				return fmt.Errorf("%q is not %d dot-separated numbers", clip(v), n)
			}
		}
		return nil
	}
}

func setDotted(dst *string, n int, orMissing bool) func(string) error {
	check := dotted(n)
	return func(v string) error {
		if orMissing && v == "missing" {
			*dst = v
			return nil
		}
		if err := check(v); err != nil {
			if orMissing {
				return fmt.Errorf("%w (or missing)", err)
			}
			return err
		}
		*dst = v
		return nil
	}
}

func parseInventory(rec record) (contract.Inventory, error) {
	var inv contract.Inventory
	k := keyed{
		kind: "V1",
		setters: map[string]func(string) error{
			"os_build":   setDotted(&inv.OSBuild, 2, false),
			"os_version": setDotted(&inv.OSVersion, 2, false),
			"sp":         setUint(&inv.SP),
			"arch":       setOneOf(&inv.Arch, "x86", "x64"),
			"netio":      setDotted(&inv.Netio, 4, true),
			"tcpip":      setDotted(&inv.Tcpip, 4, true),
			"fwpkclnt":   setDotted(&inv.Fwpkclnt, 4, true),
			"testsigning": func(v string) error {
				switch v {
				case "on":
					inv.TestSigning = true
				case "off":
					inv.TestSigning = false
				default:
					return fmt.Errorf("%q is not on or off", clip(v))
				}
				return nil
			},
			"drv_service": setOneOf(&inv.DrvService, "running", "stopped", "start_pending", "stop_pending", "absent"),
			"boot_us":     setUint(&inv.BootUS),
		},
		required: []string{"os_build", "os_version", "sp", "arch", "netio", "tcpip", "fwpkclnt",
			"testsigning", "drv_service", "boot_us"},
	}
	if err := k.apply(rec); err != nil {
		return contract.Inventory{}, err
	}
	return inv, nil
}

func parseAgentError(rec record) (AgentError, error) {
	var e AgentError
	k := keyed{
		kind: "E1",
		setters: map[string]func(string) error{
			"where": setText(&e.Where),
			"code":  setUint(&e.Code),
			"msg":   setText(&e.Msg),
		},
		required: []string{"where"},
	}
	if err := k.apply(rec); err != nil {
		return AgentError{}, err
	}
	return e, nil
}

// AgentError is an E1 line.
type AgentError struct {
	Where string
	Code  uint64
	Msg   string
}

// Error lets an E1 record travel as an error.
func (e *AgentError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("agent error in %s (code %d)", e.Where, e.Code)
	}
	return fmt.Sprintf("agent error in %s (code %d): %s", e.Where, e.Code, e.Msg)
}
