package stream

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Nanos() int64              { return c.ns.Load() + 1 }
func (c *fakeClock) advance(d time.Duration)   { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock                 { return &fakeClock{} }
func (c *fakeClock) set(d time.Duration) int64 { c.ns.Store(int64(d)); return c.Nanos() }

// TestChanWriterBufferTimeout drives the batching code with a fake clock:
// a partial batch stays while it is younger than the buffer timeout and
// leaves at the first check once it is not; flushing (what a task does
// when its input has nothing more) sends it whatever its age.
func TestChanWriterBufferTimeout(t *testing.T) {
	clk := newFakeClock()
	const timeout = 5 * time.Millisecond
	j := &Job{clock: clk, bufferTimeout: int64(timeout)}
	tk := &task{job: j}
	var sent []*batch[int]
	w := newChanWriter[int](tk, func(b *batch[int]) { sent = append(sent, b) }, 0, 4, 8)
	x := &exchange[int]{w: []*chanWriter[int]{w}, mode: partForward}
	tk.flush = []flusher{x}

	tk.ingest = tk.tick()
	first := tk.ingest
	x.push([]int{1, 2, 3}, []int64{0, 0, 0})
	tk.flushDue()
	if len(sent) != 0 {
		t.Fatalf("a fresh partial batch was sent")
	}
	clk.advance(timeout - 1)
	tk.ingest = tk.tick()
	x.push([]int{4}, []int64{0})
	tk.flushDue()
	if len(sent) != 0 {
		t.Fatalf("a partial batch younger than the timeout was sent")
	}
	clk.advance(1)
	tk.tick()
	tk.flushDue()
	if len(sent) != 1 || len(sent[0].vals) != 4 {
		t.Fatalf("after the timeout: %d batches sent, want one of 4 records", len(sent))
	}
	if sent[0].ingest != first {
		t.Fatalf("batch ingestion time %d, want the oldest record's %d", sent[0].ingest, first)
	}
	// The next batch: the clock does not move, the input runs dry.
	tk.ingest = tk.tick()
	x.push([]int{5}, []int64{0})
	tk.flushDue()
	if len(sent) != 1 {
		t.Fatalf("a fresh partial batch was sent")
	}
	tk.flushAll()
	if len(sent) != 2 || len(sent[1].vals) != 1 {
		t.Fatalf("flush when idle: %d batches sent, want 2", len(sent))
	}

	// A zero timeout sends every partial batch at the first check.
	j.bufferTimeout = 0
	x.push([]int{6}, []int64{0})
	tk.flushDue()
	if len(sent) != 3 {
		t.Fatalf("zero timeout: partial batch kept")
	}
}

// scriptSplit returns the reads of a script, calling check (on the
// source's goroutine) at the start of every Read after the first.
type scriptSplit struct {
	reads    [][]int
	buffered []bool // what Buffered says after each read
	i        int
	check    func(read int)
}

func (s *scriptSplit) ID() string { return "script" }
func (s *scriptSplit) Read(_ context.Context, dst []int) (int, error) {
	if s.i > 0 {
		s.check(s.i)
	}
	if s.i == len(s.reads) {
		return 0, io.EOF
	}
	n := copy(dst, s.reads[s.i])
	s.i++
	return n, nil
}
func (s *scriptSplit) Buffered() bool    { return s.buffered[s.i-1] }
func (s *scriptSplit) Position() []byte  { return nil }
func (s *scriptSplit) Seek([]byte) error { return nil }

type scriptSource struct{ sp *scriptSplit }

func (s scriptSource) Splits(context.Context, int) ([]Split[int], error) {
	return []Split[int]{s.sp}, nil
}

// TestSourceBatchLeavesOnIdleOrTimeout runs a job with a fake clock. The
// source's reads fill the whole slice; a filter keeps a quarter, so the
// batch toward the sink fills slowly. The batch stays while the split has
// more and the clock stands still, leaves once the clock passed the
// buffer timeout, and leaves at once after the split says it has nothing
// more. The checks run inside Read, on the source's goroutine, where the
// writer's state is not racing.
func TestSourceBatchLeavesOnIdleOrTimeout(t *testing.T) {
	clk := newFakeClock()
	const timeout = 10 * time.Millisecond
	seq := func(from int) []int {
		out := make([]int, 8)
		for i := range out {
			out[i] = from + i
		}
		return out
	}
	jobc := make(chan *Job, 1)
	var job *Job
	var errs []string
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	pending := func() int {
		for _, tk := range job.tasks {
			if tk.name != "src" {
				continue
			}
			for _, f := range tk.flush {
				for _, w := range f.(*exchange[int]).w {
					if w.cur != nil {
						return len(w.cur.vals)
					}
				}
			}
		}
		return 0
	}
	sp := &scriptSplit{
		reads:    [][]int{seq(0), seq(8), seq(16), seq(24)},
		buffered: []bool{true, true, true, false},
	}
	sp.check = func(read int) {
		if job == nil {
			job = <-jobc
		}
		want := map[int]int{1: 2, 2: 4, 3: 0, 4: 0}[read]
		if got := pending(); got != want {
			fail("before read %d: %d records wait in the partial batch, want %d", read+1, got, want)
		}
		if read == 2 {
			clk.advance(timeout) // the batch opened at read 1 is now due
		}
	}
	env := New(WithParallelism(1), WithBatchSize(8), WithBufferTimeout(timeout), withClock(clk))
	s := FromSource[int](env, "src", scriptSource{sp}, WatermarkStrategy[int]{})
	kept := Filter(s, func(v int) bool { return v%4 == 0 })
	out := Collect(Rebalance(kept), Parallelism(1))
	j, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jobc <- j
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
	if got := out.Values(); len(got) != 8 {
		t.Fatalf("sink got %v, want the 8 multiples of 4 below 32", got)
	}
}

// latencySink advances the fake clock by d in every Write: the time the
// write took, which is what the histogram must see.
type latencySink struct {
	clk *fakeClock
	d   time.Duration
	n   atomic.Int64
}

func (s *latencySink) Open(context.Context, SubtaskInfo) (SinkWriter[int], error) { return s, nil }
func (s *latencySink) Write(_ context.Context, recs []int) error {
	s.clk.advance(s.d)
	s.n.Add(int64(len(recs)))
	return nil
}
func (s *latencySink) Close(context.Context) error { return nil }

// TestSinkLatencyHistogram: the sink's write latency histogram counts
// every record the sink saw, each with the time from its read at the
// source to the end of its write (a chained sink, so the only clock
// movement is the sink's own).
func TestSinkLatencyHistogram(t *testing.T) {
	clk := newFakeClock()
	const d = 3 * time.Millisecond
	vals := make([]int, 100)
	sink := &latencySink{clk: clk, d: d}
	env := New(WithParallelism(1), WithBatchSize(16), withClock(clk))
	To[int](FromSource[int](env, "src", FromSlice(vals, 1), WatermarkStrategy[int]{}), sink, Name("out"))
	j, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, h := range j.Latency() {
		if h.Kind != LatencySink || h.Operator != "out" || h.Stage != StageWrite {
			continue
		}
		found = true
		if h.Count != uint64(sink.n.Load()) || h.Count != 100 {
			t.Fatalf("histogram counts %d records, the sink saw %d", h.Count, sink.n.Load())
		}
		if h.Sum != time.Duration(h.Count)*d {
			t.Fatalf("histogram sum %v, want %v (each record waited its write, %v)", h.Sum, time.Duration(h.Count)*d, d)
		}
		if q := h.Quantile(0.5); q <= 2*time.Millisecond || q > d {
			t.Fatalf("median %v, want in the bucket (2ms, 3ms]", q)
		}
	}
	if !found {
		t.Fatalf("no write latency histogram for sink out: %+v", j.Latency())
	}
}

// TestLatencyMarkers: with markers every millisecond of the (fake) clock,
// each read after the clock moved emits one marker, which reaches every
// operator downstream once (one channel per exchange, not broadcast).
func TestLatencyMarkers(t *testing.T) {
	clk := newFakeClock()
	sp := &scriptSplit{reads: [][]int{{1}, {2}, {3}, {4}}, buffered: []bool{false, false, false, false}}
	sp.check = func(int) { clk.advance(time.Millisecond) }
	env := New(WithParallelism(2), WithLatencyMarkers(time.Millisecond), withClock(clk))
	s := FromSource[int](env, "src", scriptSource{sp}, WatermarkStrategy[int]{})
	m := Map(Rebalance(s), func(v int) int { return v }, Name("m"))
	out := Collect(m, Name("out"))
	j, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 4 {
		t.Fatalf("sink got %d records, want 4", out.Len())
	}
	got := map[string]uint64{}
	for _, h := range j.Latency() {
		if h.Kind == LatencyMarker {
			got[h.Operator] += h.Count
		}
	}
	// Reads 2, 3 and 4 come a millisecond after the previous one.
	if got["m"] != 3 || got["out"] != 3 || got["src"] != 0 {
		t.Fatalf("markers per operator %v, want 3 at m and out, none at src", got)
	}
}

// twoPhaseInts is a two-phase-commit sink of ints that counts the records
// its commits made visible.
type twoPhaseInts struct {
	mu        sync.Mutex
	staged    map[string]int
	committed int
	buf       int
	seq       int
}

func (s *twoPhaseInts) Open(context.Context, SubtaskInfo) (SinkWriter[int], error) { return s, nil }
func (s *twoPhaseInts) Write(_ context.Context, recs []int) error {
	s.buf += len(recs)
	return nil
}
func (s *twoPhaseInts) Close(context.Context) error { return nil }
func (s *twoPhaseInts) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	name := fmt.Sprintf("%d/%d", id, s.seq)
	s.staged[name] = s.buf
	s.buf = 0
	return checkpoint.Transaction(name), nil
}
func (s *twoPhaseInts) Commit(_ context.Context, tx checkpoint.Transaction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed += s.staged[string(tx)]
	delete(s.staged, string(tx))
	return nil
}
func (s *twoPhaseInts) Abort(_ context.Context, tx checkpoint.Transaction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.staged, string(tx))
	return nil
}
func (s *twoPhaseInts) Recover(context.Context, []checkpoint.Transaction) error { return nil }

// TestSinkCommitLatency: under exactly-once, a two-phase-commit sink's
// commit histogram counts every record once its transaction committed
// (here at the final checkpoint, at the end of a bounded input), and the
// write histogram counts them when written.
func TestSinkCommitLatency(t *testing.T) {
	clk := newFakeClock()
	sink := &twoPhaseInts{staged: map[string]int{}}
	env := New(WithParallelism(1), WithBatchSize(8), withClock(clk), WithCheckpointing(t.TempDir(), time.Hour))
	To[int](FromSource[int](env, "src", FromSlice(make([]int, 50), 1), WatermarkStrategy[int]{}), sink, Name("out"))
	j, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if sink.committed != 50 {
		t.Fatalf("sink committed %d records, want 50", sink.committed)
	}
	got := map[string]uint64{}
	for _, h := range j.Latency() {
		if h.Kind == LatencySink && h.Operator == "out" {
			got[h.Stage] = h.Count
		}
	}
	if got[StageWrite] != 50 || got[StageCommit] != 50 {
		t.Fatalf("latency counts by stage %v, want 50 written and 50 committed", got)
	}
}
