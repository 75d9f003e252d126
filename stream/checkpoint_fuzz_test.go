package stream

import (
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/window"
)

func FuzzDecodeTxns(f *testing.F) {
	f.Add([]byte(encodeTxns([]txn{{id: 3, tx: checkpoint.Transaction("a")}, {id: 9, tx: nil}})))
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := decodeTxns(b)
		if err != nil {
			return
		}
		again, err := decodeTxns(encodeTxns(ts))
		if err != nil || len(again) != len(ts) {
			t.Fatalf("re-decode: %v (%d vs %d)", err, len(again), len(ts))
		}
	})
}

// FuzzWindowRestoreSection feeds arbitrary section bytes to a window
// operator's restore: it must fail cleanly or restore, never panic.
func FuzzWindowRestoreSection(f *testing.F) {
	codecs, err := newWinCodecs[string, int64]()
	if err != nil {
		f.Fatal(err)
	}
	newOp := func() *winOp[string, cev, int64, int64] {
		return &winOp[string, cev, int64, int64]{keys: newKeyIndex[string](), codecs: codecs, init: func() int64 { return 0 }}
	}
	// A valid section: watermark 5, window [0,100) of "k" fired, sum 7.
	valid := []byte{10}
	valid = codecs.key.Append(valid, "k")
	valid = append(valid, 0, 200, 1, 1)
	valid = codecs.acc.Append(valid, 7)
	f.Add(valid)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o := newOp()
		if _, err := o.restoreSection(b); err != nil {
			return
		}
		// Every restored window is reachable from its key's list, and the
		// valid seed restores as written.
		for i := range o.slots {
			if o.slots[i].live {
				o.entry(int32(i))
			}
		}
		if string(b) == string(valid) {
			if len(o.slots) != 1 || o.slots[0].win != (window.Window{Start: 0, End: 100}) || o.entry(0).acc != 7 || !o.entry(0).fired {
				t.Fatalf("valid section restored as %+v", o.slots)
			}
		}
	})
}
