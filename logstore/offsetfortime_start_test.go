package logstore

import (
	"testing"

	"github.com/sluicehq/sluice/record"
)

// TestOffsetForTimeSkipsDeletedRecords: after DeleteRecords moves the log
// start into a segment (even into a batch), a lookup by time answers only
// offsets at or past the log start, as Kafka's search from the log start
// offset: the records below it are gone for readers, and a consumer reset
// to an offset below the start would be answered OFFSET_OUT_OF_RANGE.
func TestOffsetForTimeSkipsDeletedRecords(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "ts", TopicConfig{Partitions: 1, SegmentBytes: 4096})
	var all []record.Record
	for i := range 60 {
		base := int64(1000 + i*50)
		recs := []record.Record{
			{Timestamp: base + 10, Value: []byte("a")},
			{Timestamp: base - 30, Value: []byte("b")},
			{Timestamp: base + 40, Value: []byte("c")},
		}
		b, err := record.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(bg, b); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	oracle := func(start, ts int64) (int64, int64, bool) {
		for i := start; i < int64(len(all)); i++ {
			if all[i].Timestamp >= ts {
				return i, all[i].Timestamp, true
			}
		}
		return 0, 0, false
	}
	for _, start := range []int64{1, 4, 31, 95, 170, 179} {
		if _, err := p.DeleteRecords(start); err != nil {
			t.Fatal(err)
		}
		for ts := int64(0); ts < 4100; ts += 7 {
			wo, wts, wok := oracle(start, ts)
			o, gts, ok, err := p.OffsetForTime(ts)
			if err != nil {
				t.Fatal(err)
			}
			if ok != wok || ok && (o != wo || gts != wts) {
				t.Fatalf("log start %d: OffsetForTime(%d) = %d, %d, %v; want %d, %d, %v", start, ts, o, gts, ok, wo, wts, wok)
			}
		}
	}
}
