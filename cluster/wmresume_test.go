package cluster

import (
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// wmTask records the watermarks it is told.
type wmTask struct {
	nopTask
	got *[]int64
}

func (w wmTask) Watermark(_ Output, wm int64) error {
	*w.got = append(*w.got, wm)
	return nil
}

// TestRestoredTaskKeepsItsCommittedWatermark: a keyed task's watermark
// never goes back in one process (the combiner emits only a larger
// one), but a new owner recombined the upstream watermarks from scratch.
// With upstream task 1 idle, the task went on to 100 by task 0 alone;
// task 1 then became active again at 10. A new owner restored both and
// started at min(100, 10) = 10: windows up to 100 that the old owner had
// fired and cleaned up took records late for 100 again and fired a
// second time. The watermark the task acted on is part of its state.
func TestRestoredTaskKeepsItsCommittedWatermark(t *testing.T) {
	// The previous owner: its changelog writes, commit after commit.
	var log [][2][]byte
	write := func(k, v []byte) { log = append(log, [2][]byte{k, v}) }
	old := newCombiner(2)
	old.observe(marker{from: 0, wm: 100})
	old.observe(marker{from: 1, wm: 10, idle: true})
	if wm, ok := old.advance(); !ok || wm != 100 {
		t.Fatalf("old owner: %d %v, want 100", wm, ok)
	}
	old.flush(write)
	old.commit()
	old.observe(marker{from: 1, wm: 10}) // active again
	if wm, _ := old.advance(); wm != 100 {
		t.Fatalf("old owner went back to %d", wm)
	}
	old.flush(write)
	old.commit()

	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []int64
	topo := &Topology{Source: "in", SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
		{Name: "w", Stateful: true, NewTask: func(int32) Task { return wmTask{got: &got} }},
	}}
	in := &Instance{cfg: Config{ApplicationID: "app", InstanceID: "b"}, topo: topo, cl: cl,
		parts: []int32{2, 1}, inputs: []string{"in", "rep"}, metrics: newMetrics("app"),
		tasks: map[taskID]*taskState{}, restoring: map[taskID]*taskState{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	id := taskID{1, 0}
	ts := in.newTask(id)
	in.tasks[id] = ts
	for _, kv := range log { // the restore reads the changelog
		if err := ts.comb.restore(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	ts.rst = &restoreJob{topic: "changelog", end: int64(len(log)), pos: int64(len(log))}
	in.restoring[id] = ts
	if err := in.finishRestore(id, ts); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != 100 {
		t.Fatalf("the restored task was told watermarks %v, want [100] (the old owner's)", got)
	}
	if m := in.marker(ts, ts.cachedAt); m.wm != 100 {
		t.Fatalf("the restored task publishes watermark %d, want 100", m.wm)
	}
}
