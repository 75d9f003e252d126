package nats

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// cpuSeconds is this process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func report(b *testing.B, n int, start time.Time, cpu0 float64) {
	el := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(float64(n)/el, "records/s")
	b.ReportMetric(float64(n)/cpu, "records/cpu-s")
}

var payload100 = func() []byte {
	b := make([]byte, 100)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// BenchmarkJetStreamPublishRaw is the baseline: nats.go's own async
// publish of 100-byte messages, what the server accepts from a client
// that does nothing else.
func BenchmarkJetStreamPublishRaw(b *testing.B) {
	addr := serverAddr(b)
	name, js := testStream(b, addr)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	for i := 0; i < b.N; i++ {
		if _, err := js.PublishAsync(name+".in", payload100); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	report(b, b.N, start, cpu0)
}

// BenchmarkJetStreamSink: 100-byte records through the sink (message ids,
// acknowledgements awaited at a barrier every 10,000 records).
func BenchmarkJetStreamSink(b *testing.B) {
	addr := serverAddr(b)
	name, _ := testStream(b, addr)
	sink, err := NewSink(SinkConfig{ConnConfig: ConnConfig{URL: "nats://" + addr, Logger: quiet}, JetStream: true, Subject: name + ".out", IDPrefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]connector.Message, 500)
	for i := range batch {
		batch[i] = connector.Message{Value: payload100}
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	for i := 0; i < b.N; i += len(batch) {
		if err := w.Write(ctx, batch[:min(len(batch), b.N-i)]); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 0 {
			if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
		b.Fatal(err)
	}
	report(b, b.N, start, cpu0)
	_ = w.Close(ctx)
}

// BenchmarkJetStreamSource: 100-byte messages stored in a stream read
// through the source, a checkpoint completing (acknowledgement) every
// 10,000 records.
func BenchmarkJetStreamSource(b *testing.B) {
	addr := serverAddr(b)
	name, js := testStream(b, addr)
	for i := 0; i < b.N; i++ {
		if _, err := js.PublishAsync(name+".in", payload100); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	sp := openJS(b, SourceConfig{ConnConfig: ConnConfig{URL: "nats://" + addr, Logger: quiet}, JetStream: true, Stream: name, Subject: name + ".in", Durable: "bench", AckOnCheckpoint: true}, nil)
	ctx := context.Background()
	buf := make([]connector.Message, 1024)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	got, last := 0, 0
	for got < b.N {
		n, err := sp.Read(ctx, buf)
		if err != nil {
			b.Fatal(err)
		}
		got += n
		if got-last >= 10000 || got == b.N {
			last = got
			if err := sp.CommitPosition(ctx, sp.Position()); err != nil {
				b.Fatal(err)
			}
		}
	}
	report(b, b.N, start, cpu0)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
