package pgcdc

import (
	"bytes"
	"testing"
)

// FuzzDecodePosition: a checkpointed position (bytes from a checkpoint
// file) is either refused with an error or decodes into one that
// re-encodes to the same position and whose snapshot ranges the stream
// can look keys up in (every table's first range starts at its first
// row, later ones at a whole key); never a panic.
func FuzzDecodePosition(f *testing.F) {
	k := func(s string) *string { return &s }
	for _, p := range []position{
		{V: positionV, Phase: phaseSnapshot, Tables: []string{"public.a"}, SlotLSN: 100, Segs: [][]segment{{{LSN: 100}}}},
		{V: positionV, Phase: phaseSnapshot, Tables: []string{"public.a", "public.b"}, SlotLSN: 100, Table: 1, Last: []*string{k("7"), k("x")},
			Segs: [][]segment{{{LSN: 100}}, {{LSN: 100}, {From: []*string{k("3"), k("a")}, LSN: 250}}}},
		{V: positionV, Phase: phaseStream, Tables: []string{"public.a"}, LSN: 4096, TxLSN: 5000, TxSkip: 3},
		{V: positionV, Phase: phaseStream, Tables: []string{"public.a"}, LSN: 4096, Segs: [][]segment{{{LSN: 100}, {From: []*string{k("9")}, LSN: 300}}}},
	} {
		f.Add(p.encode())
	}
	f.Add([]byte(`{"v":1,"phase":"stream","tables":["public.a"],"lsn":"0/10","segs":[[]]}`))
	f.Add([]byte(`{"v":1,"phase":"snapshot","tables":["public.a"],"segs":[[{"lsn":"0/1"},{"from":[null],"lsn":"0/2"}]]}`))
	f.Add([]byte(`{"v":1,"phase":"snapshot","tables":["public.a"],"last":[null],"segs":[[{"lsn":"0/1"}]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePosition(b)
		if err != nil {
			return
		}
		enc := p.encode()
		q, err := decodePosition(enc)
		if err != nil {
			t.Fatalf("a decoded position %s does not decode again: %v", enc, err)
		}
		if !bytes.Equal(q.encode(), enc) {
			t.Fatalf("position changed on a round trip: %s -> %s", enc, q.encode())
		}
		for ti, segs := range p.Segs {
			if len(segs) == 0 || segs[0].From != nil {
				t.Fatalf("table %d: ranges %v accepted", ti, segs)
			}
			for _, s := range segs[1:] {
				for _, c := range s.From {
					if c == nil {
						t.Fatalf("table %d: a range from a null key accepted", ti)
					}
				}
			}
		}
		_ = p.maxSegLSN()
		_ = p.clone()
	})
}
