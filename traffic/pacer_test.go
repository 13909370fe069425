package traffic

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"
)

// takePerSecond drives Take on a fake clock for `seconds` simulated seconds and counts the
// tokens taken in each second.
func takePerSecond(t *testing.T, rate float64, max, seconds int) []int {
	t.Helper()
	clock := newFakeClock(epoch)
	p := NewPacer(clock, rate, 1)
	counts := make([]int, seconds)
	end := epoch.Add(time.Duration(seconds) * time.Second)
	for i := 0; i < 100_000_000; i++ {
		n, err := p.Take(context.Background(), max)
		if err != nil {
			t.Fatal(err)
		}
		if n < 1 || n > max {
			t.Fatalf("Take(%d) = %d", max, n)
		}
		now := clock.Now()
		if !now.Before(end) {
			return counts
		}
		counts[int(now.Sub(epoch)/time.Second)] += n
	}
	t.Fatal("loop did not reach the end of the simulated time")
	return nil
}

func TestPacerTakeSendsTheRateEachSimulatedSecond(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		tol  int // ±, per second
	}{
		{1, 0}, {3, 0}, {10, 0}, {100, 0}, {1000, 0}, {7000, 0}, {10000, 0}, {50000, 0}, {200000, 0},
		{1500, 1}, {333.3, 1},
	} {
		counts := takePerSecond(t, tc.rate, 64, 5)
		for sec, n := range counts {
			if math.Abs(float64(n)-tc.rate) > float64(tc.tol)+0.5 {
				t.Errorf("rate %v: second %d took %d tokens, want %v ± %d (all: %v)", tc.rate, sec, n, tc.rate, tc.tol, counts)
				break
			}
		}
	}
}

func TestPacerTakeBatchesWakeUps(t *testing.T) {
	// At 200k/s a wake-up per packet would be 200k sleeps a second; the pacer sleeps at
	// least pacerMinSleep, so it takes whole batches.
	clock := newFakeClock(epoch)
	p := NewPacer(clock, 200000, 1)
	calls, total := 0, 0
	for clock.Now().Before(epoch.Add(time.Second)) {
		n, err := p.Take(context.Background(), 64)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		total += n
	}
	if perCall := float64(total) / float64(calls); perCall < 32 {
		t.Errorf("%d tokens in %d takes: %.1f per take, want batches of ~50", total, calls, perCall)
	}
}

func TestPacerWaitAccountsWholeBursts(t *testing.T) {
	// stream-burst: Rate segments/s in bursts of K: Rate/K bursts per second.
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{1000, 8}, {8000, 8}, {100, 10}, {44, 4}} {
		clock := newFakeClock(epoch)
		p := NewPacer(clock, tc.rate, tc.burst)
		bursts := make([]int, 3)
		for clock.Now().Before(epoch.Add(3 * time.Second)) {
			before := clock.Now()
			if err := p.Wait(context.Background(), tc.burst); err != nil {
				t.Fatal(err)
			}
			now := clock.Now()
			if now.Before(before) {
				t.Fatal("fake clock went backwards")
			}
			if now.Before(epoch.Add(3 * time.Second)) {
				bursts[int(now.Sub(epoch)/time.Second)]++
			}
		}
		want := int(tc.rate) / tc.burst
		for sec, n := range bursts {
			if n != want {
				t.Errorf("rate %v burst %d: second %d had %d bursts, want %d (%v)", tc.rate, tc.burst, sec, n, want, bursts)
			}
		}
	}
}

func TestPacerSharedByConcurrentWaiters(t *testing.T) {
	// Four connections share one pacer: together they get the rate, not four times it.
	clock := newFakeClock(epoch)
	const rate, burst = 4000.0, 8
	p := NewPacer(clock, rate, burst)
	end := epoch.Add(2 * time.Second)
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				if err := p.Wait(context.Background(), burst); err != nil {
					t.Error(err)
					return
				}
				if !clock.Now().Before(end) {
					return
				}
				mu.Lock()
				total++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	want := int(rate * 2 / burst) // 1000 bursts in 2 s
	// Each waiter reserves before sleeping, so a reservation made just before the end may
	// be counted by a waiter whose clock read came before another's jump: allow 4.
	if total < want-4 || total > want+4 {
		t.Errorf("4 waiters sent %d bursts in 2 simulated seconds, want %d ± 4", total, want)
	}
}

func TestPacerCatchUpIsBounded(t *testing.T) {
	// After an idle stretch the bucket holds at most pacerWindow's worth, so a stalled sender
	// does not blast seconds of backlog at once.
	clock := newFakeClock(epoch)
	p := NewPacer(clock, 10000, 1)
	if _, err := p.Take(context.Background(), 1<<20); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	n, err := p.Take(context.Background(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := int(10000 * pacerWindow.Seconds()); n != want {
		t.Errorf("after 10 s idle Take returned %d tokens, want the bucket's %d", n, want)
	}
}

func TestPacerUnpacedAndCancelled(t *testing.T) {
	clock := newFakeClock(epoch)
	p := NewPacer(clock, 0, 1)
	for range 1000 {
		n, err := p.Take(context.Background(), 64)
		if n != 64 || err != nil {
			t.Fatalf("unpaced Take = %d, %v; want 64, nil", n, err)
		}
		if err := p.Wait(context.Background(), 8); err != nil {
			t.Fatal(err)
		}
	}
	if !clock.Now().Equal(epoch) {
		t.Errorf("unpaced pacer slept: clock moved to %v", clock.Now())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := NewPacer(RealClock{}, 1, 1)
	if _, err := slow.Take(ctx, 1); err != nil {
		t.Fatalf("the first token is there at once, got %v", err)
	}
	start := time.Now()
	if _, err := slow.Take(ctx, 1); err == nil {
		t.Error("Take on a cancelled context with an empty bucket returned no error")
	}
	if err := slow.Wait(ctx, 5); err == nil {
		t.Error("Wait on a cancelled context returned no error")
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Error("cancelled Take/Wait slept instead of returning")
	}
}

func TestPacerRealClockRoughRate(t *testing.T) {
	// A sanity check on the real clock, deliberately loose: tight numbers live in the benchmark.
	p := NewPacer(RealClock{}, 2000, 1)
	start := time.Now()
	total := 0
	for time.Since(start) < 300*time.Millisecond {
		n, err := p.Take(context.Background(), 64)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	elapsed := time.Since(start).Seconds()
	// Never above the rate (plus the first 2 tokens); loosely below, for loaded machines.
	if max := 2 + 2000*elapsed; float64(total) > max || total < 60 {
		t.Errorf("real-clock pacer at 2000/s sent %d in %.3f s, want 60..%.0f", total, elapsed, max)
	}
}

func TestPacketsPerSecond(t *testing.T) {
	for _, tc := range []struct {
		bits    float64
		payload int
		want    float64
	}{{512000, 64, 1000}, {1e6, 64, 1953.125}, {32e6, 4000, 1000}, {0, 64, 0}, {1e6, 0, 0}} {
		if got := PacketsPerSecond(tc.bits, tc.payload); got != tc.want {
			t.Errorf("PacketsPerSecond(%v, %d) = %v, want %v", tc.bits, tc.payload, got, tc.want)
		}
	}
}

// sendsPerSecond drives Take on a fake clock where each send takes sendTime (the clock is
// advanced after every Take, as a real send call would take time), for `seconds` simulated
// seconds; it returns the tokens and the Take calls in each second.
func sendsPerSecond(t *testing.T, rate float64, max int, sendTime time.Duration, seconds int) (tokens, calls []int) {
	t.Helper()
	clock := newFakeClock(epoch)
	p := NewPacer(clock, rate, 1)
	tokens, calls = make([]int, seconds), make([]int, seconds)
	end := epoch.Add(time.Duration(seconds) * time.Second)
	for i := 0; i < 100_000_000; i++ {
		n, err := p.Take(context.Background(), max)
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		if !now.Before(end) {
			return tokens, calls
		}
		sec := int(now.Sub(epoch) / time.Second)
		tokens[sec] += n
		calls[sec]++
		clock.Advance(sendTime)
	}
	t.Fatal("loop did not reach the end of the simulated time")
	return nil, nil
}

func TestPacerTakeKeepsBatchesWhileSendsTakeTime(t *testing.T) {
	// At 200k/s a send of 64 datagrams takes tens of microseconds, in which a few tokens
	// accrue. Handing those out at once would mean a send call per ~8 datagrams; the pacer
	// lets them wait for the next refill, one pacerMinSleep later, so batches stay whole.
	const rate, max = 200000.0, 64
	tokens, calls := sendsPerSecond(t, rate, max, 40*time.Microsecond, 5)
	for sec := range tokens {
		// A second may end with part of a refill not yet taken: at most one refill's worth
		// (a pacerMinSleep plus the send times of that refill) moves to the next second.
		if d := math.Abs(float64(tokens[sec]) - rate); d > 0.002*rate {
			t.Errorf("second %d took %d tokens, want %v ± 0.2%% (all: %v)", sec, tokens[sec], rate, tokens)
		}
		if perCall := float64(tokens[sec]) / float64(calls[sec]); perCall < 40 {
			t.Errorf("second %d: %d tokens in %d takes, %.1f per take; want batches near %d (calls: %v)", sec, tokens[sec], calls[sec], perCall, max, calls)
		}
	}
}

func TestPacerTakeCatchesUpWhenSendsAreSlow(t *testing.T) {
	// Sends slower than pacerMinSleep (a loaded machine): the pacer must not sleep between
	// them, and every second still gets the rate, since tokens accrue by the clock.
	const rate, max = 200000.0, 1024
	tokens, _ := sendsPerSecond(t, rate, max, 2*time.Millisecond, 5)
	for sec, n := range tokens {
		if math.Abs(float64(n)-rate) > max {
			t.Errorf("second %d took %d tokens, want %v ± %d (all: %v)", sec, n, rate, max, tokens)
		}
	}
}

// Tokens refunded for a burst that never left (the peer reset the connection) pay for the
// next one: a sender that loses every other burst still sends the rate asked.
func TestPacerRefundKeepsTheRateThroughLostBursts(t *testing.T) {
	const rate, burst = 2000, 8
	for _, refund := range []bool{false, true} {
		clock := newFakeClock(epoch)
		p := NewPacer(clock, rate, burst)
		sent := 0
		for i := 0; clock.Now().Before(epoch.Add(10 * time.Second)); i++ {
			if err := p.Wait(context.Background(), burst); err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 { // reset: nothing left
				if refund {
					p.Refund(burst)
				}
				continue
			}
			sent += burst
		}
		perSec := float64(sent) / 10
		if refund && math.Abs(perSec-rate) > rate/100 {
			t.Errorf("with refunds: %.0f segments/s sent, want %d", perSec, rate)
		}
		if !refund && math.Abs(perSec-rate/2) > rate/100 {
			t.Errorf("without refunds: %.0f segments/s sent, want half of %d (the test's premise)", perSec, rate)
		}
	}
}
