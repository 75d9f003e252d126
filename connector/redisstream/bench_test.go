package redisstream

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// The connector benchmarks against the local Redis: 100-byte entries,
// the sink's XADD batches of 500 (compare redis-benchmark's XADD with -P
// 500, run next to it, see docs/benchmarks-connectors.md) and the source's
// reads with XACK every benchCommit entries as checkpoints would, next to
// a plain go-redis XREADGROUP/XACK loop. Each reports records/s and
// records per CPU-second of this process. Run:
//
//	go test -run '^$' -bench . -benchtime 1x ./connector/redisstream

const (
	benchN      = 200_000
	benchCommit = 5_000
)

var payload = []byte(fmt.Sprintf("%0100d", 0))

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, n int, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "records/s")
	b.ReportMetric(float64(n)/cpu.Seconds(), "records/cpu-s")
}

func fill(b *testing.B, cli *redis.Client, s string) {
	ctx := context.Background()
	for i := 0; i < benchN; i += 1000 {
		if _, err := cli.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range 1000 {
				p.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []any{"value", payload}})
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSink(b *testing.B) {
	cli := server(b)
	ctx := context.Background()
	batch := make([]connector.Message, 500)
	for i := range batch {
		batch[i] = connector.Message{Value: payload}
	}
	for range b.N {
		s := streamName(b, cli, "bench-sink")
		sink, err := NewSink(SinkConfig{Options: redis.Options{Addr: testAddr}, Stream: s, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		w, _ := sink.Open(ctx, stream.SubtaskInfo{})
		t0, c0 := time.Now(), cpuNow()
		for i := 0; i < benchN; i += len(batch) {
			if err := w.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		report(b, benchN, time.Since(t0), cpuNow()-c0)
		w.Close(ctx)
		cli.Del(ctx, s)
	}
}

func BenchmarkConsumeRaw(b *testing.B) {
	cli := server(b)
	ctx := context.Background()
	for range b.N {
		s := streamName(b, cli, "bench-craw")
		fill(b, cli, s)
		if err := cli.XGroupCreate(ctx, s, "g", "0").Err(); err != nil {
			b.Fatal(err)
		}
		t0, c0 := time.Now(), cpuNow()
		var ids []string
		got := 0
		for got < benchN {
			res, err := cli.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{s, ">"}, Count: DefaultBatch}).Result()
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range res[0].Messages {
				ids = append(ids, m.ID)
			}
			got += len(res[0].Messages)
			if len(ids) >= benchCommit {
				if err := cli.XAck(ctx, s, "g", ids...).Err(); err != nil {
					b.Fatal(err)
				}
				ids = ids[:0]
			}
		}
		report(b, benchN, time.Since(t0), cpuNow()-c0)
		cli.Del(ctx, s)
	}
}

func BenchmarkSource(b *testing.B) {
	cli := server(b)
	ctx := context.Background()
	for range b.N {
		s := streamName(b, cli, "bench-src")
		fill(b, cli, s)
		src, err := NewSource(SourceConfig{Options: redis.Options{Addr: testAddr}, Stream: s, Group: "g", Consumer: "c", ClaimIdle: -1, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		splits, _ := src.Splits(ctx, 1)
		sp := splits[0].(*split)
		buf := make([]connector.Message, 1024)
		t0, c0 := time.Now(), cpuNow()
		got, next := 0, benchCommit
		for got < benchN {
			n, err := sp.Read(ctx, buf)
			if err != nil {
				b.Fatal(err)
			}
			got += n
			if got >= next {
				if err := sp.CommitPosition(ctx, sp.Position()); err != nil {
					b.Fatal(err)
				}
				next += benchCommit
			}
		}
		report(b, benchN, time.Since(t0), cpuNow()-c0)
		sp.Close()
		cli.Del(ctx, s)
	}
}
