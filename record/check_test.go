package record

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// withBody returns a batch of n records (as far as its header says) whose
// records are body, compressed with c, with a correct CRC: what a client
// that encodes records wrongly sends.
func withBody(t testing.TB, body []byte, n int32, c Codec) []byte {
	t.Helper()
	b, err := AppendBatch(nil, []Record{{Value: []byte("x"), Timestamp: 1}}, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b = b[:HeaderSize]
	binary.BigEndian.PutUint16(b[21:], uint16(c))
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	if c != None {
		if b, err = compress(b, c, body); err != nil {
			t.Fatal(err)
		}
	} else {
		b = append(b, body...)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthFieldEnd))
	fixCRC(b)
	return b
}

// rec encodes one record of the given offset delta and key (nil: null).
func rec(delta int64, key []byte) []byte {
	return appendRecord(nil, delta, 0, Record{Key: key, Value: []byte("value")})
}

// raw encodes a record from its fields after the length (the attributes
// byte included), prefixed by their length plus extra.
func raw(extra int64, fields ...[]byte) []byte {
	body := slices.Concat(fields...)
	return append(binary.AppendVarint(nil, int64(len(body))+extra), body...)
}

func vi(v int64) []byte { return binary.AppendVarint(nil, v) }

// TestCheckRecordsRefusesMalformed: batches whose CRC is right but whose
// records are not what the header says are refused, naming the record.
func TestCheckRecordsRefusesMalformed(t *testing.T) {
	k := []byte("k")
	attrs, ts0 := []byte{0}, vi(0)
	tail := slices.Concat(vi(1), k, vi(-1), vi(0)) // key "k", null value, no headers
	cases := []struct {
		name  string
		body  []byte
		n     int32
		index int32 // the record named; -1: the batch
	}{
		{"fewer records than announced", rec(0, k), 2, 1},
		{"offset deltas skip", slices.Concat(rec(0, k), rec(2, k)), 2, 1},
		{"offset deltas swapped", slices.Concat(rec(1, k), rec(0, k)), 2, 0},
		{"bytes after the last record", append(rec(0, k), 0), 1, -1},
		{"a record more than announced", slices.Concat(rec(0, k), rec(1, k)), 1, -1},
		{"truncated varint", slices.Concat(rec(0, k), []byte{0x80}), 2, 1},
		{"length varint of 6 bytes", slices.Concat([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), 1, 0},
		{"length beyond 32 bits", []byte{0xff, 0xff, 0xff, 0xff, 0x7f}, 1, 0},
		{"negative record length", slices.Concat(vi(-5), attrs, ts0, vi(0), tail), 1, 0},
		{"zero record length", slices.Concat(vi(0), attrs), 1, 0},
		{"record length beyond the batch", raw(10, attrs, ts0, vi(0), tail), 1, 0},
		{"bytes within the record after its fields", raw(0, attrs, ts0, vi(0), tail, []byte{7}), 1, 0},
		{"timestamp delta varint of 11 bytes", raw(0, attrs, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, vi(0), tail), 1, 0},
		{"offset delta varint truncated", raw(0, attrs, ts0, []byte{0x80}), 1, 0},
		{"key length below -1", raw(0, attrs, ts0, vi(0), vi(-2), vi(-1), vi(0)), 1, 0},
		{"value beyond the record", raw(0, attrs, ts0, vi(0), vi(1), k, vi(50), vi(0)), 1, 0},
		{"negative header count", raw(0, attrs, ts0, vi(0), vi(1), k, vi(-1), vi(-1)), 1, 0},
		{"header count beyond the record", raw(0, attrs, ts0, vi(0), vi(1), k, vi(-1), vi(3), vi(1), k, vi(-1)), 1, 0},
		{"header without a key", raw(0, attrs, ts0, vi(0), vi(1), k, vi(-1), vi(1), vi(-1), vi(-1)), 1, 0},
		{"header value length below -1", raw(0, attrs, ts0, vi(0), vi(1), k, vi(-1), vi(1), vi(1), k, vi(-3)), 1, 0},
		{"record without fields", raw(0, attrs), 1, 0},
	}
	for _, c := range cases {
		for _, codec := range []Codec{None, Zstd} {
			b := withBody(t, c.body, c.n, codec)
			if _, err := Verify(b); err != nil {
				t.Fatalf("%s: the test batch itself: %v", c.name, err)
			}
			_, err := CheckRecords(b)
			var ie *InvalidRecordError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("%s (%s): %v, want an invalid record", c.name, codec, err)
				continue
			}
			if ie.Index != c.index {
				t.Errorf("%s (%s): %v names record %d, want %d", c.name, codec, err, ie.Index, c.index)
			}
		}
	}
}

// TestCheckRecordsAcceptsWhatClientsWrite: every batch AppendBatch and
// franz-go's encoder build passes, in every codec, with the first keyless
// record found.
func TestCheckRecordsAcceptsWhatClientsWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		recs := randomRecords(rng, 1+rng.IntN(40))
		want := int32(slices.IndexFunc(recs, func(r Record) bool { return r.Key == nil }))
		for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
			b, err := AppendBatch(nil, recs, BatchOptions{Codec: c})
			if err != nil {
				t.Fatal(err)
			}
			got, err := CheckRecords(b)
			if err != nil {
				t.Fatalf("%s batch of %d records: %v", c, len(recs), err)
			}
			if got.FirstKeyless != want {
				t.Fatalf("%s: first keyless record %d, want %d", c, got.FirstKeyless, want)
			}
			// The oracle: the first record holding the smallest and
			// the largest timestamp.
			minI, maxI := int32(0), int32(0)
			for i, r := range recs {
				if r.Timestamp < recs[minI].Timestamp {
					minI = int32(i)
				}
				if r.Timestamp > recs[maxI].Timestamp {
					maxI = int32(i)
				}
			}
			if got.MinIndex != minI || got.MinTimestamp != recs[minI].Timestamp || got.MaxIndex != maxI || got.MaxTimestamp != recs[maxI].Timestamp {
				t.Fatalf("%s: min %d at %d, max %d at %d; want %d at %d, %d at %d", c, got.MinTimestamp, got.MinIndex, got.MaxTimestamp, got.MaxIndex, recs[minI].Timestamp, minI, recs[maxI].Timestamp, maxI)
			}
		}
	}
}

// TestCheckRecordsRefusesBomb: a compressed batch is checked within
// MaxDecompressed, as Decode is.
func TestCheckRecordsRefusesBomb(t *testing.T) {
	for c, body := range bombs(t, MaxDecompressed+1<<20) {
		b := withBodyCompressed(body, c)
		if _, err := CheckRecords(b); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s bomb: %v, want ErrTooLarge", c, err)
		}
	}
}

// withBodyCompressed is withBody for a body already compressed.
func withBodyCompressed(compressed []byte, c Codec) []byte {
	b, _ := AppendBatch(nil, []Record{{Value: []byte("x"), Timestamp: 1}}, BatchOptions{})
	b = append(b[:HeaderSize], compressed...)
	binary.BigEndian.PutUint16(b[21:], uint16(c))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-lengthFieldEnd))
	fixCRC(b)
	return b
}

// TestCheckRecordsDoesNotAllocate: the walk of an uncompressed batch, the
// ingest path's common case, allocates nothing.
func TestCheckRecordsDoesNotAllocate(t *testing.T) {
	b, err := AppendBatch(nil, randomRecords(rand.New(rand.NewPCG(5, 6)), 100), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := CheckRecords(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// FuzzCheckRecords: whatever the records' bytes, CheckRecords does not
// panic, and a batch it accepts decodes into exactly the records its
// header announces, at offset deltas 0..n-1, with the keyless record it
// names.
func FuzzCheckRecords(f *testing.F) {
	f.Add(slices.Concat(rec(0, []byte("k")), rec(1, nil)), uint8(2), false)
	f.Add(rec(0, nil), uint8(1), true)
	f.Add([]byte{0x80}, uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, n uint8, compressed bool) {
		if n == 0 {
			return // the produce path refuses an empty batch before
		}
		c := None
		if compressed {
			c = LZ4
		}
		b := withBody(t, body, int32(n), c)
		got, err := CheckRecords(b)
		if err != nil {
			return
		}
		var deltas []int64
		keyless := int32(-1)
		derr := Decode(b, func(h Header, r Record) error {
			if r.Key == nil && keyless < 0 {
				keyless = int32(len(deltas))
			}
			deltas = append(deltas, r.Offset-h.BaseOffset)
			return nil
		})
		if derr != nil {
			t.Fatalf("accepted batch does not decode: %v", derr)
		}
		if len(deltas) != int(n) {
			t.Fatalf("accepted batch of %d records decodes %d", n, len(deltas))
		}
		for i, d := range deltas {
			if d != int64(i) {
				t.Fatalf("record %d has offset delta %d", i, d)
			}
		}
		if keyless != got.FirstKeyless {
			t.Fatalf("first keyless record %d, decoded %d", got.FirstKeyless, keyless)
		}
	})
}

// BenchmarkCheckRecords1KiB: the ingest benchmark's records (1 KiB
// values, 1 MiB uncompressed batches, the common case).
func BenchmarkCheckRecords1KiB(b *testing.B) {
	benchBatch(b, func(batch []byte) error {
		_, err := CheckRecords(batch)
		return err
	})
}

// BenchmarkVerify1KiB is the CRC check of the same batch, for scale.
func BenchmarkVerify1KiB(b *testing.B) {
	benchBatch(b, func(batch []byte) error {
		_, err := Verify(batch)
		return err
	})
}

// benchBatch runs check on one batch of 1000 records of 1 KiB values.
func benchBatch(b *testing.B, check func([]byte) error) {
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Value: make([]byte, 1024), Timestamp: 1}
	}
	batch, err := AppendBatch(nil, recs, BatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := check(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckRecordsCompressed: the ingest benchmark's batch (1,000
// records of 1 KiB of repeated letters, as `sluice bench kafka` sends)
// compressed with each codec: CheckRecords decompresses it.
func BenchmarkCheckRecordsCompressed(b *testing.B) {
	value := make([]byte, 1024)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Value: value, Timestamp: 1}
	}
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd} {
		batch, err := AppendBatch(nil, recs, BatchOptions{Codec: c})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(1 << 20) // per MiB of records
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CheckRecords(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
