package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// rendezvousSink is a two-phase-commit sink whose subtasks' Commits each
// wait until every subtask is inside Commit: they complete only when the
// runtime runs them concurrently.
type rendezvousSink struct {
	par     int
	mu      sync.Mutex
	inside  map[int]bool
	all     chan struct{} // closed once every subtask was inside Commit at once
	commits int
}

func (s *rendezvousSink) Open(_ context.Context, info SubtaskInfo) (SinkWriter[int], error) {
	return &rendezvousWriter{s: s, sub: info.Index}, nil
}

type rendezvousWriter struct {
	s   *rendezvousSink
	sub int
	n   int
}

func (w *rendezvousWriter) Write(_ context.Context, recs []int) error { w.n += len(recs); return nil }
func (w *rendezvousWriter) Close(context.Context) error               { return nil }
func (w *rendezvousWriter) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	return checkpoint.Transaction(fmt.Sprintf("%d/%d/%d", w.sub, id, w.n)), nil
}
func (w *rendezvousWriter) Abort(context.Context, checkpoint.Transaction) error     { return nil }
func (w *rendezvousWriter) Recover(context.Context, []checkpoint.Transaction) error { return nil }

// Commit waits for the other subtasks' Commits; a bound on the wait (not
// a timing assertion) turns commits made one after the other into a
// failed job instead of a hung test.
func (w *rendezvousWriter) Commit(context.Context, checkpoint.Transaction) error {
	s := w.s
	s.mu.Lock()
	s.commits++
	s.inside[w.sub] = true
	if len(s.inside) == s.par {
		close(s.all)
	}
	s.mu.Unlock()
	select {
	case <-s.all:
		return nil
	case <-time.After(time.Minute):
		return errors.New("the other subtasks' commits did not run while this one waited")
	}
}

// TestSinkSubtasksCommitConcurrently: the sink subtasks' commits of a
// checkpoint run at once (the output waits for the slowest commit, not
// for their sum).
func TestSinkSubtasksCommitConcurrently(t *testing.T) {
	const par = 3
	sink := &rendezvousSink{par: par, inside: map[int]bool{}, all: make(chan struct{})}
	env := New(WithParallelism(par), WithBatchSize(8), WithCheckpointing(t.TempDir(), time.Hour))
	To[int](FromSource[int](env, "src", FromSlice(make([]int, 90), par), WatermarkStrategy[int]{}), sink, Name("out"))
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.commits != par {
		t.Fatalf("%d commits, want %d (one final transaction per subtask)", sink.commits, par)
	}
}

// blockingCommitter records the positions committed to it; the first
// CommitPosition waits until release is closed.
type blockingCommitter struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	got     []string
}

func (c *blockingCommitter) CommitPosition(_ context.Context, pos []byte) error {
	c.mu.Lock()
	first := len(c.got) == 0
	c.got = append(c.got, string(pos))
	c.mu.Unlock()
	if first {
		close(c.entered)
		<-c.release
	}
	return nil
}

// TestPositionCommitsInBackground: the positions of completed
// checkpoints are committed off the coordinator's goroutine (submit does
// not wait for a CommitPosition under way), in checkpoint order, and a
// checkpoint's positions still waiting are replaced by a newer one's.
func TestPositionCommitsInBackground(t *testing.T) {
	r := &chkRun{committers: map[string]*splitCommitter{}, log: quietLog()}
	c := &blockingCommitter{entered: make(chan struct{}), release: make(chan struct{})}
	r.committers[posKey("0", "s")] = &splitCommitter{c: c, name: "src"}
	manifest := func(pos string) *checkpoint.Manifest {
		return &checkpoint.Manifest{Tasks: []checkpoint.TaskState{{
			Task: checkpoint.TaskID{Operator: "0"}, Sources: []checkpoint.SourcePosition{{Operator: "0", Split: "s", Position: []byte(pos)}},
		}}}
	}
	q := r.startPositions()
	q.submit(manifest("p1"))
	<-c.entered // p1's commit is under way, and waits
	q.submit(manifest("p2"))
	q.submit(manifest("p3")) // p2, not yet taken, is superseded
	close(c.release)
	q.close()
	if want := []string{"p1", "p3"}; !slices.Equal(c.got, want) {
		t.Fatalf("positions committed %q, want %q", c.got, want)
	}
}

// retainProbe is a two-phase-commit sink that, at each Commit, looks
// for the directory of the checkpoint before the committed one.
type retainProbe struct {
	dir     string
	mu      sync.Mutex
	commits int
	enough  chan struct{} // closed at the fifth commit
	missing []uint64      // checkpoints whose predecessor was gone at Commit
	done    uint64        // the last committed checkpoint seen complete
}

func (s *retainProbe) Open(context.Context, SubtaskInfo) (SinkWriter[int], error) { return s, nil }
func (s *retainProbe) Write(context.Context, []int) error                         { return nil }
func (s *retainProbe) Close(context.Context) error                                { return nil }
func (s *retainProbe) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	return checkpoint.Transaction(strconv.FormatUint(uint64(id), 10)), nil
}
func (s *retainProbe) Abort(context.Context, checkpoint.Transaction) error     { return nil }
func (s *retainProbe) Recover(context.Context, []checkpoint.Transaction) error { return nil }
func (s *retainProbe) Commit(_ context.Context, tx checkpoint.Transaction) error {
	id, err := strconv.ParseUint(string(tx), 10, 64)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	if s.commits == 5 {
		close(s.enough)
	}
	prev := s.done
	if _, err := os.Stat(filepath.Join(s.dir, fmt.Sprintf("chk-%020d", id), "MANIFEST")); err == nil {
		s.done = id
	}
	if prev == 0 || prev >= id {
		// No checkpoint before this one completed (the first, or the
		// transaction of a checkpoint that was aborted on a loaded
		// machine and is committed with the next one): nothing to keep.
		return nil
	}
	// The completed checkpoint before this one (not necessarily id-1: a
	// checkpoint may be aborted on a loaded machine) must still be there.
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		var n uint64
		if _, err := fmt.Sscanf(e.Name(), "chk-%d", &n); err == nil && n < id {
			if _, err := os.Stat(filepath.Join(s.dir, e.Name(), "MANIFEST")); err == nil {
				return nil // a completed checkpoint before this one
			}
		}
	}
	s.missing = append(s.missing, id)
	return nil
}

// TestRetentionAfterSinkCommits: with one checkpoint retained, the
// previous checkpoint is deleted only after the sinks committed the new
// one's transactions (the clean-up is not on the path of the output).
func TestRetentionAfterSinkCommits(t *testing.T) {
	dir := t.TempDir()
	sink := &retainProbe{dir: dir, enough: make(chan struct{})}
	env := New(WithParallelism(1), WithCheckpointing(dir, time.Millisecond), WithCheckpointRetention(1),
		WithCheckpointTimeout(time.Minute), WithLogger(quietLog()))
	gen := &Generator[int]{Count: -1, NumSplits: 1, Fn: func(i int64) int { return int(i) }}
	To[int](FromSource[int](env, "src", gen, WatermarkStrategy[int]{}), sink, Name("out"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job, err := env.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sink.enough:
	case <-job.Done():
		t.Fatalf("job ended before five commits: %v", job.Wait())
	}
	cancel()
	_ = job.Wait()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.missing) > 0 {
		t.Fatalf("the previous checkpoint was deleted before the commit of checkpoints %v", sink.missing)
	}
}
