package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/scenarios"
	"github.com/wfplab/wfplab/traffic"
)

// Sampler is a guest's running sampler; *lab.Sampler is one.
type Sampler interface {
	// Events delivers samples as they arrive and is closed when the sampler ends.
	Events() <-chan contract.SampleEvent
	// Stop ends the sampler; Events is closed soon after.
	Stop(ctx context.Context) error
}

// Guest is what bench needs from a guest the lab has brought up. Real and simulated
// guests look the same here.
type Guest interface {
	Name() string
	// Prepare makes the guest ready to measure (tools, test signing, driver) and returns its inventory.
	Prepare(ctx context.Context) (contract.Inventory, error)
	// InstallHotfix installs KB979223, reboots, restarts the driver, and returns the inventory after.
	InstallHotfix(ctx context.Context) (contract.Inventory, error)
	// StartSampler starts the streaming sampler at the given interval. ctx bounds the
	// sampler's whole life (as lab.Session.StartSampler's does), not only the start.
	StartSampler(ctx context.Context, interval time.Duration) (Sampler, error)
}

// TrafficFunc drives one traffic run; traffic.Run is the real one.
type TrafficFunc func(ctx context.Context, spec traffic.Spec, to traffic.Addrs, allow traffic.Allow,
	onTick func(traffic.Tick)) (traffic.Counters, error)

// Pinger is a Guest that can say, cheaply, whether it still answers at all. The runner asks
// when the sample stream goes quiet: a guest that answers has a sampler problem; one that
// does not is hung.
type Pinger interface {
	Ping(ctx context.Context) error
}

// RunTarget is one guest to measure.
type RunTarget struct {
	// Info is recorded as the target; Name must be the scenario's target name (Guest.Name()
	// when empty). An empty Arch is filled in from the guest's inventory.
	Info    TargetInfo
	Guest   Guest
	Traffic traffic.Addrs
	// Recover, when set, resets a hung guest through its hypervisor and returns what the
	// guest showed; nil when the provider cannot (static hosts).
	Recover func(ctx context.Context) (contract.Evidence, error)
}

// Progress is one update for the live display.
type Progress struct {
	Target string
	Phase  string // "" before the first phase
	// Step is "prepare", "hotfix", "warmup", a profile name, "done" or "failed".
	Step    string
	Elapsed time.Duration // time in the step
	Length  time.Duration // the step's planned length; 0 when it has none
	Err     error         // set with Step "failed"
}

// Steps other than windows.
const (
	StepPrepare = "prepare"
	StepHotfix  = "hotfix"
	StepDone    = "done"
	StepFailed  = "failed"
	StepHung    = "hung"
)

// Event kinds the runner records.
const (
	EventPrepare = "prepare"
	EventHotfix  = "hotfix"
	EventSampler = "sampler"
	EventTraffic = "traffic"
	EventError   = "error"
	// EventResume: a resumed run skipped what the killed one had measured.
	EventResume = "resume"
	// EventGuestHung records a guest that stopped answering: GUEST_HUNG, its last pool
	// figure and, when the provider could reset it, the evidence it kept.
	EventGuestHung = "guest_hung"
	// EventFile names a file the run kept for a target (a console log, a screenshot), as
	// FileMessage writes it; the report links it.
	EventFile = "file"
)

// FileMessage is an EventFile's message: a label and the file's path relative to the run
// folder (the store's folder), or the path as given when it lies outside.
func FileMessage(store *Store, label, path string) string {
	if rel, err := filepath.Rel(filepath.Dir(store.Path()), path); err == nil && filepath.IsLocal(rel) {
		path = filepath.ToSlash(rel)
	}
	return label + ": " + path
}

// ParseFileMessage splits an EventFile's message into its label and path.
func ParseFileMessage(msg string) (label, path string, ok bool) {
	label, path, ok = strings.Cut(msg, ": ")
	return label, path, ok && label != "" && path != ""
}

// Default bounds of the runner's waits.
const (
	DefaultGuestTimeout = 15 * time.Minute
	// trafficGrace is how long past its window a traffic run may take to wind down.
	trafficGrace = 30 * time.Second
	// drainTimeout bounds the wait for a stopped sampler's last events.
	drainTimeout = 30 * time.Second
	// progressEvery is how often a window reports progress.
	progressEvery = 250 * time.Millisecond
)

// abandonGrace is how long a call may take to return after its context ended (a
// variable so tests need not wait it out).
var abandonGrace = 10 * time.Second

// Runner measures a scenario on its targets, side by side, recording everything in Store
// as it arrives, and analyses the result.
type Runner struct {
	Scenario *scenarios.Scenario
	Store    *Store
	Targets  []RunTarget
	Traffic  TrafficFunc   // nil: traffic.Run
	Allow    traffic.Allow // nil: Scenario.Lab.Allow
	// Progress, when set, is called from every target's goroutine, concurrently.
	Progress func(Progress)
	// GuestTimeout bounds each guest operation: prepare, hotfix, starting and stopping the
	// sampler (0: DefaultGuestTimeout).
	GuestTimeout time.Duration
	// Done, when set, names the cells measured already (a resumed run): their windows are
	// not run again, and a phase with nothing left is skipped.
	Done func(CellKey) bool
	// TputDone, when set, says a target's phase has its throughput windows already.
	TputDone func(target, phase string) bool
}

// Run measures every target, then analyses every cell of the scenario and records the
// results and the run's end. One target's failure stops neither the others nor the
// analysis; every failure is in the returned go-multierror, each naming its target. The
// results are returned also when err is not nil. A target whose measurement failed in one
// phase (traffic, the sample stream) goes on to the next; one whose guest failed (prepare,
// hotfix, starting the sampler) stops.
func (r *Runner) Run(ctx context.Context) ([]CellResult, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var (
		errs *multierror.Error
		wg   sync.WaitGroup
	)
	// Recorded here, in the given order, so the store lists targets as the scenario does,
	// not in the order their goroutines happened to start.
	for _, rt := range r.Targets {
		info := rt.Info
		info.Name = targetName(rt)
		if err := r.Store.RecordTarget(info); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("target %s: %w", info.Name, err))
		}
	}
	// Each target's error in its own slot, joined in the given order, not the finishing one.
	targetErrs := make([]error, len(r.Targets))
	for i, rt := range r.Targets {
		wg.Add(1)
		go func(i int, rt RunTarget) {
			defer wg.Done()
			targetErrs[i] = r.runTarget(ctx, rt)
		}(i, rt)
	}
	// Every target's waits are bounded, so this wait is too.
	wg.Wait()
	for _, err := range targetErrs {
		if err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	results, err := Reanalyze(r.Store, AnalysisFor(r.Scenario))
	if err != nil {
		errs = multierror.Append(errs, fmt.Errorf("analysis: %w", err))
	}
	if r.Scenario.Throughput.On() {
		if _, err := ReanalyzeTput(r.Store, r.Scenario); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("throughput analysis: %w", err))
		}
	}
	if err := r.Store.FinishRun(time.Now()); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.Store.Flush(); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("run store: %w", err))
	}
	return results, errs.ErrorOrNil()
}

func (r *Runner) check() error {
	switch {
	case r.Scenario == nil:
		return errors.New("bench: runner has no scenario")
	case r.Store == nil:
		return errors.New("bench: runner has no store")
	case len(r.Targets) == 0:
		return errors.New("bench: runner has no targets")
	case r.Scenario.Timing.SampleInterval <= 0:
		return fmt.Errorf("bench: scenario %s: sample interval %s must be positive", r.Scenario.Name, r.Scenario.Timing.SampleInterval)
	case r.Scenario.Timing.Window <= 0:
		return fmt.Errorf("bench: scenario %s: window %s must be positive", r.Scenario.Name, r.Scenario.Timing.Window)
	}
	seen := map[string]bool{}
	for i, rt := range r.Targets {
		if rt.Guest == nil {
			return fmt.Errorf("bench: runner target %d (%q) has no guest", i, rt.Info.Name)
		}
		name := targetName(rt)
		if name == "" {
			return fmt.Errorf("bench: runner target %d has no name", i)
		}
		if seen[name] {
			return fmt.Errorf("bench: runner target %q appears twice", name)
		}
		seen[name] = true
	}
	return nil
}

func targetName(rt RunTarget) string {
	if rt.Info.Name != "" {
		return rt.Info.Name
	}
	return rt.Guest.Name()
}

func (r *Runner) guestTimeout() time.Duration {
	if r.GuestTimeout > 0 {
		return r.GuestTimeout
	}
	return DefaultGuestTimeout
}

func (r *Runner) progress(p Progress) {
	if r.Progress != nil {
		r.Progress(p)
	}
}

// targetRun is one target's measurement.
type targetRun struct {
	*Runner
	rt   RunTarget
	name string
	inv  contract.Inventory
	// streamErr is the current sampler's last error; consume writes it, others read it
	// only once consume has ended.
	streamErr error
	// lastSampleNS and lastPool are the last sample's host arrival time and nonpaged
	// pool bytes, for the hang watchdog; consume writes them.
	lastSampleNS atomic.Int64
	lastPool     atomic.Uint64
	// hung is set once the guest was found hung: later waits on it are short.
	hung atomic.Bool
}

// hungError is a guest that stopped answering: the target cannot go on.
type hungError struct {
	silent   time.Duration
	lastPool uint64
	lastAt   time.Time
}

func (e hungError) Error() string {
	return fmt.Sprintf("GUEST_HUNG: no sample for %s and the guest does not answer; last nonpaged pool %d bytes at %s",
		e.silent.Round(time.Second), e.lastPool, e.lastAt.UTC().Format(time.RFC3339))
}

func (r *Runner) runTarget(ctx context.Context, rt RunTarget) (err error) {
	t := &targetRun{Runner: r, rt: rt, name: targetName(rt)}
	defer func() {
		if err != nil {
			t.event("", EventError, err.Error())
			t.progress(Progress{Target: t.name, Step: StepFailed, Err: err})
		} else {
			t.progress(Progress{Target: t.name, Step: StepDone})
		}
	}()
	info := rt.Info
	info.Name = t.name
	if err := r.Store.RecordTarget(info); err != nil {
		return fmt.Errorf("target %s: %w", t.name, err)
	}
	stop := t.reportProgress("", StepPrepare, time.Now(), 0)
	inv, err := bounded(ctx, r.guestTimeout(), "prepare", rt.Guest.Prepare)
	stop()
	if err != nil {
		return fmt.Errorf("target %s: prepare: %w", t.name, err)
	}
	t.inv = inv
	if info.Arch == "" && inv.Arch != "" {
		info.Arch = inv.Arch
		r.Store.RecordTarget(info)
	}
	t.event("", EventPrepare, describe(inv))
	// A phase whose measurement failed (traffic, the sample stream) does not stop the next
	// one; a guest operation that failed (hotfix, starting the sampler) or a cancelled run does.
	var phaseErrs []error
	for _, ph := range r.Scenario.Phases {
		err := t.runPhase(ctx, ph)
		if err == nil {
			continue
		}
		phaseErrs = append(phaseErrs, fmt.Errorf("target %s: phase %s: %w", t.name, ph.Name, err))
		var hung hungError
		if errors.As(err, &hung) {
			t.event(ph.Name, EventGuestHung, hung.Error())
			t.progress(Progress{Target: t.name, Phase: ph.Name, Step: StepHung, Err: hung})
			if rerr := t.recover(ctx, ph.Name); rerr != nil {
				phaseErrs = append(phaseErrs, rerr)
			}
			break
		}
		var ge guestError
		if errors.As(err, &ge) || ctx.Err() != nil {
			break
		}
	}
	return errors.Join(phaseErrs...)
}

// recover resets a hung guest through its provider and records what it showed.
func (t *targetRun) recover(ctx context.Context, phase string) error {
	if t.rt.Recover == nil {
		t.event(phase, EventGuestHung, "the provider cannot reset this guest: reset it by hand before the next run")
		return nil
	}
	ev, err := bounded(ctx, t.guestTimeout(), "reset hung guest", t.rt.Recover)
	if err != nil {
		err = fmt.Errorf("target %s: resetting the hung guest: %w", t.name, err)
		t.event(phase, EventError, err.Error())
		return err
	}
	for _, f := range []struct{ label, path string }{{"console log", ev.ConsoleLog}, {"screenshot when hung", ev.Screenshot}} {
		if f.path != "" {
			t.event(phase, EventFile, FileMessage(t.Store, f.label, f.path))
		}
	}
	msg := fmt.Sprintf("reset through the hypervisor (it reported %q)", ev.Status)
	if ev.ConsoleLog != "" {
		msg += "; console log: " + ev.ConsoleLog
	}
	if ev.Screenshot != "" {
		msg += "; screenshot: " + ev.Screenshot
	}
	if ev.ConsoleTail != "" {
		msg += "; console tail:\n" + ev.ConsoleTail
	}
	t.event(phase, EventGuestHung, msg)
	return nil
}

// guestError is a failed guest operation: the target cannot go on.
type guestError struct{ err error }

func (e guestError) Error() string { return e.err.Error() }
func (e guestError) Unwrap() error { return e.err }

func describe(inv contract.Inventory) string {
	return fmt.Sprintf("OS %s build %s SP%d %s; netio.sys %s (%s); test signing %v; driver %s",
		inv.OSVersion, inv.OSBuild, inv.SP, inv.Arch, inv.Netio, contract.NetioState(inv.Netio), inv.TestSigning, inv.DrvService)
}

func (t *targetRun) event(phase, kind, msg string) {
	// A failed event write shows in Store.Err and the run's final error.
	t.Store.RecordEvent(Event{Target: t.name, Phase: phase, At: time.Now(), Kind: kind, Message: msg})
}

// errSamplerEnded says the sampler's stream closed before the phase was over.
var errSamplerEnded = errors.New("the sampler's stream ended before the phase was over (agent died or guest rebooted?)")

// AlreadyPatched starts the error of a target whose guest has the fix before phase before.
const AlreadyPatched = "ALREADY_PATCHED"

func (t *targetRun) runPhase(ctx context.Context, ph scenarios.Phase) (err error) {
	// Phase before on a fixed netio.sys measures nothing useful and would read as "the bug
	// does not reproduce": stop the target instead, before anything is measured.
	if ph.Name == scenarios.PhaseBefore && contract.NetioState(t.inv.Netio) == contract.Patched {
		return guestError{fmt.Errorf("%s: netio.sys %s already carries the KB979223 fix, so phase before would measure a patched guest; "+
			"give this target an unpatched guest (revert its snapshot or image) or leave phase before out of the scenario", AlreadyPatched, t.inv.Netio)}
	}
	profiles := t.Scenario.Profiles
	if t.Done != nil {
		profiles = nil
		for _, p := range t.Scenario.Profiles {
			if !t.Done(CellKey{t.name, ph.Name, p.Name}) {
				profiles = append(profiles, p)
			}
		}
	}
	tput := t.Scenario.Throughput.On() && (t.TputDone == nil || !t.TputDone(t.name, ph.Name))
	if len(profiles) == 0 && !tput {
		t.event(ph.Name, EventResume, "every cell of this phase was measured before: not run again")
		return nil
	}
	if ph.InstallHotfix {
		t.event(ph.Name, EventHotfix, "installing KB979223 (netio.sys "+t.inv.Netio+")")
		stop := t.reportProgress(ph.Name, StepHotfix, time.Now(), 0)
		inv, err := againAfterRevive(ctx, t, ph.Name, EventHotfix, "install hotfix", func() (contract.Inventory, error) {
			return bounded(ctx, t.guestTimeout(), "install hotfix", t.rt.Guest.InstallHotfix)
		})
		stop()
		if err != nil {
			return guestError{fmt.Errorf("install hotfix: %w", err)}
		}
		t.inv = inv
		t.event(ph.Name, EventHotfix, "installed: "+describe(inv))
	}
	info := PhaseInfo{Target: t.name, Phase: ph.Name, OSBuild: t.inv.OSBuild, Netio: t.inv.Netio,
		Hotfix: string(contract.NetioState(t.inv.Netio)), Started: time.Now()}
	if err := t.Store.RecordPhase(info); err != nil {
		return err
	}
	defer func() {
		info.Ended = time.Now()
		if rerr := t.Store.RecordPhase(info); rerr != nil && err == nil {
			err = rerr
		}
	}()

	// A window cut by the sample stream's end (the agent died, the guest rebooted, the
	// connection broke for good) is run again once the guest answers, at most maxReruns
	// times in a row; the cut stays in the store as a gap event.
	live, err := againAfterRevive(ctx, t, ph.Name, EventGap, "start sampler", func() (liveSampler, error) {
		return t.startSampler(ctx, ph.Name)
	})
	if err != nil {
		return err
	}
	defer func() {
		if serr := t.stopSampler(ctx, ph.Name, live.s, live.ended); serr != nil && err == nil {
			err = serr
		}
		live.cancel()
	}()

	windows := append([]scenarios.Profile{{Name: WarmupWindow}}, profiles...)
	var trafficErrs []error
	for i, reruns := 0, 0; i < len(windows); {
		p := windows[i]
		var terr error
		length, body := t.Scenario.Timing.Window, func(ctx context.Context) { terr = t.drive(ctx, ph.Name, p) }
		if p.Name == WarmupWindow {
			length, body = t.Scenario.Timing.Warmup, nil
		}
		start := time.Now()
		err := t.window(ctx, ph.Name, p.Name, length, live.ended, body, t.Store.RecordWindow)
		if err != nil && errors.Is(terr, context.Canceled) {
			terr = nil // the cut stopped the traffic; the cut is the news
		}
		if terr != nil {
			// The other profiles still run: their cells are worth having.
			t.event(ph.Name, EventError, terr.Error())
			trafficErrs = append(trafficErrs, terr)
		}
		if errors.Is(err, errSamplerEnded) && t.streamErr != nil {
			err = fmt.Errorf("%w; its last error: %v", err, t.streamErr)
		}
		if err == nil {
			i, reruns = i+1, 0
			continue
		}
		_, revivable := t.rt.Guest.(Reviver)
		if !errors.Is(err, errSamplerEnded) || !revivable || ctx.Err() != nil || reruns == maxReruns {
			if reruns == maxReruns && errors.Is(err, errSamplerEnded) {
				err = fmt.Errorf("window %s cut %d times in a row, given up: %w", p.Name, reruns+1, err)
			}
			return errors.Join(append(trafficErrs, err)...)
		}
		reruns++
		t.event(ph.Name, EventGap, fmt.Sprintf("window %s cut after %s: %v; samples stop here until the window runs again (rerun %d of %d)",
			p.Name, time.Since(start).Round(100*time.Millisecond), err, reruns, maxReruns))
		_ = t.stopSampler(ctx, ph.Name, live.s, live.ended) // recorded as an event when it fails
		live.cancel()
		var rerr error
		if live, rerr = t.revive(ctx, ph.Name); rerr != nil {
			live = liveSampler{s: endedSampler{}, ended: closedChan(), cancel: func() {}}
			return errors.Join(append(trafficErrs, err, rerr)...)
		}
	}
	if tput {
		if err := t.throughput(ctx, ph.Name, live.ended); err != nil {
			trafficErrs = append(trafficErrs, err)
		}
	}
	return errors.Join(trafficErrs...)
}

// drive runs one profile's traffic, recording every tick: throughout the window, or on for
// Timing.Block and off for as long, in turn (one run on a blockClock), so that the leak can
// be told from the pool's own drift.
func (t *targetRun) drive(ctx context.Context, phase string, p scenarios.Profile) error {
	counters, err := t.send(ctx, p, p.Rate, t.Scenario.Timing.Window, t.Scenario.Timing.Block, func(tick traffic.Tick) {
		t.Store.RecordTraffic(t.name, phase, p.Name, tick)
	})
	if err != nil {
		return err
	}
	var errCount uint64
	for _, n := range counters.SendErrors() {
		errCount += n
	}
	msg := fmt.Sprintf("%s: %d packets, %d bytes, %d send errors", p.Name, counters.Packets, counters.Bytes, errCount)
	if counters.Resets > 0 {
		msg += fmt.Sprintf(", %d connections reset by the guest after a blocked burst", counters.Resets)
	}
	t.event(phase, EventTraffic, msg)
	return nil
}

// send runs profile p's traffic at rate for length, bounded by length + trafficGrace; with
// block > 0, on for block and off for as long in turn.
func (t *targetRun) send(ctx context.Context, p scenarios.Profile, rate float64, length, block time.Duration,
	onTick func(traffic.Tick)) (traffic.Counters, error) {
	run := t.Runner.Traffic
	if run == nil {
		run = traffic.Run
	}
	if onTick == nil {
		onTick = func(traffic.Tick) {} // a TrafficFunc may not check
	}
	allow := t.Allow
	if allow == nil {
		allow = traffic.Allow(t.Scenario.Lab.Allow)
	}
	spec := traffic.Spec{Profile: traffic.Profile(p.Kind), Rate: rate, Duration: length,
		PayloadBytes: p.PayloadBytes, BurstSegments: p.BurstSegments, Conns: p.Conns}
	if block > 0 && block < length {
		clock := newBlockClock(time.Now(), block)
		spec.Clock, spec.Duration = clock, scenarios.OnTime(0, length, block)
		record := onTick
		onTick = func(tick traffic.Tick) {
			tick.At = clock.tickWall(tick.At) // the store keeps wall time
			record(tick)
		}
	}
	counters, err := bounded(ctx, length+trafficGrace, "traffic "+p.Name,
		func(ctx context.Context) (traffic.Counters, error) {
			return run(ctx, spec, t.rt.Traffic, allow, onTick)
		})
	if err != nil {
		return counters, fmt.Errorf("traffic %s: %w", p.Name, err)
	}
	return counters, nil
}
