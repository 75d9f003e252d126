package tier_test

import (
	"context"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/objstore"
	"github.com/sluicehq/sluice/objstore/objstoretest"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/tier"
)

// BenchmarkRemoteReadCold reads the remote part (56 MiB) of 64 MiB of
// segments (1 KiB random records, 8 MiB segments, 1 MiB chunks)
// sequentially with 8 MiB reads, as `sluice bench tier`'s consumer does,
// from a cold chunk cache, over an S3 server in the process (gofakes3 over
// loopback HTTP, minio-go), without the Kafka layer. Each iteration reopens
// the tier, which empties the cache (and starts with an empty buffer
// pool). cpu-s/GB is the process's CPU time (the tier's and the S3
// server's) per GB read, which a loaded machine disturbs less than the
// time; B/op is the most stable figure.
func BenchmarkRemoteReadCold(b *testing.B) { benchRemoteReadCold(b, 0) }

// BenchmarkRemoteReadColdLatency is BenchmarkRemoteReadCold with 20 ms
// added to every store call, about the time to first byte of a GET from
// AWS S3 in the same region: what the read-ahead hides from a sequential
// reader (the loopback store answers in well under a millisecond).
func BenchmarkRemoteReadColdLatency(b *testing.B) { benchRemoteReadCold(b, 20*time.Millisecond) }

func benchRemoteReadCold(b *testing.B, latency time.Duration) {
	dir := b.TempDir()
	faulty := objstore.NewFaulty(objstoretest.Open(b))
	var store objstore.Store = faulty
	l, err := logstore.Open(logstore.Options{Dir: dir, RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	open := func() *tier.Tier {
		tr, err := tier.Open(tier.Options{Store: store, Log: l, Logger: quietLogger(), ChunkBytes: 1 << 20, UploadInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		return tr
	}
	tr := open()
	cfg := logstore.TopicConfig{Partitions: 1}
	for k, v := range map[string]string{"remote.storage.enable": "true", "segment.bytes": "8388608", "local.retention.bytes": "8388608"} {
		if err := cfg.SetConfig(k, &v); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.CreateTopic("t", cfg); err != nil {
		b.Fatal(err)
	}
	tp, _ := l.Topic("t")
	p, _ := tp.Partition(0)
	rnd := rand.NewChaCha8([32]byte{1})
	for range 64 * 2 { // 64 MiB in batches of 512 records
		recs := make([]record.Record, 512)
		for i := range recs {
			v := make([]byte, 1024)
			rnd.Read(v)
			recs[i] = record.Record{Timestamp: 1, Value: v}
		}
		if _, err := p.AppendRecords(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := tr.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := l.EnforceRetention(time.Now()); err != nil {
		b.Fatal(err)
	}
	local := p.LocalLogStart()
	if local == 0 {
		b.Fatal("nothing remote")
	}
	faulty.SetLatency(latency) // the reads only
	b.ReportAllocs()
	b.ResetTimer()
	var total int64
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		tr.Close()
		tr = open()
		b.StartTimer()
		before := cpuTime()
		for next := int64(0); next < local; {
			res, err := p.Read(next, 8<<20)
			if err != nil {
				b.Fatal(err)
			}
			total += int64(len(res.Batches))
			err = record.Batches(res.Batches, func(h record.Header, _ []byte) error {
				next = h.LastOffset() + 1
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		cpu += cpuTime() - before
	}
	b.ReportMetric(cpu.Seconds()/(float64(total)/1e9), "cpu-s/GB")
	b.SetBytes(total / int64(b.N))
	b.StopTimer()
	tr.Close()
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
