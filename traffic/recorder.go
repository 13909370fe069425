package traffic

import (
	"context"
	"sync"
	"time"
)

// tickGrace delays a second's tick a little past its end, so sends stamped just before the
// boundary are recorded into it rather than into the next second.
const tickGrace = 10 * time.Millisecond

// event is what one send call (or connect) adds to the counters.
type event struct {
	packets, bytes, bursts, conns, resets, syscalls uint64
	frames, fwdFrames, fwdDatagrams, fwdBytes       uint64
	errKind                                         string
}

// recorder keeps a run's totals and its per-second deltas. Each event is filed under the
// second its send started in; a second's delta goes out once that second is over.
type recorder struct {
	start     time.Time
	perSecond bool // keep per-second deltas (only when someone takes ticks)

	mu      sync.Mutex
	total   Counters
	seconds map[int64]*Counters
	next    int64 // the first second not handed to onTick yet
}

func newRecorder(start time.Time, perSecond bool) *recorder {
	return &recorder{start: start, perSecond: perSecond, seconds: map[int64]*Counters{}}
}

func (r *recorder) add(at time.Time, e event) {
	sec := int64(at.Sub(r.start) / time.Second)
	if at.Before(r.start) {
		sec = 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.apply(e)
	if !r.perSecond {
		return
	}
	if sec < r.next { // late: its second was already reported, so it counts in the current one
		sec = r.next
	}
	c := r.seconds[sec]
	if c == nil {
		c = &Counters{}
		r.seconds[sec] = c
	}
	c.apply(e)
}

func (c *Counters) apply(e event) {
	c.Packets += e.packets
	c.Bytes += e.bytes
	c.Bursts += e.bursts
	c.Conns += e.conns
	c.Resets += e.resets
	c.Syscalls += e.syscalls
	c.Frames += e.frames
	c.ForwardedFrames += e.fwdFrames
	c.ForwardedDatagrams += e.fwdDatagrams
	c.ForwardedBytes += e.fwdBytes
	if e.errKind != "" {
		if c.Errors == nil {
			c.Errors = map[string]uint64{}
		}
		c.Errors[e.errKind]++
	}
}

// Add returns the sum of two Counters.
func (c Counters) Add(o Counters) Counters {
	sum := Counters{
		Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes, Bursts: c.Bursts + o.Bursts,
		Conns: c.Conns + o.Conns, Resets: c.Resets + o.Resets, Syscalls: c.Syscalls + o.Syscalls,
		Frames: c.Frames + o.Frames, ForwardedFrames: c.ForwardedFrames + o.ForwardedFrames,
		ForwardedDatagrams: c.ForwardedDatagrams + o.ForwardedDatagrams, ForwardedBytes: c.ForwardedBytes + o.ForwardedBytes,
	}
	for _, m := range []map[string]uint64{c.Errors, o.Errors} {
		for k, v := range m {
			if sum.Errors == nil {
				sum.Errors = map[string]uint64{}
			}
			sum.Errors[k] += v
		}
	}
	return sum
}

// ErrorCount is the number of errors of every kind.
func (c Counters) ErrorCount() uint64 {
	var n uint64
	for _, v := range c.Errors {
		n += v
	}
	return n
}

// PacketRate is the tick's achieved rate in packets per second (0 for an empty span).
func (t Tick) PacketRate() float64 {
	if t.Span <= 0 {
		return 0
	}
	return float64(t.Delta.Packets) / t.Span.Seconds()
}

// BitRate is the tick's achieved payload rate in bits per second.
func (t Tick) BitRate() float64 {
	if t.Span <= 0 {
		return 0
	}
	return float64(t.Delta.Bytes) * 8 / t.Span.Seconds()
}

func (r *recorder) totals() Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Counters{}.Add(r.total) // a copy, with its own Errors map
}

// take removes and returns second sec's delta and marks it reported.
func (r *recorder) take(sec int64) Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c Counters
	if p := r.seconds[sec]; p != nil {
		c = *p
		delete(r.seconds, sec)
	}
	if sec >= r.next {
		r.next = sec + 1
	}
	return c
}

// takeRest removes everything from second from onwards (late events included) and marks
// it all reported.
func (r *recorder) takeRest(from int64) Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c Counters
	for sec, p := range r.seconds {
		if sec >= from {
			c = c.Add(*p)
			delete(r.seconds, sec)
		}
	}
	r.next = 1 << 62
	return c
}

// tick calls onTick once per second of clock time until finish delivers the run's end,
// then reports what is left, the last tick marked Final. It is the only caller of onTick.
// deadline (zero: none) is when the run is due to end: the second that reaches it is left
// to the final flush, so no tick ever covers time after the end.
func (r *recorder) tick(clock Clock, onTick func(Tick), deadline time.Time, finish <-chan time.Time) {
	// Bounded: each pass waits for the next second or for finish, which Run always sends.
	for sec := int64(0); ; sec++ {
		boundary := r.start.Add(time.Duration(sec+1) * time.Second)
		if !deadline.IsZero() && !boundary.Before(deadline) {
			r.flush(sec, <-finish, onTick)
			return
		}
		due, stop := clock.After(boundary.Add(tickGrace))
		select {
		case <-due:
			onTick(Tick{At: boundary, Delta: r.take(sec), Span: time.Second})
		case end := <-finish:
			stop()
			r.flush(sec, end, onTick)
			return
		}
	}
}

// flush reports seconds from sec up to the run's end: whole seconds as usual, then the
// partial last one marked Final (an empty Final tick if the end fell on a reported boundary).
func (r *recorder) flush(sec int64, end time.Time, onTick func(Tick)) {
	for {
		boundary := r.start.Add(time.Duration(sec+1) * time.Second)
		if boundary.After(end) {
			break
		}
		if boundary.Equal(end) {
			onTick(Tick{At: boundary, Delta: r.takeRest(sec), Span: time.Second, Final: true})
			return
		}
		onTick(Tick{At: boundary, Delta: r.take(sec), Span: time.Second})
		sec++
	}
	secStart := r.start.Add(time.Duration(sec) * time.Second)
	span := end.Sub(secStart)
	if span < 0 {
		span = 0
	}
	onTick(Tick{At: end, Delta: r.takeRest(sec), Span: span, Final: true})
}

// sleepCtx waits d on clock, or until ctx ends.
func sleepCtx(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	return clock.SleepUntil(ctx, clock.Now().Add(d))
}
