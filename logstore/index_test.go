package logstore

import (
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/record"
)

// TestIndexThinAndLookup checks lookups against a linear-scan oracle, before
// and after thinning, and the encode/decode round trip.
func TestIndexThinAndLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for iter := 0; iter < 50; iter++ {
		x := newSegIndex()
		interval := 1 + rng.IntN(3000)
		rel, pos := uint32(0), uint32(0)
		ts := int64(0)
		for i := 0; i < 300; i++ {
			size := 61 + rng.IntN(2000)
			ts += int64(rng.IntN(5)) - 1
			x.add(rel, pos, size, ts, interval)
			rel += uint32(1 + rng.IntN(5))
			pos += uint32(size)
		}
		offs, times := x.encode(rel)
		y, endRel, err := decodeIndex(offs, times, int64(pos))
		if err != nil || endRel != rel || len(y.offs) != len(x.offs) || len(y.times) != len(x.times) {
			t.Fatalf("round trip: %v, end %d (want %d)", err, endRel, rel)
		}
		full := append([]offsetIndexEntry(nil), x.offs...)
		fullTimes := append([]timeIndexEntry(nil), x.times...)
		gap := uint32(1 + rng.IntN(20000))
		x.thin(gap)
		last := uint32(0)
		for _, e := range x.offs {
			if e.pos-last < gap {
				t.Fatalf("kept entries %d and %d bytes apart, gap %d", last, e.pos, gap)
			}
			last = e.pos
			found := false
			for _, f := range full {
				found = found || f == e
			}
			if !found {
				t.Fatalf("thin invented entry %+v", e)
			}
		}
		for _, e := range x.times {
			found := false
			for _, f := range fullTimes {
				found = found || f == e
			}
			if !found {
				t.Fatalf("thin invented time entry %+v", e)
			}
		}
		for q := uint32(0); q < rel; q += 1 + uint32(rng.IntN(7)) {
			r, p := x.lookup(q)
			// Oracle: the largest kept entry with rel <= q.
			wr, wp := uint32(0), uint32(0)
			for _, e := range x.offs {
				if e.rel <= q {
					wr, wp = e.rel, e.pos
				}
			}
			if r != wr || p != wp {
				t.Fatalf("lookup(%d) = %d@%d, want %d@%d", q, r, p, wr, wp)
			}
		}
	}
}

// TestReadThinnedIndex reads every batch of large sealed segments, whose
// in-memory index was thinned, before and after a reopen.
func TestReadThinnedIndex(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	opts.FS = noSyncFS{}
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "thin", TopicConfig{Partitions: 1, SegmentBytes: 200 << 10})
	type span struct{ base, last int64 }
	var spans []span
	for i := 0; i < 500; i++ {
		b, _ := makeBatch(t, uint64(i), 1+i%3, 300+i%700, int64(i))
		res, err := p.Append(bg, b)
		if err != nil {
			t.Fatal(err)
		}
		spans = append(spans, span{res.BaseOffset, res.LastOffset})
	}
	check := func() {
		t.Helper()
		if st := p.Stats(); st.Segments < 3 {
			t.Fatalf("%d segments, want several", st.Segments)
		}
		for _, s := range spans {
			res, err := p.Read(s.last, 1)
			if err != nil {
				t.Fatal(err)
			}
			h, err := record.ParseHeader(res.Batches)
			if err != nil || h.BaseOffset != s.base {
				t.Fatalf("Read(%d) starts at %d, want %d (%v)", s.last, h.BaseOffset, s.base, err)
			}
		}
	}
	check()
	l.Close()
	l = mustOpen(t, opts)
	defer l.Close()
	tp, _ := l.Topic("thin")
	p, _ = tp.Partition(0)
	check()
}
