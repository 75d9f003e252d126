package compactbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/logstore/logbench"
)

// Config describes one run. Zero fields take the defaults named on each.
type Config struct {
	// Dir is where the run's data goes: a fresh subdirectory of it,
	// removed at the end (default os.TempDir()). Point it at the disk you
	// care about; the disk test writes there too.
	Dir string `json:"dir"`
	// Keys is the number of distinct keys (default 100,000); records pick
	// one at random (pass) or in turn (produce).
	Keys int `json:"keys"`
	// RecordSize is the value size in bytes (default 1024).
	RecordSize int `json:"record_size"`
	// RecordsPerBatch is the number of records per appended batch when
	// the pass's topic is filled (default 100).
	RecordsPerBatch int `json:"records_per_batch"`
	// Bytes is how much the pass's topic is filled with, in batch bytes
	// (default 1 GiB).
	Bytes int64 `json:"bytes"`
	// SegmentBytes is both topics' segment.bytes (default 32 MiB).
	SegmentBytes int64 `json:"segment_bytes"`
	// DedupeBufferBytes is the cleaner's offset map memory
	// (log.cleaner.dedupe.buffer.size; 0 = the log's default).
	DedupeBufferBytes int `json:"dedupe_buffer_bytes"`
	// IOBytesPerSecond throttles the cleaner (0 = unlimited).
	IOBytesPerSecond float64 `json:"io_bytes_per_second"`
	// MaxDutyCycle is the cleaner's duty cycle while the log takes
	// appends (CleanerOptions.MaxDutyCycle; 0 = the log's default, 1 =
	// none). The timed pass runs on an idle log, at full speed.
	MaxDutyCycle float64 `json:"max_duty_cycle"`
	// Warm keeps the pass's topic in the page cache. By default its files
	// are dropped from the cache (fadvise DONTNEED, after the roll's fsync)
	// so that the pass reads from the disk, as it does for a log larger
	// than memory.
	Warm bool `json:"warm"`
	// DiskMaxTime bounds the disk test (default 10 s; it writes 1 GiB at
	// most, in 1 MiB blocks with an fdatasync after each).
	DiskMaxTime time.Duration `json:"disk_max_time_ns"`
	// Duration is the length of each produce phase (default 10 s).
	Duration time.Duration `json:"duration_ns"`
	// Partitions of the produce topic (default 4).
	Partitions int32 `json:"partitions"`
	// CleanerMode is how the cleaner runs in the second produce phase:
	// CleanerForced (the default) forces passes over the partitions back to
	// back, so that the cleaner never rests; CleanerBackground calls
	// Log.Clean, what the background cleaner runs, every CleanerInterval
	// (default 1 s) on a topic with min.cleanable.dirty.ratio DirtyRatio
	// (default the topic default, Kafka's 0.5: with the default sizes,
	// 32 MiB segments over about 25 MiB of latest values per partition,
	// one closed segment is past it, so a lower ratio does not make
	// passes more frequent, only the topic less like a user's).
	CleanerMode     string        `json:"cleaner_mode"`
	CleanerInterval time.Duration `json:"cleaner_interval_ns,omitempty"`
	DirtyRatio      float64       `json:"dirty_ratio,omitempty"`
	// CatchUp compacts what the first produce phase left before the
	// second starts (untimed, no producers): the second phase then
	// measures the cost of a cleaner that keeps up with what is produced
	// meanwhile, as a background cleaner running all along does, rather
	// than one working off the first phase's backlog too.
	CatchUp bool `json:"catch_up"`
	// Settle is a pause between the produce phases during which nothing
	// runs (no producer, no cleaner), so that the disk finishes what the
	// previous phase left it (the device's own write-back) before the next
	// phase is timed (0 = none). Result.Produce.Drift says whether the
	// phases without the cleaner still differ.
	Settle time.Duration `json:"settle_ns,omitempty"`
	// SkipDisk, SkipPass and SkipProduce leave out a part.
	SkipDisk    bool `json:"skip_disk"`
	SkipPass    bool `json:"skip_pass"`
	SkipProduce bool `json:"skip_produce"`
	// Progress, when set, receives a line at every step of the run.
	Progress func(msg string) `json:"-"`
	// PassCPUProfile, when set, receives a CPU profile (pprof) of the
	// timed passes only.
	PassCPUProfile io.Writer `json:"-"`
}

func (c *Config) defaults() {
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Keys <= 0 {
		c.Keys = 100_000
	}
	if c.RecordSize <= 0 {
		c.RecordSize = 1024
	}
	if c.RecordsPerBatch <= 0 {
		c.RecordsPerBatch = 100
	}
	if c.Bytes <= 0 {
		c.Bytes = 1 << 30
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 32 << 20
	}
	if c.DiskMaxTime <= 0 {
		c.DiskMaxTime = 10 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.CleanerMode == "" {
		c.CleanerMode = CleanerForced
	}
	if c.CleanerMode == CleanerBackground {
		if c.CleanerInterval <= 0 {
			c.CleanerInterval = time.Second
		}
		if c.DirtyRatio <= 0 {
			c.DirtyRatio = logstore.DefaultMinCleanableDirtyRatio
		}
	} else {
		c.CleanerInterval, c.DirtyRatio = 0, 0
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
}

// The cleaner modes of the second produce phase (Config.CleanerMode).
const (
	CleanerForced     = "forced"
	CleanerBackground = "background"
)

// Result is the outcome of a run; parts left out are nil.
type Result struct {
	Config  Config         `json:"config"`
	Disk    *DiskResult    `json:"disk,omitempty"`
	Pass    *PassResult    `json:"pass,omitempty"`
	Produce *ProduceResult `json:"produce,omitempty"`
}

// DiskResult is the disk's own limits, measured in the run's directory.
type DiskResult struct {
	// DDWriteMBPerSec is `dd bs=1M count=1024 conv=fdatasync`: 1 GiB
	// written in 1 MiB blocks, one fdatasync at the end, timed with it.
	// The pass's main ratio uses it.
	DDWriteMBPerSec  float64 `json:"dd_write_fdatasync_mb_per_sec"`
	SeqWriteMBPerSec float64 `json:"seq_write_fdatasync_mb_per_sec"` // 1 MiB appends, fdatasync after each
	FsyncP50Micros   float64 `json:"small_write_fdatasync_p50_us"`
	FsyncP99Micros   float64 `json:"small_write_fdatasync_p99_us"`
}

// Run performs the parts of the benchmark that cfg does not skip.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	if cfg.CleanerMode != CleanerForced && cfg.CleanerMode != CleanerBackground {
		return Result{Config: cfg}, fmt.Errorf("cleaner mode %q: want %s or %s", cfg.CleanerMode, CleanerForced, CleanerBackground)
	}
	res := Result{Config: cfg}
	work, err := os.MkdirTemp(cfg.Dir, "sluice-bench-compaction-")
	if err != nil {
		return res, fmt.Errorf("bench directory: %w", err)
	}
	defer os.RemoveAll(work)
	if !cfg.SkipDisk {
		cfg.Progress("measuring the disk: 1 GiB in 1 MiB writes, one fdatasync at the end (dd conv=fdatasync)")
		dd, err := logbench.MeasureSeqWrite(ctx, logbench.DiskConfig{Dir: work, MaxTime: cfg.DiskMaxTime, SyncEvery: 1 << 30})
		if err != nil {
			return res, fmt.Errorf("measure disk: %w", err)
		}
		cfg.Progress("measuring the disk: 1 MiB appends with fdatasync after each, up to 1 GiB")
		d, err := logbench.MeasureDisk(ctx, logbench.DiskConfig{Dir: work, MaxTime: cfg.DiskMaxTime})
		if err != nil {
			return res, fmt.Errorf("measure disk: %w", err)
		}
		res.Disk = &DiskResult{
			DDWriteMBPerSec:  dd,
			SeqWriteMBPerSec: d.SeqWriteMBPerSec,
			FsyncP50Micros:   float64(d.FsyncP50) / float64(time.Microsecond),
			FsyncP99Micros:   float64(d.FsyncP99) / float64(time.Microsecond),
		}
	}
	if !cfg.SkipPass {
		p, err := runPass(ctx, cfg, work)
		if err != nil {
			return res, fmt.Errorf("cleaner pass: %w", err)
		}
		if d := res.Disk; d != nil && d.SeqWriteMBPerSec > 0 && d.DDWriteMBPerSec > 0 {
			p.IOVsDisk = p.IOMBPerSec / d.DDWriteMBPerSec
			p.IOVsSyncedDisk = p.IOMBPerSec / d.SeqWriteMBPerSec
		}
		res.Pass = &p
	}
	if !cfg.SkipProduce {
		p, err := runProduce(ctx, cfg, work)
		if err != nil {
			return res, fmt.Errorf("produce under compaction: %w", err)
		}
		res.Produce = &p
	}
	return res, nil
}

// String renders the result as a summary.
func (r Result) String() string {
	var b strings.Builder
	c := r.Config
	if d := r.Disk; d != nil {
		fmt.Fprintf(&b, "disk: sequential write, 1 GiB then fdatasync (dd bs=1M count=1024 conv=fdatasync): %.1f MB/s; fdatasync after every 1 MiB: %.1f MB/s; small write+fdatasync p50 %.0f µs p99 %.0f µs\n",
			d.DDWriteMBPerSec, d.SeqWriteMBPerSec, d.FsyncP50Micros, d.FsyncP99Micros)
	}
	if p := r.Pass; p != nil {
		cache := "evicted from the page cache before the pass"
		if c.Warm {
			cache = "left in the page cache"
		}
		fmt.Fprintf(&b, "cleaner pass: %d records (%.1f MB of batches, %d B values, %d/batch) over %d keys in %d segments of %d B, %s\n",
			p.RecordsAppended, mb(p.BytesAppended), c.RecordSize, c.RecordsPerBatch, c.Keys, p.SegmentsBefore, c.SegmentBytes, cache)
		fmt.Fprintf(&b, "  %d pass(es) in %.2f s (CPU %.2f s, rested %.2f s): read %.1f MB/s, wrote %.1f MB/s, read+write %.1f MB/s; %d records removed\n",
			p.Passes, p.Seconds, p.CPUSeconds, p.RestedSeconds, p.ReadMBPerSec, p.WriteMBPerSec, p.IOMBPerSec, p.RecordsRemoved)
		fmt.Fprintf(&b, "  read %.1f MB, wrote %.1f MB; left %d records (%d distinct keys written), %.1f MB in %d closed segment(s)\n",
			mb(p.BytesRead), mb(p.BytesWritten), p.RecordsAfter, p.DistinctKeys, mb(p.BytesAfter), p.SegmentsAfter)
		if r.Disk != nil {
			fmt.Fprintf(&b, "  cleaner read+write rate / disk sequential write (dd conv=fdatasync): %.0f %% (target >= 50 %%); / fdatasync every 1 MiB: %.0f %%\n", 100*p.IOVsDisk, 100*p.IOVsSyncedDisk)
		}
	}
	if p := r.Produce; p != nil {
		settle := ""
		if c.Settle > 0 {
			settle = fmt.Sprintf(", %v pause between phases", c.Settle)
		}
		fmt.Fprintf(&b, "produce through the Kafka protocol: %d B values over %d keys, %d partitions, acks=-1, %v per phase%s, same compacted topic\n",
			c.RecordSize, c.Keys, c.Partitions, c.Duration, settle)
		phase := func(name string, ph ProducePhase) {
			fmt.Fprintf(&b, "  %-16s %10.0f records/s %8.1f MB/s  p50 %.2f ms p99 %.2f ms (%d records; process CPU %.2f s, %.2f us/record)\n",
				name, ph.RecordsPerSec, ph.MBPerSec, ph.LatencyP50Millis, ph.LatencyP99Millis, ph.Records, ph.CPUSeconds, ph.CPUMicrosPerRecord)
		}
		phase("without cleaner:", p.Without)
		phase("with cleaner:", p.With)
		phase("without, again:", p.WithoutAfter)
		w := p.With
		mode := "forced passes back to back"
		if c.CleanerMode == CleanerBackground {
			mode = fmt.Sprintf("Log.Clean every %v, min.cleanable.dirty.ratio %g", c.CleanerInterval, c.DirtyRatio)
		}
		duty := "the log's default duty cycle"
		if c.MaxDutyCycle > 0 {
			duty = fmt.Sprintf("duty cycle %g", c.MaxDutyCycle)
		}
		fmt.Fprintf(&b, "  cleaner while the producers ran (%s, %s): %d pass(es) completed; worked %.1f s (CPU %.1f s) and rested %.1f s for the producers; read %.1f MB, wrote %.1f MB, removed %d records\n",
			mode, duty, w.CleanerPasses, w.CleanerWorkedSeconds, w.CleanerCPUSeconds, w.CleanerRestedSeconds, mb(w.CleanerBytesRead), mb(w.CleanerBytesWritten), w.CleanerRecordsRemoved)
		fmt.Fprintf(&b, "  cleaner after they stopped, finishing its pass at full speed: %.1f s, read %.1f MB, CPU %.1f s (in no phase's figures); inside passes %.1f s of the %.1f s it ran\n",
			w.TailSeconds, mb(w.TailBytesRead), w.TailCPUSeconds, w.CleanerBusySeconds, w.CleanerRunSeconds)
		fmt.Fprintf(&b, "  closed segments not yet compacted: %.1f MB (dirty ratio %.2f) at the phase's start, %.1f MB (%.2f) at its end\n",
			mb(w.DirtyBytesStart), w.DirtyRatioStart, mb(w.DirtyBytesEnd), w.DirtyRatioEnd)
		fmt.Fprintf(&b, "  with / mean of the two phases without: %.0f %% of the records/s (target >= 80 %%); with / the first phase only: %.0f %%; drift (third phase / first): %.0f %%\n", 100*p.Ratio, 100*p.RatioFirst, 100*p.Drift)
	}
	return b.String()
}

func mb(n int64) float64 { return float64(n) / 1e6 }
