package kbench

import (
	"context"
	"testing"
	"time"
)

// TestRunSmall checks the benchmark harness end to end on a tiny run.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{DataDir: t.TempDir(), Records: 2000, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Produced != 2000 || res.Consumed != 2000 || res.ProduceRate <= 0 || res.LatencyP99 < res.LatencyP50 {
		t.Fatalf("result: %+v", res)
	}
	t.Log(res.String())
}

// TestRunRateLimited checks the rate limiter and the options path.
func TestRunRateLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{DataDir: t.TempDir(), Records: 1000, Rate: 20000, RecordSize: 1024, Compression: "zstd", SkipConsume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Produced != 1000 || res.Consumed != 0 || res.ProduceRate > 25000 {
		t.Fatalf("result: %+v", res)
	}
	if _, err := Run(ctx, Config{Compression: "brotli"}); err == nil {
		t.Fatal("unknown codec accepted")
	}
}

// TestRunKeyedForDuration checks keyed records, a time-bounded produce
// phase and topic configs.
func TestRunKeyedForDuration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	compact := "compact"
	res, err := Run(ctx, Config{DataDir: t.TempDir(), Duration: 100 * time.Millisecond, Keys: 10, RecordSize: 10,
		Partitions: 1, TopicConfigs: map[string]*string{"cleanup.policy": &compact}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Produced < 1 || res.Consumed != res.Produced || res.ProducedBytes != int64(res.Produced)*int64(10+len(KeyFor(0))) {
		t.Fatalf("result: %+v", res)
	}
}

// BenchmarkKafkaProduce100B produces and consumes 100-byte records over
// loopback (acks=-1, linger 1ms, batches up to 1 MiB, fsync always) and
// reports records/s. Run: go test -run '^$' -bench KafkaProduce ./kafka/kbench/
func BenchmarkKafkaProduce100B(b *testing.B) { benchRun(b, 100, 1_000_000) }

// BenchmarkKafkaProduce1KiB is BenchmarkKafkaProduce100B with 1 KiB records.
func BenchmarkKafkaProduce1KiB(b *testing.B) { benchRun(b, 1024, 200_000) }

func benchRun(b *testing.B, size, records int) {
	for b.Loop() {
		res, err := Run(context.Background(), Config{DataDir: b.TempDir(), Records: records, RecordSize: size})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.ProduceRate, "produced-records/s")
		b.ReportMetric(res.ProduceMBps, "produced-MB/s")
		b.ReportMetric(float64(res.LatencyP99.Microseconds()), "p99-µs")
		b.ReportMetric(res.ConsumeRate, "consumed-records/s")
		b.Log(res.String())
	}
}
