package logsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

// BenchmarkSinkWrite appends keyed 100-byte messages to 4 partitions in
// Writes of 1024, the batch size of the stream runtime (fsync: never).
func BenchmarkSinkWrite(b *testing.B) {
	l := openLogB(b)
	s, err := NewSink(l, SinkConfig{Topic: "bench", CreatePartitions: 4})
	if err != nil {
		b.Fatal(err)
	}
	w, err := s.Open(context.Background(), stream.SubtaskInfo{})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]connector.Message, 1024)
	for i := range msgs {
		msgs[i] = connector.Message{Key: fmt.Appendf(nil, "key-%d", i%100), Value: make([]byte, 100)}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs)) * 100)
	b.ResetTimer()
	for range b.N {
		if err := w.Write(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSourceRead reads 100-byte records back from one partition,
// read_committed, in reads of 1024.
func BenchmarkSourceRead(b *testing.B) {
	l := openLogB(b)
	s, _ := NewSink(l, SinkConfig{Topic: "bench", CreatePartitions: 1})
	w, _ := s.Open(context.Background(), stream.SubtaskInfo{})
	msgs := make([]connector.Message, 1024)
	for i := range msgs {
		msgs[i] = connector.Message{Value: make([]byte, 100)}
	}
	const batches = 200
	for range batches {
		if err := w.Write(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	src, _ := NewSource(l, SourceConfig{Topic: "bench", Bounded: true})
	dst := make([]connector.Message, 1024)
	b.ReportAllocs()
	b.SetBytes(batches * 1024 * 100)
	b.ResetTimer()
	for range b.N {
		sps, err := src.Splits(context.Background(), 1)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			k, err := sps[0].Read(context.Background(), dst)
			n += k
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if n != batches*1024 {
			b.Fatalf("read %d", n)
		}
	}
	b.ReportMetric(float64(b.N*batches*1024)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkTxnSinkWrite is BenchmarkSinkWrite through the transactional
// sink, with a pre-commit and a commit every 16 Writes.
func BenchmarkTxnSinkWrite(b *testing.B) {
	l := openLogB(b)
	ids, err := logstore.OpenProducerIDs(context.Background(), l)
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSink(l, SinkConfig{Topic: "bench", CreatePartitions: 4, Transactional: true, ProducerIDs: ids})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sw, err := s.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		b.Fatal(err)
	}
	w := sw.(*txnWriter)
	msgs := make([]connector.Message, 1024)
	for i := range msgs {
		msgs[i] = connector.Message{Key: fmt.Appendf(nil, "key-%d", i%100), Value: make([]byte, 100)}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs)) * 100)
	b.ResetTimer()
	for i := range b.N {
		if err := w.Write(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		if i%16 == 15 {
			h, err := w.PreCommit(ctx, checkpoint.ID(i+1))
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Commit(ctx, h); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "records/s")
}
