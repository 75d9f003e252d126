package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/pierrec/lz4/v4"

	"github.com/sluicehq/sluice/internal/recordbomb"
)

// bombs returns, per codec, a body of a few KiB that inflates to n bytes
// (n a multiple of 1 MiB).
func bombs(t testing.TB, n int) map[Codec][]byte {
	zeros := make([]byte, 1<<20)
	var gz bytes.Buffer // gzip members concatenate
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(zeros)
	_ = w.Close()
	member := gz.Bytes()
	var lz bytes.Buffer
	lw := lz4.NewWriter(&lz)
	for range n >> 20 {
		if _, err := lw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	sn := append([]byte(nil), xerialMagic...)
	sn = binary.BigEndian.AppendUint32(sn, 1)
	sn = binary.BigEndian.AppendUint32(sn, 1)
	chunk := s2.EncodeSnappy(nil, zeros[:32<<10])
	for range n / (32 << 10) {
		sn = binary.BigEndian.AppendUint32(sn, uint32(len(chunk)))
		sn = append(sn, chunk...)
	}
	return map[Codec][]byte{
		Gzip:   bytes.Repeat(member, n>>20),
		Snappy: sn,
		LZ4:    lz.Bytes(),
		Zstd:   recordbomb.Zstd(n),
	}
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecompressStopsAtLimit: a small body of every codec that inflates to
// 64 MiB is refused with ErrTooLarge at a 1 MiB limit, having allocated a
// few MiB (the output buffer grows to twice the limit at most, plus the
// codec's own buffers: lz4 reads 4 MiB blocks), not the 64 MiB it claims.
func TestDecompressStopsAtLimit(t *testing.T) {
	const limit, n = 1 << 20, 64 << 20
	for c, body := range bombs(t, n) {
		t.Run(c.String(), func(t *testing.T) {
			if len(body) > n/16 { // snappy inflates 21 times at most
				t.Fatalf("bomb of %d bytes", len(body))
			}
			var err error
			alloc := allocated(func() { _, err = decompressLimit(c, body, limit) })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d-byte bomb at limit %d: %v, want ErrTooLarge", len(body), limit, err)
			}
			if alloc > 12<<20 {
				t.Fatalf("%d-byte bomb allocated %d bytes at limit %d", len(body), alloc, limit)
			}
			// Under the limit, the same codec inflates it whole.
			out, err := decompressLimit(c, body, n)
			if err != nil || len(out) != n {
				t.Fatalf("at limit %d: %d bytes, %v", n, len(out), err)
			}
		})
	}
}

// TestDecodeRefusesBomb: a one-record zstd batch of a few KiB whose body
// inflates to 256 MiB fails Decode and Split with ErrTooLarge (not
// ErrCorrupt), having allocated about twice MaxDecompressed at most (the
// code before the bound allocated the whole 256 MiB and more), and
// OffsetForTime answers the batch's base offset rather than failing.
func TestDecodeRefusesBomb(t *testing.T) {
	raw := recordbomb.Batch(100, 256<<20)
	if len(raw) > 64<<10 {
		t.Fatalf("batch of %d bytes", len(raw))
	}
	var err error
	alloc := allocated(func() { err = Decode(raw, func(Header, Record) error { return nil }) })
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode: %v, want ErrTooLarge", err)
	}
	if alloc > 2*MaxDecompressed+8<<20 {
		t.Fatalf("Decode allocated %d bytes, bound %d", alloc, MaxDecompressed)
	}
	if _, _, err := Split(nil, raw); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Split: %v, want ErrTooLarge", err)
	}
	off, ts, found, err := OffsetForTime(raw, 5, 0)
	if err != nil || !found || off != 100 || ts != 10 {
		t.Fatalf("OffsetForTime: %d %d %v %v, want 100 10 true", off, ts, found, err)
	}
}

// FuzzDecompress: no input makes any codec return more than the limit or
// fail other than with an error.
func FuzzDecompress(f *testing.F) {
	for c, body := range bombs(f, 2<<20) {
		f.Add(int8(c), body)
	}
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		b, _ := compress(nil, c, []byte("records records records"))
		f.Add(int8(c), b)
	}
	f.Fuzz(func(t *testing.T, c int8, b []byte) {
		const limit = 1 << 20
		out, err := decompressLimit(Codec(c), b, limit)
		if err == nil && len(out) > limit && Codec(c) != None {
			t.Fatalf("%s: %d bytes beyond limit %d", Codec(c), len(out), limit)
		}
	})
}
