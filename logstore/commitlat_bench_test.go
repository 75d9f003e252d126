package logstore

import (
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkCommitOpenLoop measures the acknowledgement latency of appends
// that arrive on a schedule (open loop), as a pipeline's output topic sees
// them at 100,000 records/s: batches of 65 records of 100 bytes (about
// 7 KB, one commit and one fdatasync each), one every 650 µs, to 4
// partitions in turn (each partition gets one every 2.6 ms). Latency is from the scheduled arrival to the
// acknowledgement, so a commit held up (by a pre-written tail's top-up,
// say) also delays the batches queued behind it. It runs for 4 s whatever
// b.N is:
//
//	go test -run '^$' -bench CommitOpenLoop -benchtime 1x ./logstore
func BenchmarkCommitOpenLoop(b *testing.B) {
	const (
		parts    = 4
		interval = 2600 * time.Microsecond // per partition
		runFor   = 4 * time.Second
	)
	l, err := Open(Options{Dir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("lat", TopicConfig{Partitions: parts}); err != nil {
		b.Fatal(err)
	}
	t, _ := l.Topic("lat")
	batch := benchBatch(b, 100, 65)
	lats := make([][]time.Duration, parts)
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for i := range parts {
		p, _ := t.Partition(int32(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Partitions start staggered, as a producer's bursts are.
			next := start.Add(time.Duration(i) * interval / parts)
			for next.Sub(start) < runFor {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if _, err := p.Append(bg, batch); err != nil {
					b.Error(err)
					return
				}
				lats[i] = append(lats[i], time.Since(next))
				next = next.Add(interval)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no appends")
	}
	q := func(f float64) time.Duration { return all[min(len(all)-1, int(f*float64(len(all))))] }
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	b.ReportMetric(float64(q(0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(q(0.99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(sum.Microseconds())/float64(len(all)), "mean-µs")
	b.ReportMetric(float64(len(all)), "appends")
}
