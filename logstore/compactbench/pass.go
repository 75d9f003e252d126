package compactbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/sluicehq/sluice/kafka/kbench"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/logstore/logbench"
	"github.com/sluicehq/sluice/record"
)

// PassResult is the outcome of the timed cleaner pass.
type PassResult struct {
	RecordsAppended int64   `json:"records_appended"`
	BytesAppended   int64   `json:"bytes_appended"`
	DistinctKeys    int64   `json:"distinct_keys"` // keys the fill drew at least once
	FillSeconds     float64 `json:"fill_seconds"`
	SegmentsBefore  int     `json:"segments_before"` // closed segments the pass could clean
	// Evicted reports that the topic's files were dropped from the page
	// cache before the pass.
	Evicted        bool    `json:"evicted"`
	Passes         int64   `json:"passes"` // forced passes until the log was clean
	Seconds        float64 `json:"seconds"`
	CPUSeconds     float64 `json:"cpu_seconds"` // user+system time of the process meanwhile
	BytesRead      int64   `json:"bytes_read"`
	BytesWritten   int64   `json:"bytes_written"`
	RecordsRemoved int64   `json:"records_removed"`
	// RestedSeconds is what the duty cycle rested (0: the log takes no
	// appends during the pass, which runs at full speed).
	RestedSeconds float64 `json:"rested_seconds"`
	ReadMBPerSec  float64 `json:"read_mb_per_sec"`
	WriteMBPerSec float64 `json:"write_mb_per_sec"`
	IOMBPerSec    float64 `json:"read_write_mb_per_sec"` // (read + written) / seconds
	// IOVsDisk is IOMBPerSec over the disk's sequential write bandwidth
	// measured the same run as dd conv=fdatasync does (DiskResult.
	// DDWriteMBPerSec), IOVsSyncedDisk over that with an fdatasync every
	// MiB (0 without the disk test).
	IOVsDisk       float64 `json:"read_write_vs_disk"`
	IOVsSyncedDisk float64 `json:"read_write_vs_disk_fdatasync_per_mib"`
	RecordsAfter   int64   `json:"records_after"` // records a reader of the whole log sees afterwards
	BytesAfter     int64   `json:"bytes_after"`
	SegmentsAfter  int     `json:"segments_after"` // closed segments after the passes
}

const passTopic = "compaction-bench"

// runPass fills a compacted topic, rolls it, times forced passes until
// it is clean and checks what is left.
func runPass(ctx context.Context, cfg Config, work string) (PassResult, error) {
	var res PassResult
	dir := filepath.Join(work, "pass")
	defer os.RemoveAll(dir)
	l, err := logstore.Open(logstore.Options{
		Dir:                    dir,
		Logger:                 slog.New(slog.DiscardHandler),
		RetentionCheckInterval: -1,
		Cleaner:                logstore.CleanerOptions{Interval: -1, DedupeBufferBytes: cfg.DedupeBufferBytes, IOBytesPerSecond: cfg.IOBytesPerSecond, MaxDutyCycle: cfg.MaxDutyCycle},
	})
	if err != nil {
		return res, err
	}
	defer l.Close()
	tc := logstore.TopicConfig{
		Partitions:   1,
		Cleanup:      logstore.CleanupCompact,
		SegmentBytes: cfg.SegmentBytes,
		// The fill need not be durable record by record: every roll
		// fsyncs the segment it seals, the last one included.
		Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever},
	}
	if err := l.CreateTopic(passTopic, tc); err != nil {
		return res, err
	}
	t, err := l.Topic(passTopic)
	if err != nil {
		return res, err
	}
	p, err := t.Partition(0)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := fill(ctx, cfg, p, &res); err != nil {
		return res, err
	}
	// segment.ms rolls the active segment (and fsyncs it): ask for it as
	// if that time had passed, so that every record is cleanable.
	if err := l.EnforceRetention(time.Now().Add(t.Config().SegmentAgeOrDefault() + time.Minute)); err != nil {
		return res, fmt.Errorf("roll: %w", err)
	}
	res.FillSeconds = time.Since(start).Seconds()
	st := p.Stats()
	res.SegmentsBefore = st.Segments - 1
	if !cfg.Warm {
		cfg.Progress("dropping the topic's files from the page cache")
		if err := evictDir(dir); err != nil {
			return res, err
		}
		res.Evicted = true
	}

	cfg.Progress(fmt.Sprintf("cleaning %.1f MB in %d segments", mb(st.Bytes), res.SegmentsBefore))
	if cfg.PassCPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.PassCPUProfile); err != nil {
			return res, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	before := p.CleanerStats()
	cpu0 := logbench.CPUTime()
	start = time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ran, err := p.Compact(time.Now(), true)
		if err != nil {
			return res, err
		}
		if !ran {
			break
		}
		res.Passes++
		cfg.Progress(fmt.Sprintf("pass %d done after %v", res.Passes, time.Since(start).Round(time.Millisecond)))
	}
	secs := time.Since(start).Seconds()
	if cfg.PassCPUProfile != nil {
		pprof.StopCPUProfile()
	}
	res.CPUSeconds = (logbench.CPUTime() - cpu0).Seconds()
	after := p.CleanerStats()
	if res.Passes == 0 {
		return res, errors.New("the cleaner found nothing to clean")
	}
	res.Seconds = secs
	res.BytesRead = after.BytesRead - before.BytesRead
	res.BytesWritten = after.BytesWritten - before.BytesWritten
	res.RecordsRemoved = after.RecordsRemoved - before.RecordsRemoved
	res.RestedSeconds = (after.Rested - before.Rested).Seconds()
	res.ReadMBPerSec = mb(res.BytesRead) / secs
	res.WriteMBPerSec = mb(res.BytesWritten) / secs
	res.IOMBPerSec = mb(res.BytesRead+res.BytesWritten) / secs

	st = p.Stats()
	res.BytesAfter, res.SegmentsAfter = st.Bytes, st.Segments-1
	cfg.Progress("reading the compacted log back")
	n, err := checkCompacted(p)
	if err != nil {
		return res, err
	}
	res.RecordsAfter = n
	if n != res.DistinctKeys {
		return res, fmt.Errorf("after compaction the log holds %d records, want one per distinct key (%d)", n, res.DistinctKeys)
	}
	return res, nil
}

// fill appends cfg.Bytes of batches of keyed records with keys drawn at
// random among cfg.Keys.
func fill(ctx context.Context, cfg Config, p *logstore.Partition, res *PassResult) error {
	keys := make([][]byte, cfg.Keys)
	for i := range keys {
		keys[i] = kbench.KeyFor(i)
	}
	seen := make([]bool, cfg.Keys)
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, cfg.RecordSize)
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	recs := make([]record.Record, cfg.RecordsPerBatch)
	var batch []byte
	nextReport := cfg.Bytes / 10
	for res.BytesAppended < cfg.Bytes {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		for j := range recs {
			k := rng.IntN(cfg.Keys)
			if !seen[k] {
				seen[k] = true
				res.DistinctKeys++
			}
			recs[j] = record.Record{Timestamp: now, Key: keys[k], Value: value}
		}
		var err error
		if batch, err = record.AppendBatch(batch[:0], recs, record.BatchOptions{}); err != nil {
			return err
		}
		if _, err := p.Append(ctx, batch); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		res.RecordsAppended += int64(len(recs))
		res.BytesAppended += int64(len(batch))
		if res.BytesAppended >= nextReport {
			cfg.Progress(fmt.Sprintf("filled %.0f of %.0f MB", mb(res.BytesAppended), mb(cfg.Bytes)))
			nextReport += cfg.Bytes / 10
		}
	}
	return nil
}

// checkCompacted reads the whole partition and counts its records, failing
// if a key appears twice.
func checkCompacted(p *logstore.Partition) (int64, error) {
	start, hw, _ := p.Offsets()
	seen := make(map[string]struct{})
	var n int64
	for off := start; off < hw; {
		r, err := p.Read(off, 8<<20)
		if err != nil {
			return n, err
		}
		if len(r.Batches) == 0 {
			return n, fmt.Errorf("read at offset %d returned nothing below the high watermark %d", off, hw)
		}
		err = record.Batches(r.Batches, func(h record.Header, _ []byte) error {
			off = h.LastOffset() + 1
			return nil
		})
		if err != nil {
			return n, err
		}
		err = record.Decode(r.Batches, func(_ record.Header, rec record.Record) error {
			if _, dup := seen[string(rec.Key)]; dup {
				return fmt.Errorf("key %q still appears twice (offset %d)", rec.Key, rec.Offset)
			}
			seen[string(rec.Key)] = struct{}{}
			n++
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
