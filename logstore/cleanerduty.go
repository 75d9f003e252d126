package logstore

import "time"

// The cleaner's duty cycle: while the log takes appends, a pass works at
// most a share of the wall time and rests the remainder, so that on a
// machine with few cores it leaves the CPU to the produce path (Kafka's
// cleaner runs in a background thread the operating system schedules
// below the request handlers; a goroutine has no such priority, so the
// cleaner yields by itself). A single goroutine runs a pass, so its
// working wall time is at least its CPU time: the share bounds the cleaner
// to that share of one core, and less when it waits for a processor or the
// disk. When no append came for busyHold the log is idle and a pass runs
// at full speed (the I/O limit still applies), and so does a pass over a
// partition whose oldest dirty record is older than the topic's
// max.compaction.lag.ms: that setting bounds how long a backlog the duty
// cycle lets grow under sustained load stays uncompacted.

const (
	// defaultCleanerDuty is CleanerOptions.MaxDutyCycle's default, chosen
	// from `sluice bench compaction` on 2 cores (docs/benchmarks-compaction.md).
	defaultCleanerDuty = 0.25
	// busyHold is how long after an append the log counts as busy: long
	// enough to span the stalls of a loaded producer (a commit waiting on
	// a slow fdatasync), during which a full-speed pass would take the disk
	// and CPU the producer is about to need.
	busyHold = time.Second
	// minRest is the shortest rest: smaller debts accumulate, so that the
	// cleaner works and rests in slices of several milliseconds rather
	// than sleeping after every batch.
	minRest = 5 * time.Millisecond
	// maxRest is the longest single rest: a larger debt (after a slow
	// fsync, say) is paid in several rests of at most that length, so that
	// the pass looks at the log between them and goes back to full speed
	// as soon as the appends stop.
	maxRest = time.Second
	// maxOwed caps the rest carried after a stall of the machine (a
	// suspended VM makes one step look like minutes of work), so that a
	// pass never owes more than that.
	maxOwed = 10 * time.Second
)

// dutyCycle is a pass's accounting of work and rest. The cleaner calls
// step before each batch it reads or writes and rests for what step
// returns, then calls rested, until step returns 0; and once more at the
// end of a pass, so that the work after its last batch (the last group's
// fsync, swap and index files, the checkpoint) is paid for too. It is
// used by one goroutine.
type dutyCycle struct {
	share   float64          // of wall time the pass may work while busy, in (0, 1)
	now     func() time.Time // time.Now, or a test's clock
	appends func() int64     // the log's append count (Log.appendCount)
	mark    time.Time        // end of the last rest (or the pass's start)
	owed    time.Duration    // rest owed and not yet taken
	seen    int64            // appends() at the last step
	busyTo  time.Time        // the log counts as busy until then
	worked  time.Duration    // total work while busy (tests, stats)
	restSum time.Duration    // total rest asked for
}

// newDutyCycle returns nil (no duty cycle) for a share of 1 or more.
func newDutyCycle(share float64, now func() time.Time, appends func() int64) *dutyCycle {
	if share >= 1 || share <= 0 {
		return nil
	}
	return &dutyCycle{share: share, now: now, appends: appends, mark: now(), seen: appends()}
}

// step accounts for the work since the last step or rest and returns how
// long the pass must rest now (0: go on).
func (d *dutyCycle) step() time.Duration {
	t := d.now()
	worked := t.Sub(d.mark)
	d.mark = t
	if n := d.appends(); n != d.seen {
		d.seen = n
		d.busyTo = t.Add(busyHold)
	}
	if !t.Before(d.busyTo) {
		d.owed = 0 // idle log: full speed, and no debt carried into the next busy spell
		return 0
	}
	d.worked += worked
	d.owed = min(d.owed+time.Duration(float64(worked)*(1-d.share)/d.share), maxOwed)
	if d.owed < minRest {
		return 0
	}
	r := min(d.owed, maxRest)
	d.owed -= r
	d.restSum += r
	return r
}

// rested marks the end of a rest (or of any wait that is not work, such as
// the I/O limiter's): the time since the last step is not counted as work.
func (d *dutyCycle) rested() {
	d.mark = d.now()
}
