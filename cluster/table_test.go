package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func int64Table() *Table[int64] {
	return NewTable(func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) },
		func(b []byte) (int64, error) {
			if len(b) != 8 {
				return 0, errors.New("bad value")
			}
			return int64(binary.BigEndian.Uint64(b)), nil
		})
}

// TestTableAgainstModel drives a table with random puts, deletes,
// commits, aborts and flushes, against a map with a copy at the last
// commit: after every step the table holds the model's values, a flush
// writes exactly the keys changed since the last flush with their current
// values, and a restore of everything flushed and committed rebuilds the
// committed state.
func TestTableAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := int64Table()
	model := map[string]int64{}
	committed := map[string]int64{}
	changelog := map[string][]byte{} // committed changelog, compacted
	pending := map[string][]byte{}   // flushed in the open transaction
	sinceFlush := map[string]bool{}
	for step := range 20000 {
		k := fmt.Sprintf("k%d", rng.IntN(50))
		switch op := rng.IntN(10); {
		case op < 5:
			v := rng.Int64N(1000)
			tab.Put(k, v)
			model[k] = v
			sinceFlush[k] = true
		case op < 7:
			tab.Delete(k)
			delete(model, k)
			sinceFlush[k] = true
		case op == 7:
			tab.Flush(func(k string, v []byte) {
				if !sinceFlush[k] {
					t.Fatalf("step %d: flushed %s, which did not change", step, k)
				}
				pending[k] = v
				delete(sinceFlush, k)
			})
			if len(sinceFlush) != 0 {
				t.Fatalf("step %d: flush missed %v", step, sinceFlush)
			}
		case op == 8:
			// Commit: what was flushed becomes the changelog.
			tab.Flush(func(k string, v []byte) { pending[k] = v })
			clear(sinceFlush)
			tab.Commit()
			for k, v := range pending {
				changelog[k] = v
			}
			clear(pending)
			committed = clone(model)
		default:
			if err := tab.Abort(); err != nil {
				t.Fatal(err)
			}
			model = clone(committed)
			clear(pending)
			clear(sinceFlush)
		}
		if tab.Len() != len(model) {
			t.Fatalf("step %d: %d keys, model %d", step, tab.Len(), len(model))
		}
		for k, v := range model {
			if got, ok := tab.Get(k); !ok || got != v {
				t.Fatalf("step %d: %s = %d, %v; model %d", step, k, got, ok, v)
			}
		}
	}
	restored := int64Table()
	for k, v := range changelog {
		if err := restored.Restore(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if restored.Len() != len(committed) {
		t.Fatalf("restored %d keys, committed %d", restored.Len(), len(committed))
	}
	for k, v := range committed {
		if got, ok := restored.Get(k); !ok || got != v {
			t.Fatalf("restored %s = %d, %v; committed %d", k, got, ok, v)
		}
	}
}

func clone(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestTableWithoutUndo(t *testing.T) {
	tab := int64Table()
	tab.DisableUndo()
	tab.Put("a", 1)
	tab.Commit()
	tab.Put("a", 2)
	var flushed []string
	tab.Flush(func(k string, v []byte) { flushed = append(flushed, k) })
	if len(flushed) != 1 || flushed[0] != "a" {
		t.Fatalf("flushed %v", flushed)
	}
	if err := tab.Abort(); !errors.Is(err, ErrNoUndo) {
		t.Fatalf("Abort without undo: %v, want ErrNoUndo", err)
	}
}
