package stream

import (
	"encoding/binary"
	"testing"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
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
		for i := range o.slots.n {
			if o.slots.at(i).live {
				o.entry(i)
			}
		}
		if string(b) == string(valid) {
			if o.slots.n != 1 || o.slots.at(0).win != (window.Window{Start: 0, End: 100}) || o.entry(0).acc != 7 || !o.entry(0).fired {
				t.Fatalf("valid section restored as %+v", o.slots.chunks[0][:1])
			}
		}
	})
}

// FuzzWindowChainSection feeds arbitrary tables of a chain section (two
// of them, as a base and an increment of one key group) to a window
// operator's chain restore: it must fail cleanly or restore, never panic,
// and the valid seed restores as written.
func FuzzWindowChainSection(f *testing.F) {
	codecs, err := newWinCodecs[string, int64]()
	if err != nil {
		f.Fatal(err)
	}
	tables := func(reset bool, wm int64, key string, list []byte) []byte {
		var t []byte
		t = codec.AppendString(t, watermarkTable)
		t = codec.AppendBytes(t, state.AppendChangeBody(nil, reset, [][]byte{nil}, [][]byte{binary.AppendVarint(nil, wm)}, nil))
		k := codecs.key.Append(nil, key)
		body := state.AppendChangeBody(nil, reset, nil, nil, [][]byte{k})
		if list != nil {
			body = state.AppendChangeBody(nil, reset, [][]byte{k}, [][]byte{list}, nil)
		}
		t = codec.AppendString(t, windowsTable)
		return codec.AppendBytes(t, body)
	}
	// Base: "k" has window [0,100) fired with sum 7 and "x" one window;
	// increment: "x" deleted, watermark 9.
	list := binary.AppendUvarint(nil, 1)
	list = append(list, 0, 200, 1, 1)
	list = codecs.acc.Append(list, 7)
	base := tables(true, 5, "k", list)
	base = append(base[:len(base):len(base)], tables(false, 5, "x", list)...)
	incr := tables(false, 9, "x", nil)
	f.Add(base, incr)
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		o := &winOp[string, cev, int64, int64]{keys: newKeyIndex[string](), codecs: codecs, init: func() int64 { return 0 }}
		c := &winChainRestore{lists: map[int]map[string][]byte{}, wm: map[int]int64{}}
		valid := string(a) == string(base) && string(b) == string(incr)
		err := c.apply(3, a)
		if err == nil {
			err = c.apply(3, b)
		}
		if err == nil {
			err = o.finishChain(c)
		}
		if err != nil {
			if valid {
				t.Fatalf("valid chain: %v", err)
			}
			return
		}
		for i := range o.slots.n {
			if o.slots.at(i).live {
				o.entry(i)
			}
		}
		if valid {
			if o.slots.n != 1 || o.slots.at(0).key != "k" || o.slots.at(0).win != (window.Window{Start: 0, End: 100}) || o.entry(0).acc != 7 || !o.entry(0).fired || o.wm != 9 {
				t.Fatalf("valid chain restored as %+v, watermark %d", o.slots.chunks[0][:1], o.wm)
			}
		}
	})
}
