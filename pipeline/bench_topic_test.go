package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

// BenchmarkWindowedTopicToTopicExactlyOnce is the windowed spec from
// a topic of the embedded log to another topic (filter, map, tumbling window
// per user with count and sum), exactly-once with a checkpoint every 5s,
// parallelism 1: the log sink writes in the log's transactions and commits
// when each checkpoint completes. records/cpu-s counts input records per
// CPU-second of the whole process.
func BenchmarkWindowedTopicToTopicExactlyOnce(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	l, err := logstore.Open(logstore.Options{Dir: dir, DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncAlways}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("orders", logstore.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	t, _ := l.Topic("orders")
	p, _ := t.Partition(0)
	statuses := []string{"paid", "paid", "paid", "pending", "cancelled"}
	recs := make([]record.Record, 0, 1000)
	for i := range n {
		ts := 1767225600000 + int64(i)*10
		recs = append(recs, record.Record{Timestamp: ts, Value: fmt.Appendf(nil,
			`{"ts":%d,"order_id":%d,"user_id":"u%d","status":"%s","price":%d.%02d,"qty":%d,"channel":"web"}`,
			ts, i, (i*7919)%10000, statuses[i%5], 1+i%97, i%100, 1+i%4)})
		if len(recs) == cap(recs) {
			if _, err := p.AppendRecords(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	spec := func(i int) string {
		return fmt.Sprintf(`
name: revenue-bench
source:
  log: {topic: orders, start: earliest, bounded: true}
  format: json
  event_time: {field: ts, max_out_of_orderness: 5s}
steps:
  - filter: status == "paid"
  - map: {user: user_id, amount: price * qty}
  - window:
      key: [user]
      tumbling: 1m
      allowed_lateness: 10s
      aggregate: {orders: count(), revenue: sum(amount)}
sink:
  log: {topic: revenue-%d, key: user}
  format: json
parallelism: 1
delivery: exactly_once
checkpoint: {interval: 5s, dir: %s/chk-%d}
`, i, dir, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	var checkpoints uint64
	for i := range b.N {
		s, err := Parse("bench.yaml", []byte(strings.TrimSpace(spec(i))))
		if err != nil {
			b.Fatal(err)
		}
		plan, err := Compile(s)
		if err != nil {
			b.Fatal(err)
		}
		j, err := plan.Start(context.Background(), &Host{Log: l}, WithStreamOptions(stream.WithBatchSize(1024)))
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			b.Fatal(err)
		}
		checkpoints += j.CheckpointStats().Completed
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(checkpoints)/float64(b.N), "checkpoints/run")
}
