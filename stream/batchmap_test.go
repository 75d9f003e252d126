package stream

import (
	"context"
	"slices"
	"testing"
)

// TestFlatMapBatch: f sees the records in batches no larger than the
// batch size, in order, each record once, and what it emits (with each
// record's timestamp) flows on.
func TestFlatMapBatch(t *testing.T) {
	env := New(WithParallelism(1), WithBatchSize(16))
	var sizes []int
	src := FromSource[int](env, "src", FromSlice(seq(100), 1), BoundedOutOfOrderness(func(v int) int64 { return int64(v) }, 0))
	out := FlatMapBatch(src, func(vals []int, ts []int64, em *Emitter[int]) {
		sizes = append(sizes, len(vals))
		for i, v := range vals {
			if ts[i] != int64(v) {
				t.Errorf("record %d: timestamp %d", v, ts[i])
			}
			if v%2 == 0 {
				em.EmitAt(v*10, ts[i])
			}
		}
	})
	c := Collect(out)
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := 0; i < 100; i += 2 {
		want = append(want, i*10)
	}
	if got := c.Values(); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	total := 0
	for _, n := range sizes {
		if n > 16 || n == 0 {
			t.Errorf("a batch of %d records (batch size 16)", n)
		}
		total += n
	}
	if total != 100 {
		t.Errorf("f saw %d records, want 100", total)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
