package state

import "testing"

// TestMemorySnapshotRescale snapshots a memory backend at parallelism 2
// and restores its key groups into backends at parallelism 1 and 3, where
// the tables are opened after the restore.
func TestMemorySnapshotRescale(t *testing.T) {
	const maxPar = 12
	h := Hasher[string]()
	want := map[string]int64{}
	snaps := map[int][]byte{} // by key group
	for sub := range 2 {
		b := NewMemory(maxPar, RangeFor(maxPar, 2, sub))
		kc := NewKeyed[string](b)
		v, _ := NewValue[string, int64](kc, "v")
		l, _ := NewList[string, string](kc, "l")
		for i := range 500 {
			k := "k" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			kg := KeyGroup(h(k), maxPar)
			if !b.KeyGroups().Contains(kg) {
				continue
			}
			kc.SetCurrentKey(k, kg)
			v.Set(int64(i))
			l.Add(k)
			want[k] = int64(i)
		}
		for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
			data, err := b.AppendKeyGroup(nil, kg)
			if err != nil {
				t.Fatal(err)
			}
			snaps[kg] = data
		}
	}
	for _, par := range []int{1, 3} {
		got := map[string]int64{}
		for sub := range par {
			b := NewMemory(maxPar, RangeFor(maxPar, par, sub))
			for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
				if err := b.RestoreKeyGroup(kg, snaps[kg]); err != nil {
					t.Fatal(err)
				}
			}
			vt, err := OpenTable[string, int64](b, "v")
			if err != nil {
				t.Fatal(err)
			}
			lt, _ := OpenTable[string, []string](b, "l")
			for kg := b.KeyGroups().Start; kg < b.KeyGroups().End; kg++ {
				vt.Range(kg, func(k string, x int64) bool {
					got[k] = x
					if l, _ := lt.Get(kg, k); len(l) != 1 || l[0] != k {
						t.Fatalf("list of %s = %v", k, l)
					}
					return true
				})
			}
		}
		if len(got) != len(want) {
			t.Fatalf("parallelism %d: %d keys, want %d", par, len(got), len(want))
		}
		for k, x := range want {
			if got[k] != x {
				t.Fatalf("parallelism %d: %s = %d, want %d", par, k, got[k], x)
			}
		}
	}
}
