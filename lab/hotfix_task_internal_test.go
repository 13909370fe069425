package lab

import "testing"

func TestParseTaskQuery(t *testing.T) {
	for _, c := range []struct {
		out    string
		status string
		result int
		ok     bool
	}{
		{"\r\nFolder: \\\r\nTaskName:    \\wfplab-kb979223\r\nStatus:      Running\r\nLast Result: 267009\r\n", "Running", schedRunning, true},
		{"Status:                               Ready\r\nLast Result:                          3010\r\n", "Ready", 3010, true},
		{"Status: Ready\nLast Result: 0x80240017\n", "Ready", -2145124329, true},
		{"Status: Ready\nLast Result: -2147024891\n", "Ready", exitWusaAccessDenied, true},
		{"Status: Ready\n", "", 0, false},
		{"Status: Ready\nLast Result: soon\n", "", 0, false},
	} {
		s, r, err := parseTaskQuery(c.out)
		if (err == nil) != c.ok || s != c.status || r != c.result {
			t.Errorf("%q: %q %d %v", c.out, s, r, err)
		}
	}
}
