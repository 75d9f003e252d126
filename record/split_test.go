package record

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSplitAppendKeptMatchesFilterBatch: for random batches of every codec
// and random choices of records to keep, Split then AppendKept produces the
// batch FilterBatch produces, byte for byte once decompressed, and Split's
// spans agree with Decode's records.
func TestSplitAppendKeptMatchesFilterBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var spans []Span
			var scratch []byte
			for trial := 0; trial < 60; trial++ {
				raw, err := AppendBatch(nil, randomRecords(rng, 1+rng.IntN(40)), BatchOptions{Codec: c, BaseOffset: rng.Int64N(1e6)})
				if err != nil {
					t.Fatal(err)
				}
				var want []Record
				if err := Decode(raw, func(_ Header, r Record) error { want = append(want, r); return nil }); err != nil {
					t.Fatal(err)
				}
				var h Header
				h, spans, err = Split(spans[:0], raw)
				if err != nil {
					t.Fatal(err)
				}
				if len(spans) != len(want) {
					t.Fatalf("split %d records, decode %d", len(spans), len(want))
				}
				for i, s := range spans {
					w := want[i]
					if s.Offset != w.Offset || !bytes.Equal(s.Key, w.Key) || (s.Key == nil) != (w.Key == nil) ||
						!bytes.Equal(s.Value, w.Value) || (s.Value == nil) != (w.Value == nil) {
						t.Fatalf("record %d: split %+v, decode %+v", i, s, w)
					}
				}
				// Keep nothing, everything, or a random subset.
				mode := trial % 3
				keep := make([]bool, len(spans))
				for i := range keep {
					keep[i] = mode == 1 || (mode == 2 && rng.IntN(2) == 0)
				}
				keepEmpty := rng.IntN(2) == 0
				i := 0
				wantOut, _, err := FilterBatch(nil, raw, keepEmpty, func(Header, Record) bool { i++; return keep[i-1] })
				if err != nil {
					t.Fatal(err)
				}
				var kept []Span
				for i, s := range spans {
					if keep[i] {
						kept = append(kept, s)
					}
				}
				var got []byte
				got, scratch, err = AppendKept([]byte("prefix"), scratch, raw, h, kept, keepEmpty)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(got, []byte("prefix")) {
					t.Fatal("AppendKept overwrote dst")
				}
				got = got[len("prefix"):]
				if len(got) > 0 {
					if _, err := Verify(got); err != nil {
						t.Fatalf("rebuilt batch: %v", err)
					}
				}
				if c == None || len(kept) == 0 || len(kept) == len(spans) {
					if !bytes.Equal(got, wantOut) {
						t.Fatalf("keep %v (empty %v): AppendKept and FilterBatch differ", keep, keepEmpty)
					}
				}
				var gotRecs, wantRecs []Record
				Decode(got, func(_ Header, r Record) error { gotRecs = append(gotRecs, r); return nil })
				Decode(wantOut, func(_ Header, r Record) error { wantRecs = append(wantRecs, r); return nil })
				if !slices.EqualFunc(gotRecs, wantRecs, func(a, b Record) bool {
					return a.Offset == b.Offset && a.Timestamp == b.Timestamp && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && len(a.Headers) == len(b.Headers)
				}) {
					t.Fatalf("keep %v: records differ: %v vs %v", keep, gotRecs, wantRecs)
				}
			}
		})
	}
}

// FuzzSplit: Split accepts exactly the batches Decode accepts (given a
// correct size), and its spans cover the same records.
func FuzzSplit(f *testing.F) {
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		b, _ := AppendBatch(nil, randomRecords(rand.New(rand.NewPCG(9, 9)), 3), BatchOptions{Codec: c})
		f.Add(b)
	}
	f.Add(AppendControlBatch(nil, 1, 1, false, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, spans, err := Split(nil, b)
		if err != nil {
			return
		}
		if h.Size() != len(b) {
			t.Fatalf("split a batch of %d bytes announcing %d", len(b), h.Size())
		}
		var recs []Record
		if derr := Decode(b, func(_ Header, r Record) error { recs = append(recs, r); return nil }); derr != nil {
			t.Fatalf("split accepted what Decode refuses: %v", derr)
		}
		if len(recs) != len(spans) {
			t.Fatalf("split %d records, decode %d", len(spans), len(recs))
		}
		for i, s := range spans {
			if s.Offset != recs[i].Offset || !bytes.Equal(s.Key, recs[i].Key) || !bytes.Equal(s.Value, recs[i].Value) {
				t.Fatalf("record %d differs", i)
			}
		}
		if _, _, err := AppendKept(nil, nil, b, h, spans[:len(spans)/2], true); err != nil && h.Codec() == None {
			t.Fatalf("append kept: %v", err)
		}
	})
}
