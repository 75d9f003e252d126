package stream

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestSectionBuf lays out random sections (some empty) in one buffer, the
// second time in the buffer the first snapshot gave back, and reads each
// back with splitChainSection, as restore and compaction do.
func TestSectionBuf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := newChainSnap()
	for round := range 3 {
		sb := c.takeSections()
		want := map[int][]byte{}
		for kg := range 40 {
			var tables []byte
			switch rng.IntN(4) {
			case 0: // no tables: no section
			case 1:
				tables = make([]byte, 1+rng.IntN(100))
			default:
				// Lengths whose uvarints take 1, 2 and 3 bytes.
				tables = make([]byte, []int{127, 128, 16383, 16384, 70000}[rng.IntN(5)])
			}
			for i := range tables {
				tables[i] = byte(rng.Uint32())
			}
			b := append(sb.open(), tables...)
			sb.close(kg, b)
			if len(tables) > 0 {
				want[kg] = tables
			}
		}
		got := sb.groups()
		if len(got) != len(want) {
			t.Fatalf("round %d: %d sections, want %d", round, len(got), len(want))
		}
		for kg, w := range want {
			tb, err := splitChainSection(got[kg])
			if err != nil {
				t.Fatalf("round %d: key group %d: %v", round, kg, err)
			}
			if !bytes.Equal(tb, w) {
				t.Fatalf("round %d: key group %d: tables differ (%d bytes, want %d)", round, kg, len(tb), len(w))
			}
		}
		c.lastSize = len(sb.buf)
		c.giveBack(sb.buf)
	}
}
