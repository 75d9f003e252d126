package rabbitmq

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// The connector benchmarks against the local broker, each next to a plain
// amqp091 loop doing the same work (the broker's own baseline): 100-byte
// messages, acknowledgements (source) or confirmations (sink) every
// benchCommit messages as a checkpoint would. Each reports records/s and
// records per CPU-second of this process. Run:
//
//	go test -run '^$' -bench . -benchtime 1x ./connector/rabbitmq

const (
	benchN      = 100_000
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

// fill publishes n messages with a raw confirm loop and reports its rate
// when b is the raw publish benchmark.
func rawPublish(tb testing.TB, conn *amqp.Connection, q string, n int) (time.Duration, time.Duration) {
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		tb.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, DefaultMaxInFlight+1))
	t0, c0 := time.Now(), cpuNow()
	out := 0
	for i := range n {
		if err := ch.Publish("", q, false, false, amqp.Publishing{Body: payload, MessageId: fmt.Sprint(i)}); err != nil {
			tb.Fatal(err)
		}
		out++
		for out >= DefaultMaxInFlight {
			<-confirms
			out--
		}
	}
	for ; out > 0; out-- {
		<-confirms
	}
	return time.Since(t0), cpuNow() - c0
}

func BenchmarkPublishRaw(b *testing.B) {
	conn := broker(b)
	q := queue(b, conn, "bench-raw")
	for range b.N {
		wall, cpu := rawPublish(b, conn, q, benchN)
		report(b, benchN, wall, cpu)
		purge(b, conn, q)
	}
}

func BenchmarkSink(b *testing.B) {
	conn := broker(b)
	q := queue(b, conn, "bench-sink")
	sink, err := NewSink(SinkConfig{URL: testURL, RoutingKey: q, Mandatory: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	batch := make([]connector.Message, 500)
	for i := range batch {
		batch[i] = connector.Message{Value: payload}
	}
	for range b.N {
		w, _ := sink.Open(ctx, stream.SubtaskInfo{Operator: "bench"})
		t0, c0 := time.Now(), cpuNow()
		for i := 0; i < benchN; i += len(batch) {
			if err := w.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if (i+len(batch))%benchCommit == 0 {
				if _, err := w.(*writer).PreCommit(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		report(b, benchN, time.Since(t0), cpuNow()-c0)
		purge(b, conn, q)
	}
}

func BenchmarkConsumeRaw(b *testing.B) {
	conn := broker(b)
	q := queue(b, conn, "bench-craw")
	for range b.N {
		rawPublish(b, conn, q, benchN)
		ch, err := conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.Qos(2*benchCommit, 0, false); err != nil {
			b.Fatal(err)
		}
		t0, c0 := time.Now(), cpuNow()
		d, err := ch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 1; i <= benchN; i++ {
			m := <-d
			if i%benchCommit == 0 {
				if err := m.Ack(true); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b, benchN, time.Since(t0), cpuNow()-c0)
		ch.Close()
	}
}

func BenchmarkSource(b *testing.B) {
	conn := broker(b)
	q := queue(b, conn, "bench-src")
	ctx := context.Background()
	for range b.N {
		rawPublish(b, conn, q, benchN)
		src, err := NewSource(SourceConfig{URL: testURL, Queue: q, Prefetch: 2 * benchCommit, Logger: quiet()})
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
	}
}

func purge(tb testing.TB, conn *amqp.Connection, q string) {
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueuePurge(q, false); err != nil {
		tb.Fatal(err)
	}
}
