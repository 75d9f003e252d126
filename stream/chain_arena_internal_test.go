package stream

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/state/codec"
)

// TestSectionArenaKeepsSections: sections made in an arena, of random
// sizes (empty ones among them, some over the 2 MiB a length prefix
// holds without a move) and with arenas taken back from earlier
// snapshots, are each exactly a chain section of their tables
// (length-prefixed, then the reserved byte) once the snapshot is done:
// no later section, new buffer or prefix move overwrote one.
func TestSectionArenaKeepsSections(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 18))
	c := newChainSnap()
	for snap := range 12 {
		const groups = 40
		a := c.takeArena()
		want := map[int][]byte{}
		got := map[int][]byte{}
		for kg := range groups {
			var n int
			switch x := rng.IntN(20); {
			case x == 0:
				n = 0
			case x == 1 && snap%4 == 1:
				n = 1<<21 + rng.IntN(100)
			default:
				n = rng.IntN(1 << uint(4+snap%12))
			}
			tables := make([]byte, n)
			for i := range tables {
				tables[i] = byte(rng.Uint32())
			}
			at := a.begin(groups - kg - 1)
			a.buf = append(a.buf, tables...)
			sec := a.end(at)
			if n == 0 {
				if sec != nil {
					t.Fatalf("snapshot %d key group %d: a section for no tables", snap, kg)
				}
				continue
			}
			want[kg] = append(codec.AppendBytes(nil, tables), 0)
			got[kg] = sec
		}
		for kg, w := range want {
			if !bytes.Equal(got[kg], w) {
				t.Fatalf("snapshot %d key group %d: section of %d bytes differs from its tables' (%d bytes)", snap, kg, len(got[kg]), len(w))
			}
		}
		// What submit does once the writer is done with the sections.
		c.lastArena = a.made
		buf := a.buf
		c.spare.Store(&buf)
	}
}
