package record

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// BenchmarkDecodeCompressed decodes a batch of 1,000 records of 100 B
// (text-like, about 4:1 compressible) per codec: the cost of the bounded,
// streamed decompression.
func BenchmarkDecodeCompressed(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	recs := make([]Record, 1000)
	for i := range recs {
		v := make([]byte, 100)
		for j := range v {
			v[j] = "abcdefgh"[rng.IntN(8)]
		}
		recs[i] = Record{Key: fmt.Appendf(nil, "k%d", i), Value: v, Timestamp: int64(i)}
	}
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		buf, err := AppendBatch(nil, recs, BatchOptions{Codec: c})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(100 * 1000)
			for b.Loop() {
				if err := Decode(buf, func(Header, Record) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPooledReadersSurviveErrors: gzip and lz4 readers are reused across
// batches; a batch that fails (corrupt, or beyond the limit) between two
// good ones must not change what the good ones decompress to, also with
// several goroutines sharing the pools.
func TestPooledReadersSurviveErrors(t *testing.T) {
	for _, c := range []Codec{Gzip, LZ4} {
		t.Run(c.String(), func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					for i := range 30 {
						src := make([]byte, 1+rng.IntN(40_000))
						for j := range src {
							src[j] = byte(rng.IntN(4 + i%40))
						}
						comp, err := compress(nil, c, src)
						if err != nil {
							t.Error(err)
							return
						}
						switch i % 3 {
						case 1: // corrupt: cut in the middle
							if _, err := decompress(c, comp[:len(comp)/2]); err == nil {
								t.Errorf("batch %d: a truncated stream decompressed", i)
							}
						case 2: // beyond the limit
							if len(src) > 1 {
								if _, err := decompressLimit(c, comp, len(src)-1); !errors.Is(err, ErrTooLarge) {
									t.Errorf("batch %d: %v, want ErrTooLarge", i, err)
								}
							}
						}
						got, err := decompress(c, comp)
						if err != nil || !bytes.Equal(got, src) {
							t.Errorf("batch %d: %d bytes back of %d, err %v", i, len(got), len(src), err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
