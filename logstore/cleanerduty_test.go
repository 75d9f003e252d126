package logstore

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// fakeDutyClock is a clock that moves only when told, and an append count.
type fakeDutyClock struct {
	t       time.Time
	appends int64
}

func (f *fakeDutyClock) now() time.Time          { return f.t }
func (f *fakeDutyClock) count() int64            { return f.appends }
func (f *fakeDutyClock) advance(d time.Duration) { f.t = f.t.Add(d) }

// TestDutyCycleAccounting checks the duty cycle's arithmetic on a fake
// clock: rests owed for work while the log takes appends, none while it is
// idle, small debts carried, long ones capped.
func TestDutyCycleAccounting(t *testing.T) {
	if newDutyCycle(1, time.Now, func() int64 { return 0 }) != nil || newDutyCycle(0, time.Now, func() int64 { return 0 }) != nil {
		t.Fatal("a share of 0 or 1 should mean no duty cycle")
	}
	clk := &fakeDutyClock{t: time.Unix(1000, 0)}
	d := newDutyCycle(0.25, clk.now, clk.count)

	// Idle log: work is free.
	for range 10 {
		clk.advance(50 * time.Millisecond)
		if r := d.step(); r != 0 {
			t.Fatalf("idle log: rest %v, want none", r)
		}
		d.rested()
	}

	// An append: 10 ms of work owe 30 ms of rest at a share of 1/4.
	clk.appends++
	clk.advance(10 * time.Millisecond)
	if r := d.step(); r != 30*time.Millisecond {
		t.Fatalf("busy, 10 ms of work: rest %v, want 30ms", r)
	}
	clk.advance(30 * time.Millisecond) // the rest
	d.rested()

	// Small debts accumulate up to minRest.
	clk.advance(time.Millisecond)
	if r := d.step(); r != 0 {
		t.Fatalf("1 ms of work: rest %v, want none yet (3 ms owed)", r)
	}
	d.rested()
	clk.advance(time.Millisecond)
	if r := d.step(); r != 6*time.Millisecond {
		t.Fatalf("2 ms of work in two steps: rest %v, want 6ms", r)
	}
	clk.advance(6 * time.Millisecond)
	d.rested()

	// A wait that is not work (rested without a step) owes nothing.
	clk.advance(100 * time.Millisecond)
	d.rested()
	if r := d.step(); r != 0 {
		t.Fatalf("after a wait: rest %v, want none", r)
	}

	// A long step's debt is capped at maxOwed, and paid in rests of at
	// most maxRest.
	clk.advance(10 * time.Second)
	clk.appends++
	var paid time.Duration
	for r := d.step(); r > 0; r = d.step() {
		if r > maxRest {
			t.Fatalf("a rest of %v, longer than %v", r, maxRest)
		}
		paid += r
		clk.advance(r)
		d.rested()
		clk.appends++
	}
	if paid != maxOwed {
		t.Fatalf("10 s of work: rested %v, want the cap %v", paid, maxOwed)
	}
	d.rested()

	// No append for busyHold: idle again, and the debt is forgotten.
	clk.advance(time.Millisecond)
	if r := d.step(); r != 0 {
		t.Fatalf("1 ms of work: rest %v, want none yet", r)
	}
	d.rested()
	clk.advance(busyHold)
	if r := d.step(); r != 0 || d.owed != 0 {
		t.Fatalf("idle for busyHold: rest %v owed %v, want none", r, d.owed)
	}
}

// TestDutyCycleShare: over many steps of random work with the log busy,
// the rests asked for are the share's complement of the work, within the
// debt carried at the end (less than minRest).
func TestDutyCycleShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, share := range []float64{0.1, 0.25, 0.5, 0.9} {
		clk := &fakeDutyClock{t: time.Unix(1000, 0)}
		d := newDutyCycle(share, clk.now, clk.count)
		var work, rest time.Duration
		for range 10_000 {
			clk.appends++
			w := time.Duration(rng.Int64N(int64(3 * time.Millisecond)))
			clk.advance(w)
			work += w
			r := d.step()
			clk.advance(r)
			rest += r
			d.rested()
		}
		want := time.Duration(float64(work) * (1 - share) / share)
		if diff := want - rest; diff < -10*time.Microsecond || diff > minRest+10*time.Microsecond { // float rounding: 1 ns per step at most
			t.Fatalf("share %g: work %v, rest %v, want %v (within %v)", share, work, rest, want, minRest)
		}
		if d.worked != work {
			t.Fatalf("share %g: counted %v of work, want %v", share, d.worked, work)
		}
	}
}

// TestDutyCycleLongSteps: steps longer than maxRest's worth of work (a
// slow fsync or rename between two batches) owe their full rest, paid in
// several rests, so the share holds whatever the steps' lengths. (Before,
// one step's debt was cut to a second: steps of 600 ms of work at a share
// of 1/4 rested 1 s instead of 1.8 s, a share of 0.375.)
func TestDutyCycleLongSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, share := range []float64{0.1, 0.25, 0.5} {
		clk := &fakeDutyClock{t: time.Unix(1000, 0)}
		d := newDutyCycle(share, clk.now, clk.count)
		var work, rest time.Duration
		for range 200 {
			clk.appends++
			w := time.Duration(rng.Int64N(int64(800 * time.Millisecond)))
			clk.advance(w)
			work += w
			for r := d.step(); r > 0; r = d.step() {
				if r > maxRest {
					t.Fatalf("share %g: a rest of %v, longer than %v", share, r, maxRest)
				}
				clk.advance(r)
				rest += r
				d.rested()
				clk.appends++ // the producers go on meanwhile
			}
			d.rested()
		}
		want := time.Duration(float64(work) * (1 - share) / share)
		if diff := want - rest; diff < -time.Millisecond || diff > minRest+time.Millisecond {
			t.Fatalf("share %g: work %v, rest %v, want %v (work share %.3f)", share, work, rest, want, float64(work)/float64(work+rest))
		}
	}
}

// TestCleanerPaysPassTail: the work after a pass's last batch (its last
// group's fsync and swap, the checkpoint: here a fake clock moved at those
// steps, as a slow fsync would) owes rest like the rest of the pass.
// Before, the pass's end forgave it: a pass whose cost was mostly in its
// last fsync and checkpoint rested for none of it.
func TestCleanerPaysPassTail(t *testing.T) {
	const share = 0.5
	clk := &fakeDutyClock{t: time.Unix(1000, 0)}
	var rests, slow time.Duration
	testHookDutyClock = func() (func() time.Time, func() int64) {
		return clk.now, func() int64 { clk.appends++; return clk.appends } // always busy
	}
	testHookCleanerRest = func(d time.Duration) { rests += d; clk.advance(d) }
	testHookCleanStep = func(step string) {
		if step == "output synced" || step == "checkpoint written" {
			clk.advance(100 * time.Millisecond) // a slow fsync
			slow += 100 * time.Millisecond
		}
	}
	t.Cleanup(func() { testHookDutyClock, testHookCleanerRest, testHookCleanStep = nil, nil, nil })

	opts, _ := testOptions(t.TempDir())
	opts.Cleaner = CleanerOptions{Interval: -1, MaxDutyCycle: share}
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "tail", TopicConfig{Partitions: 1, SegmentBytes: 4 << 10, Cleanup: CleanupCompact})
	want := appendKeyRounds(t, p, 300, 3)
	if err := p.roll(false, 0); err != nil {
		t.Fatal(err)
	}
	if ran, err := p.Compact(time.Now(), true); err != nil || !ran {
		t.Fatalf("compact: ran %v, %v", ran, err)
	}
	// All the work is the fake clock's slow steps: at a share of 1/2 the
	// pass rests as long as they took.
	if wantRest := time.Duration(float64(slow) * (1 - share) / share); rests < wantRest-minRest || rests > wantRest+minRest {
		t.Fatalf("%v of slow steps, rested %v, want %v", slow, rests, wantRest)
	}
	st := p.CleanerStats()
	if st.Worked != slow || st.Rested != rests {
		t.Fatalf("CleanerStats: worked %v rested %v, want %v and %v", st.Worked, st.Rested, slow, rests)
	}
	expectLatest(t, p, want)
}

// TestCleanerRestsWhileBusy: a pass on a log that takes appends (a fake
// clock and append count) rests as its duty cycle says, reports it in
// CleanerStats.Rested, and still compacts correctly; on an idle log the
// same pass does not rest, nor one over a partition past its
// max.compaction.lag.ms.
func TestCleanerRestsWhileBusy(t *testing.T) {
	for _, tc := range []struct {
		busy, overdue bool
	}{{false, false}, {true, false}, {true, true}} {
		busy := tc.busy
		t.Run(fmt.Sprintf("busy=%v,overdue=%v", tc.busy, tc.overdue), func(t *testing.T) {
			clk := &fakeDutyClock{t: time.Unix(1000, 0)}
			var rests time.Duration
			testHookDutyClock = func() (func() time.Time, func() int64) {
				return func() time.Time {
						clk.advance(time.Millisecond) // every look at the clock: 1 ms of work
						return clk.t
					}, func() int64 {
						if busy {
							clk.appends++
						}
						return clk.appends
					}
			}
			testHookCleanerRest = func(d time.Duration) { rests += d; clk.advance(d) }
			t.Cleanup(func() { testHookDutyClock, testHookCleanerRest = nil, nil })

			opts, _ := testOptions(t.TempDir())
			opts.Cleaner = CleanerOptions{Interval: -1, MaxDutyCycle: 0.5}
			l := mustOpen(t, opts)
			defer l.Close()
			tcfg := TopicConfig{Partitions: 1, SegmentBytes: 4 << 10, Cleanup: CleanupCompact}
			if tc.overdue {
				tcfg.MaxCompactionLag = time.Hour // the records' timestamps are of 1970
			}
			p := mustPartition(t, l, "duty", tcfg)
			want := appendKeyRounds(t, p, 300, 3)
			if err := p.roll(false, 0); err != nil {
				t.Fatal(err)
			}
			if ran, err := p.Compact(time.Now(), true); err != nil || !ran {
				t.Fatalf("compact: ran %v, %v", ran, err)
			}
			st := p.CleanerStats()
			if st.Rested != rests {
				t.Fatalf("CleanerStats.Rested %v, the pass rested %v", st.Rested, rests)
			}
			if busy && !tc.overdue && rests == 0 {
				t.Fatal("a pass on a busy log did not rest")
			}
			if !busy && rests != 0 {
				t.Fatalf("a pass on an idle log rested %v", rests)
			}
			if tc.overdue && rests != 0 {
				t.Fatalf("a pass past max.compaction.lag.ms rested %v", rests)
			}
			expectLatest(t, p, want)
		})
	}
}
