package record

import (
	"fmt"
	"math/rand/v2"
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
