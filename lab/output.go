package lab

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Readers of what Windows' stock tools print (COMMANDS.md shows the texts).

var verRE = regexp.MustCompile(`\[Version (\d+)\.(\d+)\.(\d+)(?:\.\d+)?\]`)

// parseVer reads `ver`: "Microsoft Windows [Version 6.1.7600]" gives "6.1", "7600".
func parseVer(out string) (version, build string, err error) {
	m := verRE.FindStringSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("no [Version a.b.c] in the output of ver: %q", clipText(out))
	}
	return m[1] + "." + m[2], m[3], nil
}

// parseArch reads %PROCESSOR_ARCHITECTURE% as the lab names architectures.
func parseArch(out string) (string, error) {
	v := strings.TrimSpace(out)
	switch strings.ToUpper(v) {
	case "AMD64":
		return "x64", nil
	case "X86":
		return "x86", nil
	case "IA64":
		return "", fmt.Errorf("the guest is Itanium (IA64): KB979223 lists it, but the lab's driver cannot be built for it (no mingw target); use an x86 or x64 guest")
	}
	return "", fmt.Errorf("unexpected processor architecture %q (want AMD64 or x86)", clipText(v))
}

var bootTimeRE = regexp.MustCompile(`LastBootUpTime=(\S+)`)

// parseBootTime reads `wmic os get LastBootUpTime /value`.
func parseBootTime(out string) (string, error) {
	m := bootTimeRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no LastBootUpTime=... in the output of wmic: %q", clipText(out))
	}
	return m[1], nil
}

// parseHashFile reads `certutil -hashfile`: the SHA-1 as 40 hex digits, with or without
// spaces between byte pairs, in any case. Returns lower-case hex without spaces.
func parseHashFile(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
		if len(h) != 40 {
			continue
		}
		if _, err := hex.DecodeString(h); err == nil {
			return h, nil
		}
	}
	return "", fmt.Errorf("no SHA-1 hash in the output of certutil -hashfile: %q", clipText(out))
}

var scStateRE = regexp.MustCompile(`STATE\s*:\s*(\d+)\s+([A-Z_]+)`)

// Service states sc prints.
const (
	scStopped = 1
	scRunning = 4
)

// parseSCState reads the STATE line of `sc query`/`sc start`/`sc stop`:
// "STATE              : 4  RUNNING" gives 4, "RUNNING".
func parseSCState(out string) (int, string, error) {
	m := scStateRE.FindStringSubmatch(out)
	if m == nil {
		return 0, "", fmt.Errorf("no STATE line in the output of sc: %q", clipText(out))
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, "", fmt.Errorf("STATE %q is not a number", m[1])
	}
	return n, m[2], nil
}

var scFailedRE = regexp.MustCompile(`FAILED (\d+):\s*(.*)`)

// scFailure reads "[SC] StartService FAILED 577:\r\n\r\nWindows cannot verify ..." as 577
// and the message line; ok is false when the output holds no FAILED line.
func scFailure(out string) (code int, msg string, ok bool) {
	i := strings.Index(out, "FAILED ")
	if i < 0 {
		return 0, "", false
	}
	m := scFailedRE.FindStringSubmatch(out[i:])
	if m == nil {
		return 0, "", false
	}
	code, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, "", false
	}
	msg = strings.TrimSpace(m[2])
	if msg == "" {
		// The message is on a later line, after a blank one.
		for _, line := range strings.Split(out[i:], "\n")[1:] {
			if t := strings.TrimSpace(line); t != "" {
				msg = t
				break
			}
		}
	}
	return code, msg, true
}

func clipText(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
