package compactbench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/kafka/kbench"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/logstore/logbench"
)

// ProducePhase is one produce phase's throughput and what the cleaner did
// meanwhile.
type ProducePhase struct {
	Records          int     `json:"records"`
	Bytes            int64   `json:"bytes"` // key and value bytes
	Seconds          float64 `json:"seconds"`
	RecordsPerSec    float64 `json:"records_per_sec"`
	MBPerSec         float64 `json:"mb_per_sec"`
	LatencyP50Millis float64 `json:"latency_p50_ms"`
	LatencyP99Millis float64 `json:"latency_p99_ms"`
	// CPUSeconds is the process's user+system CPU time during the phase
	// (server, client and cleaner: they run in one process), and
	// CPUMicrosPerRecord that over Records: what the cleaner costs in CPU,
	// which other load on the machine does not change as it changes
	// throughput.
	CPUSeconds         float64 `json:"cpu_seconds"`
	CPUMicrosPerRecord float64 `json:"cpu_us_per_record"`
	// The cleaner's work while the phase's producers ran (zero without
	// the cleaner): passes completed, bytes, rests, the wall time the
	// duty cycle counted as work and the passes' own CPU time (the thread
	// that ran them). The work after the producers stopped, until the
	// pass then running ended, is in the Tail fields.
	CleanerPasses         int64   `json:"cleaner_passes"`
	CleanerRunSeconds     float64 `json:"cleaner_run_seconds"`  // from the loop's start to the end of its last pass
	CleanerBusySeconds    float64 `json:"cleaner_busy_seconds"` // inside passes that ran
	CleanerBytesRead      int64   `json:"cleaner_bytes_read"`
	CleanerBytesWritten   int64   `json:"cleaner_bytes_written"`
	CleanerRecordsRemoved int64   `json:"cleaner_records_removed"`
	// CleanerRestedSeconds is the time passes rested to leave the CPU to
	// the producers (CleanerOptions.MaxDutyCycle), summed over partitions.
	CleanerRestedSeconds float64 `json:"cleaner_rested_seconds"`
	CleanerWorkedSeconds float64 `json:"cleaner_worked_seconds"`
	CleanerCPUSeconds    float64 `json:"cleaner_cpu_seconds"`
	// TailSeconds is how long the cleaner ran after the producers
	// stopped (finishing its pass, at full speed on an idle log), and
	// TailBytesRead and TailCPUSeconds what it read and the CPU it took
	// meanwhile; none of it is in the phase's throughput or CPU.
	TailSeconds    float64 `json:"tail_seconds"`
	TailBytesRead  int64   `json:"tail_bytes_read"`
	TailCPUSeconds float64 `json:"tail_cpu_seconds"`
	// The closed segments' bytes not yet compacted and their share of all
	// closed segments' bytes, summed over the partitions, at the start and
	// the end of the phase: whether the cleaner keeps up.
	DirtyBytesStart int64   `json:"dirty_bytes_start"`
	DirtyRatioStart float64 `json:"dirty_ratio_start"`
	DirtyBytesEnd   int64   `json:"dirty_bytes_end"`
	DirtyRatioEnd   float64 `json:"dirty_ratio_end"`
}

// ProduceResult compares produce throughput without and with the cleaner.
// The phases run A-B-A on the same topic: without, with, then without
// again, so that what changes over the run by itself (the log and the
// page cache growing, the disk's writeback) weighs on both sides.
type ProduceResult struct {
	Without      ProducePhase `json:"without_cleaner"`
	With         ProducePhase `json:"with_cleaner"`
	WithoutAfter ProducePhase `json:"without_cleaner_after"`
	// Ratio is With.RecordsPerSec over the mean of the two phases
	// without the cleaner.
	Ratio float64 `json:"ratio"`
	// RatioFirst is With.RecordsPerSec / Without.RecordsPerSec: the
	// figure before the third phase existed, for comparison.
	RatioFirst float64 `json:"ratio_first"`
	// Drift is WithoutAfter.RecordsPerSec / Without.RecordsPerSec: how
	// much the run changed by itself between the phases without the
	// cleaner (1: not at all). The farther from 1, the less the ratio
	// says.
	Drift float64 `json:"drift"`
}

const produceTopic = "compaction-bench-produce"

// runProduce starts a Kafka listener in-process and produces into a
// compacted topic with the cleaner idle, then with it running (forced
// passes back to back, or the background cleaner), then idle again.
func runProduce(ctx context.Context, cfg Config, work string) (ProduceResult, error) {
	var res ProduceResult
	// No background cleaner: the first phase has none, the second forces
	// passes itself.
	srv, err := kbench.StartServer(kbench.ServerConfig{
		DataDir: filepath.Join(work, "produce"),
		Cleaner: logstore.CleanerOptions{Interval: -1, DedupeBufferBytes: cfg.DedupeBufferBytes, IOBytesPerSecond: cfg.IOBytesPerSecond, MaxDutyCycle: cfg.MaxDutyCycle},
	})
	if err != nil {
		return res, err
	}
	defer srv.Close()
	kc := kbench.Config{
		Broker:     srv.Addr,
		Topic:      produceTopic,
		Partitions: cfg.Partitions,
		TopicConfigs: map[string]*string{
			"cleanup.policy": ptr("compact"),
			"segment.bytes":  ptr(strconv.FormatInt(cfg.SegmentBytes, 10)),
		},
		RecordSize: cfg.RecordSize,
		// kbench's 1 MiB batches, unless a segment could not hold one
		// (the server refuses a batch larger than segment.bytes).
		BatchBytes: int32(min(1<<20, cfg.SegmentBytes/2)),
		Keys:       cfg.Keys,
		Duration:   cfg.Duration,
	}
	if cfg.CleanerMode == CleanerBackground {
		kc.TopicConfigs["min.cleanable.dirty.ratio"] = ptr(strconv.FormatFloat(cfg.DirtyRatio, 'g', -1, 64))
	}
	if err := kbench.CreateTopic(ctx, srv.Addr, kc); err != nil {
		return res, err
	}
	t, err := srv.Log.Topic(produceTopic)
	if err != nil {
		return res, err
	}
	var parts []*logstore.Partition
	for i := range t.NumPartitions() {
		p, err := t.Partition(i)
		if err != nil {
			return res, err
		}
		parts = append(parts, p)
	}

	settle := func() error {
		if cfg.Settle <= 0 {
			return nil
		}
		cfg.Progress(fmt.Sprintf("settling for %v: nothing runs, the disk catches up", cfg.Settle))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.Settle):
			return nil
		}
	}

	cfg.Progress(fmt.Sprintf("producing for %v without the cleaner", cfg.Duration))
	cpu0 := logbench.CPUTime()
	without, err := kbench.Produce(ctx, srv.Addr, kc)
	if err != nil {
		return res, fmt.Errorf("without the cleaner: %w", err)
	}
	res.Without = phaseOf(without, logbench.CPUTime()-cpu0)

	if cfg.CatchUp {
		cfg.Progress("compacting the first phase's segments before the second")
		for _, p := range parts {
			if _, err := p.Compact(time.Now(), true); err != nil {
				return res, fmt.Errorf("catching up: %w", err)
			}
		}
	}
	if err := settle(); err != nil {
		return res, err
	}
	cfg.Progress(fmt.Sprintf("producing for %v with the cleaner running", cfg.Duration))
	before := cleanerTotals(parts)
	dirtyStart, ratioStart := dirtyTotals(parts)
	cpu0 = logbench.CPUTime()
	cl := startCleaner(cfg, srv.Log, parts)
	with, err := kbench.Produce(ctx, srv.Addr, kc)
	// The phase ends with its producers: what the cleaner does after
	// (finishing its pass at full speed) is the tail, reported apart.
	withCPU := logbench.CPUTime() - cpu0
	atEnd, tail0 := cleanerTotals(parts), time.Now()
	dirtyEnd, ratioEnd := dirtyTotals(parts)
	run, busy, cerr := cl.stop()
	if err != nil {
		return res, fmt.Errorf("with the cleaner: %w", err)
	}
	if cerr != nil {
		return res, fmt.Errorf("cleaner: %w", cerr)
	}
	after := cleanerTotals(parts)
	res.With = phaseOf(with, withCPU)
	res.With.CleanerPasses = atEnd.Passes - before.Passes
	res.With.CleanerRunSeconds = run.Seconds()
	res.With.CleanerBusySeconds = busy.Seconds()
	res.With.CleanerBytesRead = atEnd.BytesRead - before.BytesRead
	res.With.CleanerBytesWritten = atEnd.BytesWritten - before.BytesWritten
	res.With.CleanerRecordsRemoved = atEnd.RecordsRemoved - before.RecordsRemoved
	res.With.CleanerRestedSeconds = (atEnd.Rested - before.Rested).Seconds()
	res.With.CleanerWorkedSeconds = (atEnd.Worked - before.Worked).Seconds()
	res.With.CleanerCPUSeconds = (atEnd.CPU - before.CPU).Seconds()
	res.With.TailSeconds = time.Since(tail0).Seconds()
	res.With.TailBytesRead = after.BytesRead - atEnd.BytesRead
	res.With.TailCPUSeconds = (after.CPU - atEnd.CPU).Seconds()
	res.With.DirtyBytesStart, res.With.DirtyRatioStart = dirtyStart, ratioStart
	res.With.DirtyBytesEnd, res.With.DirtyRatioEnd = dirtyEnd, ratioEnd
	res.RatioFirst = res.With.RecordsPerSec / res.Without.RecordsPerSec

	if err := settle(); err != nil {
		return res, err
	}
	cfg.Progress(fmt.Sprintf("producing for %v without the cleaner again", cfg.Duration))
	cpu0 = logbench.CPUTime()
	again, err := kbench.Produce(ctx, srv.Addr, kc)
	if err != nil {
		return res, fmt.Errorf("without the cleaner, after: %w", err)
	}
	res.WithoutAfter = phaseOf(again, logbench.CPUTime()-cpu0)
	res.Ratio = res.With.RecordsPerSec / ((res.Without.RecordsPerSec + res.WithoutAfter.RecordsPerSec) / 2)
	res.Drift = res.WithoutAfter.RecordsPerSec / res.Without.RecordsPerSec
	return res, nil
}

func ptr(s string) *string { return &s }

// phaseOf is the phase of r, which took cpu of the process's CPU time.
func phaseOf(r kbench.Result, cpu time.Duration) ProducePhase {
	var perRecord float64
	if r.Produced > 0 {
		perRecord = float64(cpu.Microseconds()) / float64(r.Produced)
	}
	return ProducePhase{
		CPUSeconds:         cpu.Seconds(),
		CPUMicrosPerRecord: perRecord,
		Records:            r.Produced,
		Bytes:              r.ProducedBytes,
		Seconds:            r.ProduceDuration.Seconds(),
		RecordsPerSec:      r.ProduceRate,
		MBPerSec:           r.ProduceMBps,
		LatencyP50Millis:   float64(r.LatencyP50) / float64(time.Millisecond),
		LatencyP99Millis:   float64(r.LatencyP99) / float64(time.Millisecond),
	}
}

// cleanerTotals sums the cleaner counters of parts.
func cleanerTotals(parts []*logstore.Partition) logstore.CleanerStats {
	var s logstore.CleanerStats
	for _, p := range parts {
		c := p.CleanerStats()
		s.Passes += c.Passes
		s.BytesRead += c.BytesRead
		s.BytesWritten += c.BytesWritten
		s.RecordsRemoved += c.RecordsRemoved
		s.Rested += c.Rested
		s.Worked += c.Worked
		s.CPU += c.CPU
	}
	return s
}

// dirtyTotals sums the closed segments' uncompacted bytes of parts and
// returns them with their share of all closed segments' bytes.
func dirtyTotals(parts []*logstore.Partition) (dirty int64, ratio float64) {
	var all int64
	for _, p := range parts {
		c, d := p.DirtyBytes()
		dirty += d
		all += c + d
	}
	if all > 0 {
		ratio = float64(dirty) / float64(all)
	}
	return dirty, ratio
}

// idleBackoff is how long the forcing loop waits when no partition had a
// closed dirty segment to clean (a benchmark's pacing, not synchronisation).
const idleBackoff = 10 * time.Millisecond

// cleanerLoop runs the cleaner during the second phase, until stopped:
// forced passes over the partitions round after round, or Log.Clean (what
// the background cleaner runs: a pass where the dirty ratio calls for one)
// every interval.
type cleanerLoop struct {
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
	busy  time.Duration
	err   error
}

func startCleaner(cfg Config, l *logstore.Log, parts []*logstore.Partition) *cleanerLoop {
	c := &cleanerLoop{start: time.Now(), done: make(chan struct{})}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if cfg.CleanerMode == CleanerBackground {
			c.background(l, cfg.CleanerInterval)
		} else {
			c.forced(parts)
		}
	}()
	return c
}

func (c *cleanerLoop) forced(parts []*logstore.Partition) {
	for {
		ranAny := false
		for _, p := range parts {
			select {
			case <-c.done:
				return
			default:
			}
			t0 := time.Now()
			ran, err := p.Compact(t0, true)
			if err != nil {
				if !errors.Is(err, logstore.ErrClosed) {
					c.err = err
				}
				return
			}
			if ran {
				ranAny = true
				c.busy += time.Since(t0)
			}
		}
		if !ranAny && !c.wait(idleBackoff) {
			return
		}
	}
}

func (c *cleanerLoop) background(l *logstore.Log, every time.Duration) {
	for c.wait(every) {
		t0 := time.Now()
		if err := l.Clean(t0); err != nil {
			if !errors.Is(err, logstore.ErrClosed) {
				c.err = err
			}
			return
		}
		c.busy += time.Since(t0)
	}
}

// wait waits d and reports false if the loop was stopped meanwhile.
func (c *cleanerLoop) wait(d time.Duration) bool {
	select {
	case <-c.done:
		return false
	case <-time.After(d):
		return true
	}
}

// stop ends the loop after its current pass and reports how long the loop
// ran, the time spent cleaning and the first error.
func (c *cleanerLoop) stop() (run, busy time.Duration, err error) {
	close(c.done)
	c.wg.Wait()
	return time.Since(c.start), c.busy, c.err
}
