package logstore

import "testing"

// TestOffsetForTimeAfterDeleteRecords: after DeleteRecords moved the log
// start into the middle of a segment (and of a batch), a timestamp lookup
// answers the first record at or after the log start whose timestamp is
// at or after ts (Kafka's answer), never a deleted offset below it, which
// a consumer would then fetch only to be told it is out of range.
func TestOffsetForTimeAfterDeleteRecords(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "ts", TopicConfig{Partitions: 1, SegmentBytes: 4096})
	all := appendLateRecords(t, p)
	for _, cut := range []int64{1, 2, 40, 121, 200} {
		if _, err := p.DeleteRecords(cut); err != nil {
			t.Fatal(err)
		}
		for ts := int64(0); ts < 5200; ts += 7 {
			var wo, wts int64
			wok := false
			for i := cut; i < int64(len(all)); i++ {
				if all[i].Timestamp >= ts {
					wo, wts, wok = i, all[i].Timestamp, true
					break
				}
			}
			o, gts, ok, err := p.OffsetForTime(ts)
			if err != nil {
				t.Fatal(err)
			}
			if ok != wok || (ok && (o != wo || gts != wts)) {
				t.Fatalf("log start %d: OffsetForTime(%d) = %d, %d, %v; want %d, %d, %v", cut, ts, o, gts, ok, wo, wts, wok)
			}
		}
	}
}
