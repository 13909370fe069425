package vagrant

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Record is one line of Vagrant's --machine-readable output: timestamp,target,type,data...
type Record struct {
	Target string
	Type   string
	Data   []string
}

// ParseMachineReadable reads --machine-readable output. Lines that are not records (a
// plugin's stray output) are skipped; data fields are unescaped as Vagrant escapes them
// (commas as %!(VAGRANT_COMMA), newlines as \n, carriage returns as \r).
func ParseMachineReadable(out string) []Record {
	var recs []Record
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		fields := strings.Split(strings.TrimRight(sc.Text(), "\r"), ",")
		if len(fields) < 3 {
			continue
		}
		if _, err := strconv.ParseInt(fields[0], 10, 64); err != nil {
			continue
		}
		r := Record{Target: fields[1], Type: fields[2]}
		for _, d := range fields[3:] {
			r.Data = append(r.Data, unescape(d))
		}
		recs = append(recs, r)
	}
	return recs
}

func unescape(s string) string {
	s = strings.ReplaceAll(s, "%!(VAGRANT_COMMA)", ",")
	s = strings.ReplaceAll(s, `\n`, "\n")
	return strings.ReplaceAll(s, `\r`, "\r")
}

// Machine states Vagrant reports (the provider's state ids; these are VirtualBox's, and
// Hyper-V and libvirt use "running" and "not_created" too).
const (
	StateNotCreated = "not_created"
	StateRunning    = "running"
)

// ParseStatus reads `vagrant status --machine-readable`: each machine's state id and provider.
func ParseStatus(out string) map[string]MachineStatus {
	st := map[string]MachineStatus{}
	for _, r := range ParseMachineReadable(out) {
		if r.Target == "" || len(r.Data) == 0 {
			continue
		}
		m := st[r.Target]
		switch r.Type {
		case "state":
			m.State = r.Data[0]
		case "provider-name":
			m.Provider = r.Data[0]
		default:
			continue
		}
		st[r.Target] = m
	}
	return st
}

// MachineStatus is one machine's line of `vagrant status`.
type MachineStatus struct {
	State    string // e.g. running, poweroff, saved, not_created
	Provider string // e.g. virtualbox
}

// ParseSnapshots reads `vagrant snapshot list NAME --machine-readable`. Vagrant 2.2.3 prints
// each name as a ui output line; 2.2.7 and later print a "==> name:" output line and each
// name as a ui detail line; with none it says "No snapshots have been taken yet!" followed
// by a detail paragraph, and for a machine not created "VM not created".
func ParseSnapshots(out string) []string {
	recs := ParseMachineReadable(out)
	for _, r := range recs {
		if r.Type == "ui" && len(r.Data) > 1 &&
			(strings.Contains(r.Data[1], "No snapshots have been taken yet") || strings.Contains(r.Data[1], "VM not created")) {
			return nil
		}
	}
	var names []string
	for _, r := range recs {
		if r.Type != "ui" || len(r.Data) < 2 || (r.Data[0] != "output" && r.Data[0] != "detail") {
			continue
		}
		name := strings.TrimSpace(r.Data[1])
		if name == "" || strings.HasPrefix(name, "==>") {
			continue
		}
		names = append(names, name)
	}
	return names
}

// WinRMConfig is what `vagrant winrm-config NAME` prints for one machine.
type WinRMConfig struct {
	Host     string // the "Host" line: the machine's name
	HostName string
	User     string
	Password string
	Port     int
}

// String keeps the password out of anything that formats a config.
func (c WinRMConfig) String() string {
	return fmt.Sprintf("%s %s:%d user %s", c.Host, c.HostName, c.Port, c.User)
}

// ParseWinRMConfig reads `vagrant winrm-config` output: a "Host NAME" line, then indented
// "Key value" lines (HostName, User, Password, Port, RDP...). Unknown keys are skipped.
func ParseWinRMConfig(out string) ([]WinRMConfig, error) {
	var cfgs []WinRMConfig
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		val = strings.TrimSpace(val)
		if key == "Host" {
			cfgs = append(cfgs, WinRMConfig{Host: val})
			continue
		}
		if len(cfgs) == 0 || key == "" {
			continue
		}
		c := &cfgs[len(cfgs)-1]
		switch key {
		case "HostName":
			c.HostName = val
		case "User":
			c.User = val
		case "Password":
			c.Password = val
		case "Port":
			p, err := strconv.Atoi(val)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("winrm-config of %s: Port %q is not a port number", c.Host, val)
			}
			c.Port = p
		}
	}
	for _, c := range cfgs {
		if c.HostName == "" || c.Port == 0 || c.User == "" {
			return nil, fmt.Errorf("winrm-config of %s: HostName, Port and User are needed, got %s", c.Host, c)
		}
	}
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("winrm-config printed no Host section")
	}
	return cfgs, nil
}

// secretLine matches winrm-config's password lines, to keep them out of errors and logs.
var secretLine = regexp.MustCompile(`(?m)^(\s*(?:RDP)?Password)\s+\S.*$`)

// redact removes passwords from CLI output before it goes into an error.
func redact(out string) string { return secretLine.ReplaceAllString(out, "$1 <redacted>") }
