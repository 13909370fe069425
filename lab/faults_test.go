package lab_test

// Faults injected into a simulated guest (contract.Faults), seen through masterzen/winrm
// over HTTP: what the lab's transport survives on its own, and how it fails when it cannot.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

// startFaulty is startSim with faults and the guest's own log kept.
func startFaulty(t *testing.T, osName string, f contract.Faults) (*simLab, *logRecorder) {
	t.Helper()
	guestLog := &logRecorder{}
	s := startSim(t, osName, func(c *sim.Config) {
		c.Faults = f
		c.Logf = guestLog.logf
	})
	return s, guestLog
}

// sampleN streams n samples and checks that none is missing.
func sampleN(t *testing.T, g *lab.Session, n int) {
	t.Helper()
	ctx := context.Background()
	sm, err := g.StartSampler(ctx, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Stop(ctx)
	var seqs []uint64
	within(t, time.Minute, func() bool {
		for ev := range sm.Events() {
			if ev.Err != nil {
				t.Errorf("sample stream error: %v", ev.Err)
				return false
			}
			seqs = append(seqs, ev.Sample.Seq)
			if len(seqs) == n {
				break
			}
		}
		return true
	})
	for i, s := range seqs {
		if s != uint64(i) {
			t.Fatalf("sample %d has seq %d: a sample was lost (seqs %v)", i, s, seqs)
		}
	}
	if len(seqs) != n {
		t.Fatalf("%d samples, want %d", len(seqs), n)
	}
}

func TestFaultHTTP500IsRetried(t *testing.T) {
	t.Parallel()
	s, guestLog := startFaulty(t, "win7-x86", contract.Faults{HTTP500Every: 4})
	if _, err := s.guest.Prepare(context.Background(), toolsFor("x86", false)); err != nil {
		t.Fatalf("prepare with every 4th request failing: %v\nlog:\n%s", err, s.log.text())
	}
	sampleN(t, s.guest, 30)
	injected := strings.Count(guestLog.text(), "fault: HTTP 500")
	retried := strings.Count(s.log.text(), "http error 500")
	if injected < 5 || retried < injected {
		t.Fatalf("guest sent %d HTTP 500s, the lab logged %d retries of one", injected, retried)
	}
	if !strings.Contains(s.log.text(), s.target.Name+": WinRM ") {
		t.Fatalf("retry lines do not name the target:\n%s", s.log.text())
	}
}

func TestFaultHTTP500EveryRequestFailsNamingTargetAndReason(t *testing.T) {
	t.Parallel()
	s, _ := startFaulty(t, "win7-x86", contract.Faults{HTTP500Every: 1})
	err := within(t, time.Minute, func() error {
		_, err := s.guest.Run(context.Background(), "ver")
		return err
	})
	// The library alone would hand the fault body back as an answer; the lab says what it was.
	for _, want := range []string{s.target.Name + ": ", "http error 500", "w:InternalError", "internal error", "after 4 attempts"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not contain %q", err, want)
		}
	}
}

func TestFaultDroppedReceiveLosesNoOutput(t *testing.T) {
	t.Parallel()
	s, guestLog := startFaulty(t, "win7-x86", contract.Faults{DropReceiveEvery: 3})
	if _, err := s.guest.Prepare(context.Background(), toolsFor("x86", false)); err != nil {
		t.Fatalf("prepare with every 3rd Receive dropped: %v\nlog:\n%s", err, s.log.text())
	}
	sampleN(t, s.guest, 40)
	if n := strings.Count(guestLog.text(), "fault: dropping the connection"); n < 5 {
		t.Fatalf("only %d Receives dropped; the fault did not fire", n)
	}
}

func TestFaultSlowAnswersWithinAndPastTheDeadline(t *testing.T) {
	t.Parallel()
	s, _ := startFaulty(t, "win7-x86", contract.Faults{SlowEvery: 2, SlowBy: 300 * time.Millisecond})
	start := time.Now()
	res, err := s.guest.Run(context.Background(), "ver")
	if err != nil || !strings.Contains(res.Stdout, "Windows") {
		t.Fatalf("slow answers within the deadline: %+v, %v", res, err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("no request was slowed (took %v)", time.Since(start))
	}

	// Slower than the command timeout: the wait ends at the deadline, naming the target.
	slow, _ := startFaulty(t, "win7-x86", contract.Faults{SlowEvery: 1, SlowBy: 20 * time.Second})
	g := dial(t, slow.target, lab.Options{CommandTimeout: 500 * time.Millisecond})
	start = time.Now()
	err = within(t, 15*time.Second, func() error {
		_, err := g.Run(context.Background(), "ver")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), slow.target.Name+": ") || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("want a timeout naming the target, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timeout took %v for a 500 ms command timeout", d)
	}
}
