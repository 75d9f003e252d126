package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// commitWorld records what the committing split and the transactional
// sink of TestCommitPositionAfterSinkCommit saw.
type commitWorld struct {
	mu        sync.Mutex
	staged    map[string][]int64
	committed map[int64]bool
	// commits are the positions passed to CommitPosition, per split.
	commits map[string][]int64
	closed  map[string]bool
	errs    []string
	stop    atomic.Bool
}

func newCommitWorld() *commitWorld {
	return &commitWorld{staged: map[string][]int64{}, committed: map[int64]bool{},
		commits: map[string][]int64{}, closed: map[string]bool{}}
}

func (w *commitWorld) fail(format string, args ...any) {
	w.errs = append(w.errs, fmt.Sprintf(format, args...))
}

type commitSource struct {
	w     *commitWorld
	n     int
	split int
}

func (s commitSource) Splits(context.Context, int) ([]Split[int64], error) {
	out := make([]Split[int64], s.split)
	for i := range out {
		out[i] = &commitSplit{w: s.w, id: fmt.Sprintf("s%d", i), base: int64(i) << 32, n: s.n}
	}
	return out, nil
}

// commitSplit emits base+0 .. base+n-1 in small batches, then idles until
// the test stops it; it checks every CommitPosition against the sink.
type commitSplit struct {
	w    *commitWorld
	id   string
	base int64
	n    int
	pos  int
}

func (p *commitSplit) ID() string { return p.id }

func (p *commitSplit) Read(_ context.Context, dst []int64) (int, error) {
	if p.pos >= p.n {
		if p.w.stop.Load() {
			return 0, io.EOF
		}
		time.Sleep(time.Millisecond) // pacing, not synchronisation
		return 0, nil
	}
	k := min(len(dst), 7, p.n-p.pos)
	for i := range k {
		dst[i] = p.base + int64(p.pos+i)
	}
	p.pos += k
	time.Sleep(100 * time.Microsecond) // pacing: checkpoints mid-input
	return k, nil
}

func (p *commitSplit) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.pos)) }

func (p *commitSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("%w: %d bytes", ErrBadPosition, len(pos))
	}
	p.pos = int(binary.BigEndian.Uint64(pos))
	return nil
}

func (p *commitSplit) CommitPosition(_ context.Context, pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("%w: %d bytes", ErrBadPosition, len(pos))
	}
	v := int64(binary.BigEndian.Uint64(pos))
	w := p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed[p.id] {
		w.fail("split %s: CommitPosition(%d) after Close", p.id, v)
	}
	if c := w.commits[p.id]; len(c) > 0 && c[len(c)-1] > v {
		w.fail("split %s: CommitPosition(%d) after %d", p.id, v, c[len(c)-1])
	}
	// Every record before v must already be committed by the sink.
	for i := range v {
		if !w.committed[p.base+i] {
			w.fail("split %s: CommitPosition(%d) before record %d was committed", p.id, v, i)
			break
		}
	}
	w.commits[p.id] = append(w.commits[p.id], v)
	return nil
}

func (p *commitSplit) Close() error {
	p.w.mu.Lock()
	p.w.closed[p.id] = true
	p.w.mu.Unlock()
	return nil
}

var _ PositionCommitter = (*commitSplit)(nil)

type commitSink struct{ w *commitWorld }

func (s commitSink) Open(_ context.Context, info SubtaskInfo) (SinkWriter[int64], error) {
	return &commitWriter{w: s.w, sub: info.Index}, nil
}

type commitWriter struct {
	w   *commitWorld
	sub int
	buf []int64
}

func (c *commitWriter) Write(_ context.Context, rs []int64) error {
	c.buf = append(c.buf, rs...)
	return nil
}

func (c *commitWriter) Close(context.Context) error { return nil }

func (c *commitWriter) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	name := fmt.Sprintf("%d/%d", c.sub, id)
	c.w.mu.Lock()
	c.w.staged[name] = c.buf
	c.w.mu.Unlock()
	c.buf = nil
	return checkpoint.Transaction(name), nil
}

func (c *commitWriter) Commit(_ context.Context, tx checkpoint.Transaction) error {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for _, v := range c.w.staged[string(tx)] {
		c.w.committed[v] = true
	}
	delete(c.w.staged, string(tx))
	return nil
}

func (c *commitWriter) Abort(_ context.Context, tx checkpoint.Transaction) error {
	c.w.mu.Lock()
	delete(c.w.staged, string(tx))
	c.w.mu.Unlock()
	return nil
}

func (c *commitWriter) Recover(context.Context, []checkpoint.Transaction) error { return nil }

// TestCommitPositionAfterSinkCommit: the runtime hands every split that
// implements PositionCommitter the positions of completed checkpoints,
// in order, only after the sinks committed the records before them, and
// never after the split was closed.
func TestCommitPositionAfterSinkCommit(t *testing.T) {
	for _, d := range []Delivery{ExactlyOnce, AtLeastOnce} {
		t.Run(d.String(), func(t *testing.T) {
			const n, splits = 600, 2
			w := newCommitWorld()
			env := New(WithParallelism(2), WithBatchSize(16),
				WithCheckpointing(t.TempDir(), 5*time.Millisecond), WithDelivery(d), WithLogger(quietLog()))
			s := FromSource(env, "src", commitSource{w: w, n: n, split: splits}, WatermarkStrategy[int64]{})
			To(s, commitSink{w}, Name("sink"))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			job, err := env.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Wait until every split's end position was committed.
			allCommitted := func() bool {
				w.mu.Lock()
				defer w.mu.Unlock()
				for i := range splits {
					c := w.commits[fmt.Sprintf("s%d", i)]
					if len(c) == 0 || c[len(c)-1] != n {
						return false
					}
				}
				return true
			}
			for !allCommitted() {
				select {
				case <-job.Done():
					t.Fatalf("job ended before the positions were committed: %v", job.Wait())
				case <-ctx.Done():
					t.Fatal("positions not committed before the deadline")
				case <-time.After(2 * time.Millisecond):
				}
			}
			w.stop.Store(true)
			if err := job.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, e := range w.errs {
				t.Error(e)
			}
			for i := range splits {
				id := fmt.Sprintf("s%d", i)
				if !w.closed[id] {
					t.Errorf("split %s not closed", id)
				}
				if len(w.commits[id]) < 2 {
					t.Errorf("split %s: commits %v, want several checkpoints", id, w.commits[id])
				}
			}
		})
	}
}

// TestCommitPositionWithoutCheckpointing: without checkpointing no
// position is committed and splits are still closed.
func TestCommitPositionWithoutCheckpointing(t *testing.T) {
	w := newCommitWorld()
	w.stop.Store(true)
	env := New(WithParallelism(1))
	var got atomic.Int64
	s := FromSource(env, "src", commitSource{w: w, n: 50, split: 1}, WatermarkStrategy[int64]{})
	To(s, SinkFunc[int64](func(_ context.Context, rs []int64) error { got.Add(int64(len(rs))); return nil }), Name("sink"))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 50 {
		t.Fatalf("%d records, want 50", got.Load())
	}
	if len(w.commits) != 0 || !w.closed["s0"] {
		t.Fatalf("commits %v closed %v", w.commits, w.closed)
	}
}

// TestFinalCheckpointCommitsPositions: a split whose input ended is kept
// open until the job's final checkpoint has committed its end position
// (a source that answers its clients at CommitPosition, the HTTP ingest
// one, would otherwise fail the clients whose records the final
// checkpoint made durable); it is closed after.
func TestFinalCheckpointCommitsPositions(t *testing.T) {
	const n, splits = 50, 2
	w := newCommitWorld()
	w.stop.Store(true)
	// No periodic checkpoint during the run: only the final one.
	env := New(WithParallelism(2), WithCheckpointing(t.TempDir(), time.Hour), WithDelivery(ExactlyOnce), WithLogger(quietLog()))
	s := FromSource(env, "src", commitSource{w: w, n: n, split: splits}, WatermarkStrategy[int64]{})
	To(s, commitSink{w}, Name("sink"))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs {
		t.Error(e)
	}
	for i := range splits {
		id := fmt.Sprintf("s%d", i)
		if c := w.commits[id]; len(c) == 0 || c[len(c)-1] != n {
			t.Errorf("split %s: commits %v, want the final position %d", id, c, n)
		}
		if !w.closed[id] {
			t.Errorf("split %s not closed", id)
		}
	}
}

// TestSavepointStopCommitsPositions: a job stopped with a savepoint
// commits the savepoint's positions to its splits before it closes them
// (an HTTP ingest source answers the requests the savepoint covers then,
// instead of failing them as the job stops).
func TestSavepointStopCommitsPositions(t *testing.T) {
	const n = 40
	w := newCommitWorld()
	env := New(WithParallelism(1), WithCheckpointing(t.TempDir(), time.Hour), WithDelivery(ExactlyOnce), WithLogger(quietLog()))
	s := FromSource(env, "src", commitSource{w: w, n: n, split: 1}, WatermarkStrategy[int64]{})
	To(s, commitSink{w}, Name("sink"))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.StopWithSavepoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs {
		t.Error(e)
	}
	if c := w.commits["s0"]; len(c) == 0 {
		t.Errorf("the savepoint's position was not committed before the split closed (commits %v)", c)
	}
	if !w.closed["s0"] {
		t.Error("split not closed")
	}
}
