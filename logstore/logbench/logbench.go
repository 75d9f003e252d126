package logbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// Config describes one benchmark run.
type Config struct {
	// Dir is the data directory; "" = a temporary directory removed afterwards.
	// Either way the run uses a fresh topic, deleted at the end.
	Dir string
	// RecordSize is the value size of each record in bytes (default 100).
	RecordSize int
	// RecordsPerBatch is how many records each appended batch holds, as a
	// Kafka client batches them (default 100).
	RecordsPerBatch int
	// Partitions is the number of partitions appended to (default 1); the
	// producers are spread over them round robin.
	Partitions int
	// Producers is the number of concurrent appenders (default 16).
	Producers int
	// Fsync is the topic's durability policy (default always).
	Fsync logstore.FsyncPolicy
	// Duration bounds the append phase (default 5s); Records, when > 0,
	// bounds it by the number of records instead (whichever comes first).
	Duration time.Duration
	Records  int64
	// Read, when set, reads everything back after the append phase and
	// reports read throughput.
	Read bool
	// SegmentBytes is the topic's segment size (0 = the log's default).
	SegmentBytes int64
}

// Result holds the measurements of a run.
type Result struct {
	Config          Config
	Records         int64         // records appended and acknowledged
	Batches         int64         // batches appended
	Bytes           int64         // bytes appended (whole batches)
	Elapsed         time.Duration // append phase
	RecordsPerSec   float64
	MBPerSec        float64 // MB = 10^6 bytes of batches
	AppendP50       time.Duration
	AppendP99       time.Duration
	Syncs           int64         // fsyncs (group commits) done by the log
	RecordsPerSync  float64       // records acknowledged per fsync
	CPUTime         time.Duration // user+system CPU time of the process during the append phase
	RecordsPerCPUS  float64       // records appended per CPU-second: the rate one fully available core sustains if the disk keeps up
	ReadRecords     int64
	ReadElapsed     time.Duration
	ReadRecordsPerS float64
	ReadMBPerSec    float64
}

func (c *Config) defaults() {
	if c.RecordSize <= 0 {
		c.RecordSize = 100
	}
	if c.RecordsPerBatch <= 0 {
		c.RecordsPerBatch = 100
	}
	if c.Partitions <= 0 {
		c.Partitions = 1
	}
	if c.Producers <= 0 {
		c.Producers = 16
	}
	if c.Fsync.Mode == logstore.FsyncDefault {
		c.Fsync = logstore.FsyncPolicy{Mode: logstore.FsyncAlways}
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
}

// Run appends (and optionally reads) in-process as described by cfg.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-log-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	l, err := logstore.Open(logstore.Options{
		Dir:                    dir,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		RetentionCheckInterval: -1,
	})
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	topic := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if err := l.CreateTopic(topic, logstore.TopicConfig{Partitions: int32(cfg.Partitions), Fsync: cfg.Fsync, SegmentBytes: cfg.SegmentBytes}); err != nil {
		return Result{}, err
	}
	// The benchmark's data (gigabytes at full speed) never outlives the run.
	defer l.DeleteTopic(topic)
	t, err := l.Topic(topic)
	if err != nil {
		return Result{}, err
	}
	// One pre-encoded batch per producer, appended again and again (the log
	// never modifies the caller's bytes); every append verifies its CRC.
	batches := make([][]byte, cfg.Producers)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range batches {
		recs := make([]record.Record, cfg.RecordsPerBatch)
		now := time.Now().UnixMilli()
		for j := range recs {
			v := make([]byte, cfg.RecordSize)
			for k := range v {
				v[k] = byte(rng.Uint32())
			}
			recs[j] = record.Record{Timestamp: now, Value: v}
		}
		b, err := record.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			return Result{}, err
		}
		batches[i] = b
	}

	var (
		records, nbatches, nbytes atomic.Int64
		firstErr                  error
		errOnce                   sync.Once
		wg                        sync.WaitGroup
	)
	lat := make([][]time.Duration, cfg.Producers)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	cpu0 := CPUTime()
	start := time.Now()
	for w := 0; w < cfg.Producers; w++ {
		p, err := t.Partition(int32(w % cfg.Partitions))
		if err != nil {
			return Result{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := batches[w]
			for runCtx.Err() == nil {
				if cfg.Records > 0 && records.Load() >= cfg.Records {
					return
				}
				t0 := time.Now()
				if _, err := p.Append(runCtx, b); err != nil {
					if runCtx.Err() == nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				records.Add(int64(cfg.RecordsPerBatch))
				nbatches.Add(1)
				nbytes.Add(int64(len(b)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := CPUTime() - cpu0
	if firstErr != nil {
		return Result{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res := Result{Config: cfg, Records: records.Load(), Batches: nbatches.Load(), Bytes: nbytes.Load(), Elapsed: elapsed}
	res.RecordsPerSec = float64(res.Records) / elapsed.Seconds()
	res.MBPerSec = float64(res.Bytes) / 1e6 / elapsed.Seconds()
	res.CPUTime = cpu
	if cpu > 0 {
		res.RecordsPerCPUS = float64(res.Records) / cpu.Seconds()
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.AppendP50, res.AppendP99 = percentile(all, 0.50), percentile(all, 0.99)
	for i := int32(0); i < t.NumPartitions(); i++ {
		p, _ := t.Partition(i)
		res.Syncs += p.Stats().Syncs
	}
	if res.Syncs > 0 {
		res.RecordsPerSync = float64(res.Records) / float64(res.Syncs)
	}
	if cfg.Read {
		if err := readBack(ctx, t, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// readBack reads every partition from the start, 1 MiB per Read, one reader
// per partition.
func readBack(ctx context.Context, t *logstore.Topic, res *Result) error {
	var wg sync.WaitGroup
	var total atomic.Int64
	var bytes atomic.Int64
	errs := make([]error, t.NumPartitions())
	start := time.Now()
	for i := int32(0); i < t.NumPartitions(); i++ {
		p, _ := t.Partition(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			off, hw := int64(0), int64(0)
			_, hw, _ = p.Offsets()
			for off < hw && ctx.Err() == nil {
				r, err := p.Read(off, 1<<20)
				if err != nil {
					errs[i] = err
					return
				}
				bytes.Add(int64(len(r.Batches)))
				err = record.Batches(r.Batches, func(h record.Header, _ []byte) error {
					total.Add(h.LastOffset() + 1 - max(off, h.BaseOffset))
					off = h.LastOffset() + 1
					return nil
				})
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	res.ReadElapsed = time.Since(start)
	res.ReadRecords = total.Load()
	res.ReadRecordsPerS = float64(res.ReadRecords) / res.ReadElapsed.Seconds()
	res.ReadMBPerSec = float64(bytes.Load()) / 1e6 / res.ReadElapsed.Seconds()
	return errors.Join(append(errs, ctx.Err())...)
}

// String renders the result as a short report.
func (r Result) String() string {
	s := fmt.Sprintf("append: %d B records, %d/batch, %d partition(s), %d producer(s), fsync %s\n"+
		"  %.0f records/s, %.1f MB/s, ack latency p50 %v p99 %v, %.0f records/fsync (%d records in %v)\n"+
		"  CPU %v: %.0f records per CPU-second\n",
		r.Config.RecordSize, r.Config.RecordsPerBatch, r.Config.Partitions, r.Config.Producers, r.Config.Fsync,
		r.RecordsPerSec, r.MBPerSec, r.AppendP50.Round(time.Microsecond), r.AppendP99.Round(time.Microsecond), r.RecordsPerSync, r.Records, r.Elapsed.Round(time.Millisecond),
		r.CPUTime.Round(time.Millisecond), r.RecordsPerCPUS)
	if r.ReadRecords > 0 {
		s += fmt.Sprintf("read:   %.0f records/s, %.1f MB/s (%d records)\n", r.ReadRecordsPerS, r.ReadMBPerSec, r.ReadRecords)
	}
	return s
}

// CPUTime is the user+system CPU time used by this process so far
// (getrusage), for per-CPU-second figures.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
