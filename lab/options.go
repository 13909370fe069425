package lab

import (
	"fmt"
	"time"
)

// Options for one guest session. Zero values mean the defaults in brackets.
type Options struct {
	OperationTimeout time.Duration                    // WS-Man OperationTimeout [60s]; HTTP timeout is this + 30s
	CommandTimeout   time.Duration                    // one ordinary command [2m]
	RebootTimeout    time.Duration                    // one whole reboot [5m]
	RebootPoll       time.Duration                    // between probes while rebooting [2s]
	Logf             func(format string, args ...any) // progress log; never receives secrets [discard]
	// Logf may be called from several goroutines at once (a sampler runs beside commands).
}

// Defaults, as documented on Options.
const (
	DefaultOperationTimeout = 60 * time.Second
	DefaultCommandTimeout   = 2 * time.Minute
	DefaultRebootTimeout    = 5 * time.Minute
	DefaultRebootPoll       = 2 * time.Second
)

// httpSlack is how much longer than OperationTimeout the HTTP client waits for an answer,
// so that the server's TimedOut fault (which the library retries) arrives first.
const httpSlack = 30 * time.Second

func (o Options) withDefaults() Options {
	if o.OperationTimeout <= 0 {
		o.OperationTimeout = DefaultOperationTimeout
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.RebootTimeout <= 0 {
		o.RebootTimeout = DefaultRebootTimeout
	}
	if o.RebootPoll <= 0 {
		o.RebootPoll = DefaultRebootPoll
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// wsmanDuration writes d as the xs:duration WS-Man expects, in whole seconds (at least 1):
// what Windows and the library's own default ("PT60S") use.
func wsmanDuration(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("PT%dS", secs)
}
