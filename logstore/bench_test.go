package logstore

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// Benchmarks of the append and read paths. Kafka clients send batches of
// many records; 100 records of 100 bytes per batch is a typical producer
// linger/batch.size outcome, and the common case the targets in
// docs/benchmarks-log.md are stated for. Run:
//
//	go test -run '^$' -bench . -benchtime 3s ./logstore
//
// Each sub-benchmark reports records/s and MB/s (of batches); one op is
// one appended batch.

func benchBatch(b *testing.B, recSize, perBatch int) []byte {
	recs := make([]record.Record, perBatch)
	for i := range recs {
		v := make([]byte, recSize)
		for j := range v {
			v[j] = byte(i + j)
		}
		recs[i] = record.Record{Timestamp: time.Now().UnixMilli(), Value: v}
	}
	batch, err := record.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

func benchLog(b *testing.B, mode FsyncMode) (*Log, *Partition) {
	l, err := Open(Options{Dir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetentionCheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := l.CreateTopic("bench", TopicConfig{Partitions: 1, Fsync: FsyncPolicy{Mode: mode}}); err != nil {
		b.Fatal(err)
	}
	t, _ := l.Topic("bench")
	p, _ := t.Partition(0)
	return l, p
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncNever} {
		for _, size := range []int{100, 1024} {
			for _, perBatch := range []int{1, 100} {
				for _, producers := range []int{1, 16, 64} {
					if perBatch == 1 && producers == 64 {
						continue
					}
					name := fmt.Sprintf("fsync=%s/size=%d/batch=%d/producers=%d", FsyncPolicy{Mode: mode}, size, perBatch, producers)
					b.Run(name, func(b *testing.B) {
						l, p := benchLog(b, mode)
						defer l.Close()
						batch := benchBatch(b, size, perBatch)
						b.SetBytes(int64(len(batch)))
						b.ReportAllocs()
						b.ResetTimer()
						var wg sync.WaitGroup
						per := (b.N + producers - 1) / producers
						for w := 0; w < producers; w++ {
							wg.Add(1)
							go func() {
								defer wg.Done()
								for i := 0; i < per; i++ {
									if _, err := p.Append(bg, batch); err != nil {
										b.Error(err)
										return
									}
								}
							}()
						}
						wg.Wait()
						b.StopTimer()
						b.ReportMetric(float64(per*producers*perBatch)/b.Elapsed().Seconds(), "records/s")
						b.ReportMetric(float64(p.Stats().Syncs)/float64(b.N), "fsyncs/op")
					})
				}
			}
		}
	}
}

func BenchmarkRead(b *testing.B) {
	for _, maxBytes := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("maxBytes=%d", maxBytes), func(b *testing.B) {
			l, p := benchLog(b, FsyncNever)
			defer l.Close()
			batch := benchBatch(b, 100, 100)
			const n = 2000 // ~22 MB
			for i := 0; i < n; i++ {
				if _, err := p.Append(bg, batch); err != nil {
					b.Fatal(err)
				}
			}
			_, hw, _ := p.Offsets()
			b.ReportAllocs()
			b.ResetTimer()
			var bytes int64
			off := int64(0)
			for i := 0; i < b.N; i++ {
				if off >= hw {
					off = 0
				}
				res, err := p.Read(off, maxBytes)
				if err != nil {
					b.Fatal(err)
				}
				bytes += int64(len(res.Batches))
				h, _ := record.ParseHeader(res.Batches[len(res.Batches)-len(batch):])
				off = h.LastOffset() + 1
			}
			b.SetBytes(bytes / int64(b.N))
		})
	}
}
