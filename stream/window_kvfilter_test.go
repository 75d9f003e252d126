package stream

import (
	"encoding/binary"
	"testing"

	"github.com/sluicehq/sluice/state"
)

// Every window test on Pebble runs with small filters and session caches, so that the window tests make filters
// grow through many stages and session entries go through eviction and
// write-back.
func init() { wfFirstCap, sessCacheMin, sessCacheMax = 4, 8, 8 }

type budgetKV struct {
	state.KVStore
	b *state.CacheBudget
}

func (k budgetKV) CacheBudget() *state.CacheBudget { return k.b }

// TestWinFiltersNoFalseNegatives adds keys to a window end's filter
// through many stages and checks that every added key is reported as
// possibly present, and that the budget is charged with the stages and
// returned when the filter is dropped.
func TestWinFiltersNoFalseNegatives(t *testing.T) {
	b := state.NewCacheBudget(1 << 20)
	fs := newWinFilters(budgetKV{b: b})
	f := fs.create(7)
	if f == nil {
		t.Fatal("no filter within the budget")
	}
	var key []byte
	const n = 20000
	for i := range n {
		key = binary.BigEndian.AppendUint64(key[:0], uint64(i))
		fs.add(7, f, fs.hash(key))
	}
	if fs.m[7] != f || len(f.stages) < 5 {
		t.Fatalf("filter %p (kept %p) has %d stages", f, fs.m[7], len(f.stages))
	}
	for i := range n {
		key = binary.BigEndian.AppendUint64(key[:0], uint64(i))
		if !f.mayContain(fs.hash(key)) {
			t.Fatalf("key %d added but ruled out", i)
		}
	}
	if b.Used() != f.bytes || f.bytes == 0 {
		t.Fatalf("budget used %d, filter %d bytes", b.Used(), f.bytes)
	}
	fs.dropUpTo(7)
	if b.Used() != 0 || len(fs.m) != 0 {
		t.Fatalf("after drop: budget used %d, %d filters", b.Used(), len(fs.m))
	}
}

// TestWinFiltersBudget checks that a filter that cannot grow within the
// budget is dropped (its window's reads then go to the store) and its
// bytes returned.
func TestWinFiltersBudget(t *testing.T) {
	b := state.NewCacheBudget(4 << 10)
	fs := newWinFilters(budgetKV{b: b})
	f := fs.create(1)
	if f == nil {
		t.Fatal("no filter within the budget")
	}
	var key []byte
	for i := 0; fs.m[1] != nil; i++ {
		if i > 1<<20 {
			t.Fatal("the filter grew beyond its budget")
		}
		key = binary.BigEndian.AppendUint64(key[:0], uint64(i))
		fs.add(1, f, fs.hash(key))
		if b.Used() > b.Limit() {
			t.Fatalf("budget used %d of %d", b.Used(), b.Limit())
		}
	}
	if b.Used() != 0 {
		t.Fatalf("dropped filter left %d bytes charged", b.Used())
	}
}
